/**
 * Statistics as InfluxDB line protocol, as upstream's albatross-influx writes them
 * (SEMANTICS.md §9.1: measurement, tag and field names exactly), and as Prometheus text
 * exposition for `/metrics`. Pure: the current time is a parameter.
 */
import type { Time } from '../core/asn.js';
import { type Name, nameToString } from '../core/name.js';
import type { IfData, KinfoMem, Rusage, StatsData, VmmStat } from '../core/wire/stats.js';
import type { Timeval } from '../core/wire/common.js';

/** The `vm` tag: the label of the name, or its full text with `--no-drop-path` (or when it has no label). */
export function vmTag(n: Name, dropPath: boolean): string {
  return dropPath && n.label !== undefined ? n.label : nameToString(n);
}

/**
 * The tags of a sample: upstream's `vm`, then `name`, the full name as received (relative to
 * the subscription's path), so that `acme:web` and `globex:web` stay two series when `vm` is
 * the label `web` for both.
 */
export interface SampleTags {
  vm: string;
  name: string;
}

/** Backslash-escapes `,`, `=` and space (tag keys, tag values, field keys). */
export const escapeKey = (s: string): string => s.replace(/([,= ])/g, '\\$1');

const u64 = (v: bigint): string => `${BigInt.asUintN(64, v)}i`;
const u32 = (v: number): string => `${v >>> 0}i`;
const tv = (t: Timeval): string => `${BigInt.asUintN(64, t.seconds)}.${String(t.microseconds).padStart(6, '0')}`;

function line(measurement: string, tags: [string, string][], fields: [string, string][]): string {
  return `${measurement}${tags.map(([k, v]) => `,${k}=${escapeKey(v)}`).join('')} ${fields.map(([k, v]) => `${k}=${v}`).join(',')}`;
}

export function resourceUsageLine(t: SampleTags, r: Rusage): string {
  return line('resource_usage', [['vm', t.vm], ['name', t.name]], [
    ['utime', tv(r.utime)], ['stime', tv(r.stime)], ['maxrss', u64(r.maxrss)], ['ixrss', u64(r.ixrss)],
    ['idrss', u64(r.idrss)], ['isrss', u64(r.isrss)], ['minflt', u64(r.minflt)], ['maxflt', u64(r.majflt)],
    ['nswap', u64(r.nswap)], ['inblock', u64(r.inblock)], ['outblock', u64(r.outblock)], ['msgsnd', u64(r.msgsnd)],
    ['msgrcv', u64(r.msgrcv)], ['nsignals', u64(r.nsignals)], ['nvcsw', u64(r.nvcsw)], ['nivcsw', u64(r.nivcsw)],
  ]);
}

export function kinfoMemLine(t: SampleTags, m: KinfoMem, now: Time): string {
  const startMs = Number(m.start.seconds) * 1000 + m.start.microseconds / 1000;
  return line('kinfo_mem', [['vm', t.vm], ['name', t.name]], [
    ['vsize', u64(m.vsize)], ['rss', u64(m.rss)], ['tsize', u64(m.tsize)], ['dsize', u64(m.dsize)], ['ssize', u64(m.ssize)],
    ['cow_faults', u32(m.cow)], ['runtime', u64(m.runtime)], ['uptime', ((now - startMs) / 1000).toFixed(6)],
  ]);
}

export function vmmLine(t: SampleTags, xs: VmmStat[]): string {
  return line('vmm', [['vm', t.vm], ['name', t.name]], xs.map((x) => [escapeKey(x.key), u64(x.value)]));
}

export function interfaceLine(t: SampleTags, i: IfData): string {
  return line('interface', [['vm', t.vm], ['bridge', i.bridge], ['name', t.name]], [
    ['send_queue_length', u32(i.sendLength)], ['max_send_queue_length', u32(i.maxSendLength)], ['send_queue_drops', u32(i.sendDrops)],
    ['mtu', u32(i.mtu)], ['baudrate', u64(i.baudrate)], ['vm_to_host_packets', u64(i.inputPackets)],
    ['vm_to_host_errors', u64(i.inputErrors)], ['vm_to_host_bytes', u64(i.inputBytes)], ['vm_to_host_mcast', u64(i.inputMcast)],
    ['vm_to_host_dropped', u64(i.inputDropped)], ['collisions', u64(i.collisions)], ['host_to_vm_packets', u64(i.outputPackets)],
    ['host_to_vm_errors', u64(i.outputErrors)], ['host_to_vm_bytes', u64(i.outputBytes)], ['host_to_vm_mcast', u64(i.outputMcast)],
    ['host_to_vm_dropped', u64(i.outputDropped)],
  ]);
}

