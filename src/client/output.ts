/**
 * How a client shows what it received: human-readable text (tables for info, policy and
 * block, console lines with non-printable characters escaped) or one JSON document per
 * message for scripts. Pure: returns the text; the caller writes it.
 */
import { type Json, formatGeneralizedTime } from '../core/asn.js';
import { type Name, nameToString } from '../core/name.js';
import { type Command, type Wire, wire } from '../core/wire/wire.js';
import { type LogWire, type LogEvent, describeLogAction, logWire } from '../core/wire/log.js';
import type { FailBehaviour, Policy } from '../core/wire/common.js';
import type { NamedInfo } from '../core/wire/unikernel.js';
import type { BlockDeviceInfo } from '../core/wire/block.js';
import type { UnikernelStatus } from '../core/wire/status.js';
import type { StatsData } from '../core/wire/stats.js';
import { formatMac } from '../core/unikernel.js';
import { cpuidSet, stringSet } from '../core/policy.js';
import { describeSignal } from '../core/signals.js';

export interface Style {
  colour: boolean;
}
const paint = (s: Style, code: string, text: string): string => (s.colour ? `\x1b[${code}m${text}\x1b[0m` : text);
export const bold = (s: Style, t: string): string => paint(s, '1', t);
export const red = (s: Style, t: string): string => paint(s, '31', t);

/**
 * Console text as a terminal can show it safely: control characters and DEL as \xNN. A
 * backslash is kept as it is (the Solo5 banner and paths are drawn with them), so a literal
 * `\x07` in the text reads the same as an escaped BEL: `--json` has the exact text.
 */
export function escapeLine(line: string): string {
  let out = '';
  for (const ch of line) {
    const c = ch.codePointAt(0) as number;
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0)) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}

/** RFC 3339 time of a wire time (milliseconds). */
export function rfc3339(t: number): string {
  const d = new Date(Math.floor(t));
  return Number.isNaN(d.getTime()) ? formatGeneralizedTime(t) : d.toISOString().replace('.000Z', 'Z');
}

/**
 * The default file name of a download (`get`, `dump-block`, `extract-dump`): no colons, so
 * that shells, scp and other systems take it as it is. The path labels and the label joined
 * by `_` (which a label cannot contain, so no two names share a file), a dot, and the UTC time
 * in ISO 8601 basic format: `dept:web` at 2024-01-31 12:00:00 is `dept_web.20240131T120000Z`.
 */
export function downloadFileName(name: Name, t: number): string {
  const parts = name.label === undefined ? [...name.path] : [...name.path, name.label];
  const d = new Date(Math.floor(t));
  const time = Number.isNaN(d.getTime()) ? String(t) : d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
  return `${parts.length === 0 ? 'root' : parts.join('_')}.${time}`;
}

/** Columns padded to the widest cell; the header is bold. */
export function table(s: Style, header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [bold(s, line(header)), ...rows.map(line)].join('\n') + '\n';
}

const failText = (f: FailBehaviour): string =>
  f.kind === 'quit' ? 'quit' : f.value.length === 0 ? 'restart' : `restart on ${f.value.join(',')}`;

function policyRows(ps: { name: Name; policy: Policy }[]): string[][] {
  return ps.map(({ name, policy: p }) => [
    nameToString(name), String(p.unikernels), cpuidSet(p.cpuids).join(','), `${p.memory}`, p.block === undefined ? '-' : `${p.block}`,
    stringSet(p.bridges).join(',') || '-',
  ]);
}

/** What vmmd's status query adds to info (WIRE.md §8.2): the state of each unikernel, and when it was asked. */
export interface InfoStatus {
  list: UnikernelStatus[];
  now: number;
}

