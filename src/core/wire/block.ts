/**
 * Block device family (WIRE.md §4 BlockCmd, the block-devices and image replies, Data block [4]).
 */
import { type TypeOf, bool, choice, explicit, int, name, octets, opt, seq, seqOf, tagNull } from '../asn.js';

/** Legacy: create a block device with inline data. */
export const oldBlockAdd = seq('OldBlockAdd', {
  size: int,
  compress: bool,
  data: opt(octets),
});
export type OldBlockAdd = TypeOf<typeof oldBlockAdd>;

/** Legacy: overwrite a block device with inline data. */
export const oldBlockSet = seq('OldBlockSet', {
  compress: bool,
  data: octets,
});
export type OldBlockSet = TypeOf<typeof oldBlockSet>;

/**
 * BlockCmd. `add` is a size in MB; `dump`/`dump_old` carry a compression level (0 = none);
 * `set` says whether the raw chunks that follow the command form a zlib stream (§2.4).
 */
export const blockCmd = choice('BlockCmd', {
  info: tagNull(0),
  add: explicit(1, int),
  remove: tagNull(2),
  add_old: explicit(3, oldBlockAdd),
  set_old: explicit(4, oldBlockSet),
  dump_old: explicit(5, int),
  dump: explicit(6, int),
  set: explicit(7, bool),
});
export type BlockCmd = TypeOf<typeof blockCmd>;

/** One entry of the `block-devices` reply: name (relative to the query), size in MB, in use. */
export const blockDeviceInfo = seq('BlockDeviceInfo', {
  name,
  size: int,
  active: bool,
});
export type BlockDeviceInfo = TypeOf<typeof blockDeviceInfo>;

export const blockDeviceInfoList = seqOf(blockDeviceInfo);

/** Answer to the legacy dump-old [5] (Success [7]): the whole image inline. */
export const oldBlockDeviceImage = seq('OldBlockDeviceImage', {
  compressed: bool,
  image: octets,
});
export type OldBlockDeviceImage = TypeOf<typeof oldBlockDeviceImage>;

/** Data block [4]: the next piece of a block dump, or its end. */
export const blockData = choice('BlockData', {
  chunk: explicit(0, octets),
  eof: tagNull(1),
});
export type BlockData = TypeOf<typeof blockData>;
