/**
 * Linux sources of the statistics (SEMANTICS.md §8), as pure parsers of the text the
 * kernel gives: /proc/<pid>/stat, statm, status and /sys/class/net/<tap>/statistics.
 * FreeBSD (sysctl kern.proc / ifdata, libvmmapi) is not supported yet.
 */
import { type Result, ok, err } from '../core/result.js';
import type { IfData, KinfoMem, Rusage, StatsData } from '../core/wire/stats.js';
import type { Timeval } from '../core/wire/common.js';

export interface ProcStat {
  minflt: bigint;
  majflt: bigint;
  /** clock ticks */
  utime: bigint;
  stime: bigint;
  /** bytes */
  vsize: bigint;
  /** pages */
  rss: bigint;
  nswap: bigint;
}

const num = (s: string | undefined): bigint | undefined => (s !== undefined && /^-?\d+$/.test(s) ? BigInt(s) : undefined);

/** /proc/<pid>/stat: fields numbered as in proc(5), counted after the `(comm)` field (which may contain spaces and parentheses). */
export function parseProcStat(text: string): Result<ProcStat> {
  const close = text.lastIndexOf(')');
  if (close < 0) return err('/proc/PID/stat: no (comm) field');
  const rest = text.slice(close + 1).trim().split(/\s+/);
  // rest[0] is field 3 (state)
  const field = (n: number): bigint | undefined => num(rest[n - 3]);
  const v = { minflt: field(10), majflt: field(12), utime: field(14), stime: field(15), vsize: field(23), rss: field(24), nswap: field(36) };
  for (const [k, x] of Object.entries(v)) if (x === undefined) return err(`/proc/PID/stat: field ${k} missing or not a number`);
  return ok(v as ProcStat);
}

export interface ProcStatm {
  /** pages */
  text: bigint;
  data: bigint;
}

/** /proc/<pid>/statm: size resident shared text lib data dt (pages). */
export function parseStatm(text: string): Result<ProcStatm> {
  const f = text.trim().split(/\s+/);
  const t = num(f[3]);
  const d = num(f[5]);
  if (t === undefined || d === undefined) return err('/proc/PID/statm: expected 7 numbers');
  return ok({ text: t, data: d });
}

export interface ProcStatus {
  nvcsw: bigint;
  nivcsw: bigint;
}

/** /proc/<pid>/status: the context switch counters. */
export function parseStatus(text: string): Result<ProcStatus> {
  const get = (k: string): bigint | undefined => num(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(text)?.[1]);
  const nvcsw = get('voluntary_ctxt_switches');
  const nivcsw = get('nonvoluntary_ctxt_switches');
  if (nvcsw === undefined || nivcsw === undefined) return err('/proc/PID/status: no context switch counters');
  return ok({ nvcsw, nivcsw });
}

/** The files of /sys/class/net/<tap>/statistics that are used (plus mtu and flags). */
export const IF_COUNTERS = [
  'rx_packets', 'rx_errors', 'rx_bytes', 'rx_dropped', 'multicast', 'tx_packets', 'tx_errors', 'tx_bytes', 'tx_dropped', 'collisions',
] as const;
export type IfCounters = Record<(typeof IF_COUNTERS)[number], string> & { mtu: string; flags: string };

const int32 = (s: string, base = 10): number => {
  const n = Number.parseInt(s.trim(), base);
  return Number.isFinite(n) ? n | 0 : 0;
};

/**
 * Interface counters of the host-side tap as seen by the unikernel's device `bridge`:
 * what the tap receives is what the unikernel sent (input), what it transmits is output.
 */
export function ifDataOf(bridge: string, c: IfCounters): Result<IfData> {
  const vals: Partial<Record<keyof IfCounters, bigint>> = {};
  for (const k of IF_COUNTERS) {
    const v = num(c[k].trim());
    if (v === undefined) return err(`interface counter ${k} is not a number: ${JSON.stringify(c[k])}`);
    vals[k] = v;
  }
  const v = vals as Record<(typeof IF_COUNTERS)[number], bigint>;
  return ok({
    bridge,
    flags: int32(c.flags.trim().replace(/^0x/, ''), 16),
    sendLength: 0,
    maxSendLength: 0,
    sendDrops: 0,
    mtu: int32(c.mtu),
    baudrate: 0n,
    inputPackets: v.rx_packets,
    inputErrors: v.rx_errors,
    outputPackets: v.tx_packets,
    outputErrors: v.tx_errors,
    collisions: v.collisions,
    inputBytes: v.rx_bytes,
    outputBytes: v.tx_bytes,
    inputMcast: v.multicast,
    outputMcast: 0n,
    inputDropped: v.rx_dropped,
    outputDropped: v.tx_dropped,
  });
}

const tv = (ticks: bigint, hz: bigint): Timeval => {
  const us = (ticks * 1_000_000n) / hz;
  return { seconds: us / 1_000_000n, microseconds: Number(us % 1_000_000n) };
};

export interface ProcessTexts {
  stat: string;
  statm: string;
  status: string;
  /** ctime of /proc/<pid> in milliseconds */
  startMs: number;
}

/** StatsData of one unikernel from its tender's /proc texts and its interfaces. */
export function statsDataOf(p: ProcessTexts, ifdata: IfData[], clockTicks: number): Result<StatsData> {
  const st = parseProcStat(p.stat);
  if (!st.ok) return st;
  const sm = parseStatm(p.statm);
  if (!sm.ok) return sm;
  const ss = parseStatus(p.status);
  if (!ss.ok) return ss;
  const hz = BigInt(clockTicks > 0 ? clockTicks : 100);
  const s = st.value;
  const resourceUsage: Rusage = {
    utime: tv(s.utime, hz),
    stime: tv(s.stime, hz),
    maxrss: s.rss,
    ixrss: 0n,
    idrss: 0n,
    isrss: 0n,
    minflt: s.minflt,
    majflt: s.majflt,
    nswap: s.nswap,
    inblock: 0n,
    outblock: 0n,
    msgsnd: 0n,
    msgrcv: 0n,
    nsignals: 0n,
    nvcsw: ss.value.nvcsw,
    nivcsw: ss.value.nivcsw,
  };
  const startUs = BigInt(Math.floor(p.startMs * 1000));
  const kinfoMem: KinfoMem = {
    vsize: s.vsize,
    rss: s.rss,
    tsize: sm.value.text,
    dsize: sm.value.data,
    ssize: sm.value.data,
    runtime: ((s.utime + s.stime) * 1_000_000n) / hz,
    cow: 0,
    start: { seconds: startUs / 1_000_000n, microseconds: Number(startUs % 1_000_000n) },
  };
  return ok({ resourceUsage, ifdata, kinfoMem });
}