/** `1h02m`, `3m05s`, `42s`: a duration for the STATE column. */
export function shortDuration(ms: number): string {
  const t = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

function stateText(st: UnikernelStatus['state'] | undefined, now: number): string {
  if (st === undefined) return 'running';
  if (st.kind === 'running') return `running pid ${st.value.pid}, up ${shortDuration(now - st.value.started)}`;
  const f = st.value.failures;
  return `restarting after ${f} failure${f === 1 ? '' : 's'}, next start ${rfc3339(st.value.due)} (in ${shortDuration(st.value.due - now)})`;
}

function infoText(s: Style, xs: NamedInfo[], status?: InfoStatus): string {
  if (status !== undefined) return infoStatusText(s, xs, status);
  if (xs.length === 0) return 'no unikernels\n';
  const rows = xs.map(({ name, info: i }) => [
    nameToString(name), i.typ, i.cpuids.join(','), `${i.memory}`, rfc3339(i.started), failText(i.failBehaviour),
    [
      ...i.blocks.map((b) => `block ${b.unikernelDevice}=${b.hostDevice}`),
      ...i.bridges.map((n) => `net ${n.unikernelDevice}=${n.hostDevice} ${formatMac(n.mac)}`),
      ...(i.arguments === undefined ? [] : [`args ${JSON.stringify(i.arguments)}`]),
    ].join('; ') || '-',
  ]);
  return table(s, ['NAME', 'TYPE', 'CPUIDS', 'MEM(MB)', 'STARTED', 'ON EXIT', 'DEVICES / ARGS'], rows);
}

/** The info table with vmmd's status: a STATE column, and a row for each unikernel waiting to restart. */
function infoStatusText(s: Style, xs: NamedInfo[], status: InfoStatus): string {
  const byName = new Map(status.list.map((x) => [nameToString(x.name), x.state]));
  const rows = xs.map(({ name, info: i }) => {
    const key = nameToString(name);
    const st = byName.get(key);
    byName.delete(key);
    return [
      key, i.typ, i.cpuids.join(','), `${i.memory}`, rfc3339(i.started), failText(i.failBehaviour), stateText(st, status.now),
      [
        ...i.blocks.map((b) => `block ${b.unikernelDevice}=${b.hostDevice}`),
        ...i.bridges.map((n) => `net ${n.unikernelDevice}=${n.hostDevice} ${formatMac(n.mac)}`),
        ...(i.arguments === undefined ? [] : [`args ${JSON.stringify(i.arguments)}`]),
      ].join('; ') || '-',
    ];
  });
  // those waiting out a back-off are not in the info reply: upstream's info lists running ones
  for (const [key, st] of byName) if (st.kind === 'restarting') rows.push([key, '-', '-', '-', '-', 'restart', stateText(st, status.now), '-']);
  if (rows.length === 0) return 'no unikernels\n';
  rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return table(s, ['NAME', 'TYPE', 'CPUIDS', 'MEM(MB)', 'STARTED', 'ON EXIT', 'STATE', 'DEVICES / ARGS'], rows);
}

/** The status as one JSON document (after the info reply's), for --json. */
export function statusJson(status: InfoStatus): string {
  return `${JSON.stringify({
    status: status.list.map((x) => ({
      name: nameToString(x.name),
      state: x.state.kind,
      ...(x.state.kind === 'running'
        ? { pid: x.state.value.pid, started: rfc3339(x.state.value.started), failures: x.state.value.failures }
        : { failures: x.state.value.failures, due: rfc3339(x.state.value.due) }),
    })),
  })}\n`;
}

/** vmmd's status on its own (`status`, WIRE.md §8.2): the state of each unikernel, as info's STATE column shows it. */
export function statusText(s: Style, status: InfoStatus): string {
  if (status.list.length === 0) return 'no unikernels\n';
  return table(s, ['NAME', 'STATE'], status.list.map((x) => [nameToString(x.name), stateText(x.state, status.now)]));
}

function blockText(s: Style, xs: BlockDeviceInfo[]): string {
  if (xs.length === 0) return 'no block devices\n';
  return table(s, ['NAME', 'SIZE(MB)', 'IN USE'], xs.map((b) => [nameToString(b.name), `${b.size}`, b.active ? 'yes' : 'no']));
}

function statsText(name: Name, d: StatsData): string {
  const r = d.resourceUsage;
  const tv = (t: { seconds: bigint; microseconds: number }): string => `${t.seconds}.${String(t.microseconds).padStart(6, '0')}s`;
  // vmmd_stats on Linux fills maxrss with the resident set in pages (/proc/PID/stat field 24);
  // upstream on FreeBSD sends getrusage's kilobytes. kinfo_mem: rss in pages, vsize in bytes.
  const lines = [`${nameToString(name)} utime ${tv(r.utime)} stime ${tv(r.stime)} maxrss ${r.maxrss} pages`];
  if (d.kinfoMem) lines.push(`  memory rss ${d.kinfoMem.rss} pages vsize ${d.kinfoMem.vsize} bytes`);
  for (const i of d.ifdata) {
    lines.push(`  ${i.bridge} in ${i.inputPackets} pkts ${i.inputBytes} B, out ${i.outputPackets} pkts ${i.outputBytes} B, drops ${i.inputDropped}/${i.outputDropped}`);
  }
  for (const v of d.vmmStats ?? []) lines.push(`  ${v.key} ${v.value}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Human text of one message (images and block data are handled by the caller and not shown).
 * `cmd`, the command answered, lets a reply say what happened: the daemon answers a restart
 * with upstream's `created unikernel`, shown as `restarted unikernel`. `status`, vmmd's status of the unikernels, adds their state to an info reply.
 */
export function describeMessage(s: Style, w: Wire, cmd?: Command, status?: InfoStatus): string {
  const p = w.payload;
  switch (p.kind) {
    case 'failure':
      return `${red(s, 'failure')}: ${p.value}\n`;
    case 'command':
      return `unexpected command from the daemon\n`;
    case 'reply': {
      const r = p.value;
      switch (r.kind) {
        case 'empty':
          return 'success\n';
        case 'string':
          if (r.value === 'created unikernel' && cmd?.kind === 'unikernel' && cmd.value.kind === 'restart') return 'restarted unikernel\n';
          return `${r.value}\n`;
        case 'policies':
          if (r.value.length === 0) return 'no policies\n';
          return table(s, ['PATH', 'UNIKERNELS', 'CPUIDS', 'MEM(MB)', 'BLOCK(MB)', 'BRIDGES'], policyRows(r.value));
        case 'block_devices':
          return blockText(s, r.value);
        case 'unikernel_info':
        case 'unikernel_info_v5':
        case 'unikernel_info_v4':
          return infoText(s, r.value, status);
        case 'consoles':
          return r.value.length === 0 ? 'no inactive consoles\n' : r.value.map((n) => `${nameToString(n)}\n`).join('');
        case 'unikernel_image':
          return `image of ${r.value.image.length} bytes${r.value.compressed ? ' (compressed)' : ''}\n`;
        case 'old_block_device_image':
          return `block device image of ${r.value.image.length} bytes${r.value.compressed ? ' (compressed)' : ''}\n`;
        case 'block_device_image':
          return `block device content follows${r.value ? ' (compressed)' : ''}\n`;
        default: {
          const never: never = r;
          return never;
        }
      }
    }
    case 'data': {
      const d = p.value;
      switch (d.kind) {
        case 'console':
          return `${bold(s, nameToString(w.header.name))} ${rfc3339(d.value.timestamp)} ${escapeLine(d.value.line)}\n`;
        case 'statistics':
          return statsText(w.header.name, d.value);
        case 'block':
          return d.value.kind === 'eof' ? 'end of block data\n' : `${d.value.value.length} bytes of block data\n`;
        default: {
          const never: never = d;
          return never;
        }
      }
    }
    default: {
      const never: never = p;
      return never;
    }
  }
}

/** Replaces image octets (hex strings under "image") by their size, so JSON output stays small. */
function summarise(j: Json): Json {
  if (Array.isArray(j)) return j.map(summarise);
  if (j !== null && typeof j === 'object') {
    const out: { [k: string]: Json } = {};
    for (const [k, v] of Object.entries(j)) out[k] = k === 'image' && typeof v === 'string' ? { bytes: v.length / 2 } : summarise(v);
    return out;
  }
  return j;
}

/** One JSON document (one line) per message. */
export const messageJson = (w: Wire): string => `${JSON.stringify(summarise(wire.toJson(w)))}\n`;

function eventText(e: LogEvent): string {
  switch (e.kind) {
    case 'startup':
      return 'startup';
    case 'hup':
      return 'hup';
    case 'login':
    case 'logout':
      return `${e.kind} ${nameToString(e.value.name)} ${e.value.ip.join('.')}:${e.value.port}`;
    case 'unikernel_start':
      return `start ${nameToString(e.value.name)} pid ${e.value.pid}` +
        e.value.taps.map((t) => ` ${t.bridge}=${t.tap}`).join('') +
        e.value.blocks.map((b) => ` ${b.name}=${nameToString(b.device)}`).join('');
    case 'unikernel_start_old0':
    case 'unikernel_start_old1':
      return `start ${nameToString(e.value.name)} pid ${e.value.pid}`;
    case 'unikernel_stop': {
      const st = e.value.status;
      // signal numbers on the wire are OCaml's (SIGTERM = -11): shown by name
      const how = st.kind === 'exit' ? `exit ${st.value}` : st.kind === 'signal' ? describeSignal(st.value) : `stopped ${describeSignal(st.value)}`;
      return `stop ${nameToString(e.value.name)} pid ${e.value.pid} ${how}`;
    }
    case 'action':
      return `${nameToString(e.value.name)} ${describeLogAction(e.value.action)}`;
    default: {
      const never: never = e;
      return never;
    }
  }
}

export function describeLogMessage(s: Style, m: LogWire): string {
  const p = m.payload;
  switch (p.kind) {
    case 'reply':
      return p.value.kind === 'string' ? `${p.value.value}\n` : '';
    case 'failure':
      return `${red(s, 'failure')}: ${p.value}\n`;
    case 'data':
      return `${rfc3339(p.value.timestamp)} ${eventText(p.value.event)}\n`;
    case 'command':
      return 'unexpected command from the log daemon\n';
    default: {
      const never: never = p;
      return never;
    }
  }
}

export const logMessageJson = (m: LogWire): string => `${JSON.stringify(logWire.toJson(m))}\n`;

/** `out:` and a hexdump (offset, hex, ASCII) of a message body, as `--socket -` prints it. */
export function hexdump(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let off = 0; off < bytes.length; off += 16) {
    const row = Array.from(bytes.subarray(off, off + 16));
    const hex = row.map((b) => b.toString(16).padStart(2, '0'));
    const left = hex.slice(0, 8).join(' ');
    const right = hex.slice(8).join(' ');
    const ascii = row.map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${left.padEnd(23)}  ${right.padEnd(23)}  |${ascii}|`);
  }
  return `out:\n${lines.join('\n')}\n`;
}

