/**
 * The pure parts of vmmd_log: which events a subscription sees, the history kept in
 * memory, what to do with a log file found at start (torn last record), and the text
 * form of entries for `--read-only`.
 */
import { type Time, formatGeneralizedTime } from '../core/asn.js';
import { type Name, isPath, nameToString, subscriptionCovers } from '../core/name.js';
import { type LogEntry, type LogEvent, describeLogAction, logEventName, readLogFile } from '../core/wire/log.js';
import type { SinceCount } from '../core/wire/console.js';

/** An entry with its sequence number (position in the log since it was first created). */
export interface SequencedEntry {
  seq: bigint;
  entry: LogEntry;
}

/**
 * Does a subscription to `sub` see event `e`? Events about a name: a subscription to a
 * path sees the names whose path is that path or below it (not the unikernel `:dept` for
 * `dept:`, although it has the trie key of `dept:`), one to a name sees that name and
 * what is below its trie key (subscriptionCovers); events about no name (startup, hup):
 * only the root subscription.
 */
export function subscriptionMatches(sub: Name, e: LogEvent): boolean {
  const n = logEventName(e);
  if (n === undefined) return isPath(sub) && sub.path.length === 0;
  return subscriptionCovers(sub, n);
}

/** The history a new subscriber gets: matching entries, the last n (negative = all) or those at or after a time. */
export function selectHistory(entries: readonly SequencedEntry[], sub: Name, since: SinceCount): SequencedEntry[] {
  const matching = entries.filter((x) => subscriptionMatches(sub, x.entry.event));
  if (since.kind === 'count') {
    const n = since.value;
    if (n < 0 || n >= matching.length) return matching;
    return n === 0 ? [] : matching.slice(matching.length - n);
  }
  // timestamps on disk are whole seconds: compare at that precision
  const t = Math.floor(since.value / 1000) * 1000;
  return matching.filter((x) => x.entry.timestamp >= t);
}

/**
 * Keeps the last `max` entries, and of those no more than `maxBytes` octets of records
 * (each entry counted by its record's size as given to push): an entry's exec event carries
 * the tender's command line, with the unikernel's arguments of up to a frame in size, so a
 * count alone would let a tenant's create/destroy loop grow the history to gigabytes. The
 * newest entry is always kept.
 */
export class History {
  private items: { x: SequencedEntry; bytes: number }[] = [];
  private first = 0;
  private held = 0;
  constructor(readonly max: number, readonly maxBytes: number) {}
  push(x: SequencedEntry, bytes: number): void {
    this.items.push({ x, bytes });
    this.held += bytes;
    while (this.items.length - this.first > 1 && (this.items.length - this.first > this.max || this.held > this.maxBytes)) {
      this.held -= this.items[this.first].bytes;
      this.first++;
    }
    if (this.first > this.max) {
      this.items = this.items.slice(this.first);
      this.first = 0;
    }
  }
  /** Octets of the records kept. */
  get bytes(): number {
    return this.held;
  }
  all(): SequencedEntry[] {
    return this.items.slice(this.first).map((i) => i.x);
  }
}

export interface Recovered {
  entries: LogEntry[];
  /** Length of the file's valid prefix: a torn last record starts there and is cut off. */
  validLength: number;
  torn: number;
  skipped: string[];
}

/** Reads a log file's bytes; what follows the last complete record is torn (an interrupted append). */
export function recoverLog(bytes: Uint8Array): Recovered {
  const f = readLogFile(bytes);
  return {
    entries: f.records.map((r) => r.entry),
    validLength: bytes.length - f.truncated,
    torn: f.truncated,
    skipped: f.skipped,
  };
}

function exitText(s: { kind: string; value: number }): string {
  return s.kind === 'exit' ? `exit code ${s.value}` : s.kind === 'signal' ? `signal ${s.value}` : `stopped ${s.value}`;
}

/** One line for an event. */
export function describeEvent(e: LogEvent): string {
  switch (e.kind) {
    case 'startup':
      return 'log daemon started';
    case 'hup':
      return 'log file reopened (hup)';
    case 'login':
    case 'logout':
      return `${nameToString(e.value.name)} ${e.kind} from ${e.value.ip.join('.')}:${e.value.port}`;
    case 'unikernel_start_old0':
      return `${nameToString(e.value.name)} started pid ${e.value.pid} taps ${e.value.taps.join(',')}`;
    case 'unikernel_start_old1':
    case 'unikernel_start':
      return `${nameToString(e.value.name)} started pid ${e.value.pid}` +
        e.value.taps.map((t) => ` ${t.bridge}=${t.tap}`).join('') +
        e.value.blocks.map((b) => ` ${b.name}=${typeof b.device === 'string' ? b.device : nameToString(b.device)}`).join('');
    case 'unikernel_stop':
      return `${nameToString(e.value.name)} stopped pid ${e.value.pid} ${exitText(e.value.status)}`;
    case 'action':
      return `${nameToString(e.value.name)} ${describeLogAction(e.value.action)}`;
    default: {
      const never: never = e;
      return never;
    }
  }
}

export function describeEntry(x: { timestamp: Time; event: LogEvent }, seq?: bigint): string {
  const g = formatGeneralizedTime(Math.floor(x.timestamp / 1000) * 1000);
  const iso = `${g.slice(0, 4)}-${g.slice(4, 6)}-${g.slice(6, 8)}T${g.slice(8, 10)}:${g.slice(10, 12)}:${g.slice(12, 14)}Z`;
  return `${seq === undefined ? '' : `${seq} `}${iso} ${describeEvent(x.event)}`;
}
