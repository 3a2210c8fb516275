/**
 * Types shared by several command families and the state file (WIRE.md §4):
 * the header, policies, unikernel building blocks.
 */
import {
  type TypeOf, bigInt, choice, explicit, int, int64, map, name, nul, opt, seq, seqOf, setOf,
  sizedOctets, tagNull, utf8, decodeFail,
} from '../asn.js';

export const WIRE_VERSION = 5;

/** Version ::= INTEGER (5); anything else is refused as upstream does. */
export const version = map(int, 'Version', (v, at) => (v === WIRE_VERSION ? v : decodeFail(at, `unknown version number 0x${v.toString(16).toUpperCase()}`)), (v: number) => v);

export const header = seq('Header', {
  version,
  sequence: int64,
  name,
});
export type Header = TypeOf<typeof header>;

/** Policy ::= SEQUENCE { cpuids, unikernels, memory, block OPTIONAL, bridges } */
export const policy = seq('Policy', {
  cpuids: seqOf(int),
  unikernels: bigInt,
  memory: int,
  block: opt(int),
  bridges: seqOf(utf8),
});
export type Policy = TypeOf<typeof policy>;

export const typ = choice('Typ', { solo5: tagNull(0), bhyve: tagNull(1) });
export type Typ = TypeOf<typeof typ>['kind'];
/** Typ as a plain string ('solo5' | 'bhyve'), which is what the rest of the code uses. */
export const typName = map(typ, 'Typ', (v) => v.kind, (k: Typ) => ({ kind: k, value: null }) as TypeOf<typeof typ>);

/** FailBehaviour: quit, or restart on the listed exit codes (empty = any code but 1 and 60-64). */
export const failBehaviour = choice('FailBehaviour', {
  quit: explicit(0, nul),
  restart: explicit(1, setOf(int)),
});
export type FailBehaviour = TypeOf<typeof failBehaviour>;

export const macAddr = sizedOctets('MacAddr', 6);

export const blockDevice = seq('BlockDevice', {
  blockName: utf8,
  blockDeviceName: opt(utf8),
  blockSectorSize: opt(int),
});
export type BlockDevice = TypeOf<typeof blockDevice>;

export const netDevice = seq('NetDevice', {
  netif: utf8,
  bridge: opt(utf8),
  mac: opt(macAddr),
});
export type NetDevice = TypeOf<typeof netDevice>;

export const timeval = seq('Timeval', { seconds: int64, microseconds: int });
export type Timeval = TypeOf<typeof timeval>;


/**
 * A unikernel configuration, normalised: every wire form (current and legacy) decodes
 * to this, with the defaults of WIRE.md §4.1 applied.
 */
export interface UnikernelConfig {
  typ: Typ;
  /** TRUE: `image` is a zlib stream. */
  compressed: boolean;
  image: Uint8Array;
  /** Start priority, lower first; absent = 50. */
  startup?: number;
  /** Prepend `--name=<label>` to the arguments. */
  addName: boolean;
  failBehaviour: FailBehaviour;
  /** CPU ids to pin to, non-empty. */
  cpuids: number[];
  /** Memory in MB. */
  memory: number;
  /** Empty when absent on the wire (absent is emitted for an empty list). */
  blocks: BlockDevice[];
  /** Empty when absent on the wire. */
  bridges: NetDevice[];
  /** Boot arguments; absent and empty are different on the wire. */
  arguments?: string[];
  /** Number of vCPUs (bhyve); 1 when absent. */
  cpus: number;
  linuxBootPartition?: string;
}

/** Arguments of `restart` that replace the running unikernel's settings. */
export interface UnikernelArgs {
  failBehaviour: FailBehaviour;
  startup?: number;
  addName: boolean;
  cpuids: number[];
  memory: number;
  blocks: BlockDevice[];
  bridges: NetDevice[];
  arguments?: string[];
  cpus: number;
  linuxBootPartition?: string;
}

export const DEFAULT_STARTUP = 50;
