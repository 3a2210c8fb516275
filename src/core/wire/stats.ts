/**
 * Statistics family (WIRE.md §4 StatsCmd, StatsData and its parts).
 *
 * Counters that the kernel reports as 64-bit values are `Int64` (8-octet OCTET STRING,
 * bigint); the `if_data` fields that are C `int`s are `Int32` (INTEGER, number).
 */
import {
  type TypeOf, choice, explicit, implicitSeq, int, int32, int64, opt, seq, seqOf, tagNull, utf8,
} from '../asn.js';
import { timeval } from './common.js';

/** One network interface of a unikernel: its device name inside the unikernel and the host tap. */
export const statsNetwork = seq('StatsNetwork', {
  bridge: utf8,
  tap: utf8,
});
export type StatsNetwork = TypeOf<typeof statsNetwork>;

/** stats add, vmm -> stats: FreeBSD vmm device ("solo5-<pid>", "" on Linux), tender pid, interfaces. */
export const statsAdd = seq('StatsAdd', {
  vmmdev: utf8,
  pid: int,
  network: seqOf(statsNetwork),
});
export type StatsAdd = TypeOf<typeof statsAdd>;

export const statsCmd = choice('StatsCmd', {
  add: explicit(0, statsAdd),
  remove: tagNull(1),
  subscribe: tagNull(2),
  initial: tagNull(3),
});
export type StatsCmd = TypeOf<typeof statsCmd>;

/** getrusage(2) of the tender process. */
export const rusage = seq('Rusage', {
  utime: timeval,
  stime: timeval,
  maxrss: int64,
  ixrss: int64,
  idrss: int64,
  isrss: int64,
  minflt: int64,
  majflt: int64,
  nswap: int64,
  inblock: int64,
  outblock: int64,
  msgsnd: int64,
  msgrcv: int64,
  nsignals: int64,
  nvcsw: int64,
  nivcsw: int64,
});
export type Rusage = TypeOf<typeof rusage>;

/** FreeBSD kinfo_proc memory figures; carried as `[1] IMPLICIT` in StatsData. */
export const kinfoMem = seq('KinfoMem', {
  vsize: int64,
  rss: int64,
  tsize: int64,
  dsize: int64,
  ssize: int64,
  runtime: int64,
  cow: int,
  start: timeval,
});
export type KinfoMem = TypeOf<typeof kinfoMem>;

/** Per-interface counters (struct if_data). */
export const ifData = seq('IfData', {
  bridge: utf8,
  flags: int32,
  sendLength: int32,
  maxSendLength: int32,
  sendDrops: int32,
  mtu: int32,
  baudrate: int64,
  inputPackets: int64,
  inputErrors: int64,
  outputPackets: int64,
  outputErrors: int64,
  collisions: int64,
  inputBytes: int64,
  outputBytes: int64,
  inputMcast: int64,
  outputMcast: int64,
  inputDropped: int64,
  outputDropped: int64,
});
export type IfData = TypeOf<typeof ifData>;

/** One bhyve/vmm counter (FreeBSD). */
export const vmmStat = seq('VmmStat', {
  key: utf8,
  value: int64,
});
export type VmmStat = TypeOf<typeof vmmStat>;

/** Data statistics [1]. Note the IMPLICIT tag of kinfo-mem: it encodes as `A1 ..` around KinfoMem's fields. */
export const statsData = seq('StatsData', {
  resourceUsage: rusage,
  ifdata: seqOf(ifData),
  vmmStats: opt(explicit(0, seqOf(vmmStat))),
  kinfoMem: opt(implicitSeq(1, kinfoMem)),
});
export type StatsData = TypeOf<typeof statsData>;