/** One sample as one write: lines joined by `\n` with a final `\n`, no timestamps. */
export function samplePayload(t: SampleTags, d: StatsData, now: Time): string {
  const lines = [resourceUsageLine(t, d.resourceUsage)];
  if (d.kinfoMem !== undefined) lines.push(kinfoMemLine(t, d.kinfoMem, now));
  if (d.vmmStats !== undefined) lines.push(vmmLine(t, d.vmmStats));
  for (const i of d.ifdata) lines.push(interfaceLine(t, i));
  return `${lines.join('\n')}\n`;
}

// ------------------------------------------------------------------ Prometheus

const promLabel = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const promMetricName = (s: string): string => s.replace(/[^a-zA-Z0-9_]/g, '_');

/** Prometheus text exposition (format 0.0.4) of the latest sample of each unikernel (keyed by its full name). */
export function prometheusText(samples: ReadonlyMap<string, { tags: SampleTags; data: StatsData; at: Time }>, now: Time): string {
  type Row = { labels: string; value: string };
  const families = new Map<string, { help: string; type: 'counter' | 'gauge'; rows: Row[] }>();
  const put = (name: string, type: 'counter' | 'gauge', help: string, labels: [string, string][], value: string): void => {
    const full = `albatross_${promMetricName(name)}`;
    let f = families.get(full);
    if (f === undefined) {
      f = { help, type, rows: [] };
      families.set(full, f);
    }
    f.rows.push({ labels: labels.map(([k, v]) => `${k}="${promLabel(v)}"`).join(','), value });
  };
  const secs = (t: Timeval): string => (Number(t.seconds) + t.microseconds / 1e6).toString();
  for (const [, { tags, data: d }] of [...samples].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const l: [string, string][] = [['vm', tags.vm], ['name', tags.name]];
    const r = d.resourceUsage;
    put('cpu_user_seconds_total', 'counter', 'User CPU time of the tender.', l, secs(r.utime));
    put('cpu_system_seconds_total', 'counter', 'System CPU time of the tender.', l, secs(r.stime));
    put('max_rss', 'gauge', 'Resident set size in pages (maxrss of the sample: on Linux the current resident set, /proc/PID/stat field 24).', l, String(r.maxrss));
    put('minor_faults_total', 'counter', 'Minor page faults.', l, String(r.minflt));
    put('major_faults_total', 'counter', 'Major page faults.', l, String(r.majflt));
    put('voluntary_context_switches_total', 'counter', 'Voluntary context switches.', l, String(r.nvcsw));
    put('involuntary_context_switches_total', 'counter', 'Involuntary context switches.', l, String(r.nivcsw));
    if (d.kinfoMem !== undefined) {
      const m = d.kinfoMem;
      put('virtual_memory_bytes', 'gauge', 'Virtual memory size.', l, String(m.vsize));
      put('rss', 'gauge', 'Resident set size in pages of the host (usually 4096 bytes).', l, String(m.rss));
      put('uptime_seconds', 'gauge', 'Time since the tender started.', l, ((now - (Number(m.start.seconds) * 1000 + m.start.microseconds / 1000)) / 1000).toFixed(3));
    }
    for (const x of d.vmmStats ?? []) put(`vmm_${x.key}`, 'gauge', 'bhyve vmm counter.', l, String(x.value));
    for (const i of d.ifdata) {
      const il: [string, string][] = [['vm', tags.vm], ['bridge', i.bridge], ['name', tags.name]];
      put('interface_vm_to_host_packets_total', 'counter', 'Packets sent by the unikernel.', il, String(i.inputPackets));
      put('interface_vm_to_host_bytes_total', 'counter', 'Bytes sent by the unikernel.', il, String(i.inputBytes));
      put('interface_vm_to_host_errors_total', 'counter', 'Errors on packets sent by the unikernel.', il, String(i.inputErrors));
      put('interface_vm_to_host_dropped_total', 'counter', 'Dropped packets sent by the unikernel.', il, String(i.inputDropped));
      put('interface_host_to_vm_packets_total', 'counter', 'Packets received by the unikernel.', il, String(i.outputPackets));
      put('interface_host_to_vm_bytes_total', 'counter', 'Bytes received by the unikernel.', il, String(i.outputBytes));
      put('interface_host_to_vm_errors_total', 'counter', 'Errors on packets received by the unikernel.', il, String(i.outputErrors));
      put('interface_host_to_vm_dropped_total', 'counter', 'Dropped packets received by the unikernel.', il, String(i.outputDropped));
      put('interface_mtu', 'gauge', 'MTU of the interface.', il, String(i.mtu));
    }
  }
  const out: string[] = [];
  for (const [name, f] of families) {
    out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
    for (const r of f.rows) out.push(`${name}{${r.labels}} ${r.value}`);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