// ------------------------------------------------------------------ --json

/**
 * A JSON value of the `--json` documents: like Json, with bigint for the 64-bit counters
 * (written as plain digits, so jq reads a number).
 */
export type Doc = string | number | bigint | boolean | null | Doc[] | { [k: string]: Doc | undefined };

/** One line of JSON; bigint as digits, undefined fields left out. */
export function docText(d: Doc): string {
  const enc = (v: Doc | undefined): string => {
    if (typeof v === 'bigint') return v.toString();
    if (v === null || typeof v !== 'object') return JSON.stringify(v);
    if (Array.isArray(v)) return `[${v.map(enc).join(',')}]`;
    return `{${Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => `${JSON.stringify(k)}:${enc(x)}`).join(',')}}`;
  };
  return `${enc(d)}\n`;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const seconds = (t: { seconds: bigint; microseconds: number }): number => Number(t.seconds) + t.microseconds / 1e6;

/** State fields of a unikernel from vmmd's status (SEMANTICS.md §11.4). */
function stateDoc(st: UnikernelStatus['state']): { [k: string]: Doc } {
  return st.kind === 'running'
    ? { state: 'running', pid: st.value.pid, since: rfc3339(st.value.started), failures: st.value.failures }
    : { state: 'restarting', failures: st.value.failures, next_start: rfc3339(st.value.due) };
}

/** `{"unikernels":[{name, state, ...}]}`: vmmd's status on its own (`status --json`). */
export const statusDoc = (status: InfoStatus): Doc => ({
  unikernels: status.list.map((x) => ({ name: nameToString(x.name), ...stateDoc(x.state) })),
});

/** One unikernel of an info reply, with its state folded in when vmmd's status is known. */
function unikernelDoc({ name, info: i }: NamedInfo, st: UnikernelStatus['state'] | undefined): { [k: string]: Doc | undefined } {
  return {
    name: nameToString(name),
    ...(st === undefined ? { state: 'running' } : stateDoc(st)),
    type: i.typ,
    started: rfc3339(i.started),
    cpuids: i.cpuids,
    cpus: i.cpus,
    memory_mb: i.memory,
    startup: i.startup ?? null,
    on_exit: i.failBehaviour.kind,
    restart_on: i.failBehaviour.kind === 'restart' ? i.failBehaviour.value : undefined,
    blocks: i.blocks.map((b) => ({ name: b.unikernelDevice, host_device: b.hostDevice, sector_size: b.sectorSize, size_mb: b.blockSize })),
    networks: i.bridges.map((n) => ({ name: n.unikernelDevice, host_device: n.hostDevice, mac: formatMac(n.mac) })),
    arguments: i.arguments ?? [],
    linux_boot_partition: i.linuxBootPartition,
    digest: i.typ === 'solo5' ? hex(i.digest) : Buffer.from(i.digest).toString('latin1'),
  };
}

/** `{"unikernels":[...]}`: the info reply, and the unikernels only vmmd's status knows (waiting to restart). */
export function infoDoc(xs: NamedInfo[], status?: InfoStatus): Doc {
  const byName = new Map((status?.list ?? []).map((x) => [nameToString(x.name), x.state]));
  const out = xs.map((x) => {
    const key = nameToString(x.name);
    const st = byName.get(key);
    byName.delete(key);
    return unikernelDoc(x, st);
  });
  for (const [key, st] of byName) if (st.kind === 'restarting') out.push({ name: key, ...stateDoc(st) });
  out.sort((a, b) => (String(a.name) < String(b.name) ? -1 : String(a.name) > String(b.name) ? 1 : 0));
  return { unikernels: out };
}

function statsDoc(name: Name, d: StatsData, now: number): Doc {
  const r = d.resourceUsage;
  return {
    name: nameToString(name),
    time: rfc3339(now),
    utime_s: seconds(r.utime),
    stime_s: seconds(r.stime),
    maxrss_pages: r.maxrss,
    rss_pages: d.kinfoMem?.rss,
    vsize_bytes: d.kinfoMem?.vsize,
    interfaces: d.ifdata.map((i) => ({
      bridge: i.bridge, mtu: i.mtu, in_packets: i.inputPackets, in_bytes: i.inputBytes, in_errors: i.inputErrors, in_drops: i.inputDropped,
      out_packets: i.outputPackets, out_bytes: i.outputBytes, out_errors: i.outputErrors, out_drops: i.outputDropped,
    })),
    vmm: d.vmmStats === undefined ? undefined : Object.fromEntries(d.vmmStats.map((v) => [v.key, v.value])),
  };
}

/**
 * The `--json` document of one message (SEMANTICS.md §11.4), or undefined for what is not
 * printed: the reply that opens a subscription (console, stats) carries nothing to read.
 * `now` stamps statistics, which carry no time on the wire.
 */
export function messageDoc(w: Wire, cmd?: Command, status?: InfoStatus, now = Date.now()): Doc | undefined {
  const p = w.payload;
  switch (p.kind) {
    case 'failure':
      return { result: 'failure', message: p.value };
    case 'command':
      return { result: 'failure', message: 'unexpected command from the daemon' };
    case 'reply': {
      const r = p.value;
      switch (r.kind) {
        case 'empty':
        case 'string':
          if (cmd !== undefined && (cmd.kind === 'console' || cmd.kind === 'stats') && cmd.value.kind === 'subscribe') return undefined;
          return r.kind === 'empty' ? { result: 'success' } : { result: 'success', message: r.value };
        case 'policies':
          return {
            policies: r.value.map(({ name, policy: q }) => ({
              path: nameToString(name), unikernels: q.unikernels, cpuids: cpuidSet(q.cpuids), memory_mb: q.memory, block_mb: q.block ?? null,
              bridges: stringSet(q.bridges),
            })),
          };
        case 'block_devices':
          return { block_devices: r.value.map((b) => ({ name: nameToString(b.name), size_mb: b.size, in_use: b.active })) };
        case 'unikernel_info':
        case 'unikernel_info_v5':
        case 'unikernel_info_v4':
          return infoDoc(r.value, status);
        case 'consoles':
          return { inactive_consoles: r.value.map(nameToString) };
        case 'unikernel_image':
        case 'old_block_device_image':
          return { image_bytes: r.value.image.length, compressed: r.value.compressed };
        case 'block_device_image':
          return { result: 'success', compressed: r.value };
        default: {
          const never: never = r;
          return never;
        }
      }
    }
    case 'data': {
      const d = p.value;
      switch (d.kind) {
        case 'console':
          return { name: nameToString(w.header.name), time: rfc3339(d.value.timestamp), line: d.value.line };
        case 'statistics':
          return statsDoc(w.header.name, d.value, now);
        case 'block':
          return d.value.kind === 'eof' ? { block_data: 'eof' } : { block_data_bytes: d.value.value.length };
        default: {
          const never: never = d;
          return never;
        }
      }
    }
    default: {
      const never: never = p;
      return never;
    }
  }
}

/** The fields of one log event (SEMANTICS.md §11.4): `event` names it, `name` what it is about. */
function eventDoc(e: LogEvent): { [k: string]: Doc | undefined } {
  switch (e.kind) {
    case 'startup':
    case 'hup':
      return { event: e.kind };
    case 'login':
    case 'logout':
      return { event: e.kind, name: nameToString(e.value.name), address: `${e.value.ip.join('.')}:${e.value.port}` };
    case 'unikernel_start':
      return {
        event: 'start', name: nameToString(e.value.name), pid: e.value.pid, digest: hex(e.value.digest),
        taps: e.value.taps.map((t) => ({ bridge: t.bridge, tap: t.tap })), blocks: e.value.blocks.map((b) => ({ name: b.name, device: nameToString(b.device) })),
      };
    case 'unikernel_start_old0':
      return { event: 'start', name: nameToString(e.value.name), pid: e.value.pid, taps: e.value.taps.map((t) => ({ tap: t })) };
    case 'unikernel_start_old1':
      return {
        event: 'start', name: nameToString(e.value.name), pid: e.value.pid,
        taps: e.value.taps.map((t) => ({ bridge: t.bridge, tap: t.tap })), blocks: e.value.blocks.map((b) => ({ name: b.name, device: b.device })),
      };
    case 'unikernel_stop': {
      const st = e.value.status;
      const how = st.kind === 'exit' ? { exit_code: st.value } : st.kind === 'signal' ? { signal: describeSignal(st.value) } : { stopped_by: describeSignal(st.value) };
      return { event: 'stop', name: nameToString(e.value.name), pid: e.value.pid, ...how };
    }
    case 'action': {
      const a = e.value.action;
      const base = { event: a.kind.replace('_', '-'), name: nameToString(e.value.name) };
      switch (a.kind) {
        case 'exec':
          return { ...base, pid: a.value.pid, argv: a.value.argv, taps: a.value.taps.map((t) => ({ bridge: t.bridge, tap: t.tap })) };
        case 'block_add':
          return { ...base, size_mb: a.value };
        case 'login':
        case 'logout':
          return { ...base, address: a.value };
        default:
          return base;
      }
    }
    default: {
      const never: never = e;
      return never;
    }
  }
}

/** The `--json` document of a message of vmmd_log, or undefined for the reply that opens the subscription. */
export function logDoc(m: LogWire): Doc | undefined {
  const p = m.payload;
  switch (p.kind) {
    case 'reply':
      return undefined;
    case 'failure':
      return { result: 'failure', message: p.value };
    case 'data':
      return { time: rfc3339(p.value.timestamp), ...eventDoc(p.value.event) };
    case 'command':
      return { result: 'failure', message: 'unexpected command from the log daemon' };
    default: {
      const never: never = p;
      return never;
    }
  }
}
