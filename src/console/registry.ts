/**
 * The console daemon's state without any IO (SEMANTICS.md §7): per unikernel an entry
 * with an optional ring buffer, an active flag (its FIFO is being read) and subscribers;
 * per path the number of rings vmmd allows (`n` of the last `console add`).
 *
 * Bounds, so that nobody can grow the daemon's memory without limit:
 * - per path, at most `n` rings: when an add creates a ring beyond that, inactive rings
 *   of the path are dropped, smallest label first (upstream drops one; we drop until the
 *   path is within its bound or only active rings remain);
 * - in total, at most `maxInactiveRings` inactive rings: the one inactive the longest is
 *   dropped first (a tenant spawning chatty unikernels that die leaves at most that many);
 * - in total, at most `maxRings` rings (active or not): an add beyond is refused;
 * - per unikernel, at most `maxSubscribers` subscribers: the oldest is closed first;
 * - an entry without ring exists only while it has subscribers.
 * Methods return the subscribers the caller must close.
 */
import { type Name, type Path, nameIsWithin, nameToString, pathToString, relativeName } from '../core/name.js';
import { limits } from '../core/limits.js';
import { Ring } from './ring.js';

export interface ConsoleEntry<S> {
  readonly name: Name;
  readonly key: string;
  active: boolean;
  ring: Ring | undefined;
  subscribers: S[];
  /** Order in which entries became inactive (for dropping the oldest first). */
  inactiveSince: number;
}

export interface RegistryOptions {
  maxSubscribers: number;
  maxInactiveRings?: number;
  maxRings?: number;
  ringLines?: number;
}

export type AddResult<S> =
  | { ok: true; entry: ConsoleEntry<S>; close: S[]; dropped: Name[] }
  | { ok: false; error: string; close: S[] };

export type SubscribeResult<S> = { status: 'subscribed' | 'waiting for VM'; entry: ConsoleEntry<S>; close: S[] };

export class ConsoleRegistry<S> {
  readonly entries = new Map<string, ConsoleEntry<S>>();
  private readonly pathLimit = new Map<string, number>();
  private tick = 0;
  private rings = 0;
  private inactiveRings = 0;
  readonly maxSubscribers: number;
  readonly maxInactiveRings: number;
  readonly maxRings: number;
  readonly ringLines: number;

  constructor(o: RegistryOptions) {
    this.maxSubscribers = Math.max(1, o.maxSubscribers);
    this.maxInactiveRings = o.maxInactiveRings ?? limits.consoleMaxInactiveRings;
    this.maxRings = o.maxRings ?? limits.consoleMaxRings;
    this.ringLines = o.ringLines ?? limits.consoleRingLines;
  }

  get ringCount(): number {
    return this.rings;
  }
  get inactiveRingCount(): number {
    return this.inactiveRings;
  }

  find(n: Name): ConsoleEntry<S> | undefined {
    return this.entries.get(nameToString(n));
  }

  /** `console add n`: the unikernel's FIFO is about to be read (precondition: `name` has a label). */
  add(name: Name, n: bigint): AddResult<S> {
    const key = nameToString(name);
    const pathKey = pathToString(name.path);
    let entry = this.entries.get(key);
    if (entry?.ring === undefined && this.rings >= this.maxRings) {
      return { ok: false, error: `too many consoles (limit ${this.maxRings})`, close: [] };
    }
    this.pathLimit.set(pathKey, n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n));
    let created = false;
    if (entry === undefined) {
      entry = { name, key, active: false, ring: undefined, subscribers: [], inactiveSince: 0 };
      this.entries.set(key, entry);
    }
    if (entry.ring === undefined) {
      entry.ring = new Ring(this.ringLines);
      this.rings++;
      created = true;
    } else if (!entry.active) {
      this.inactiveRings--;
    }
    entry.active = true;
    const close: S[] = [];
    const dropped: Name[] = [];
    if (created) this.enforcePathLimit(name.path, close, dropped);
    return { ok: true, entry, close, dropped };
  }

  private ringsOfPath(p: Path): ConsoleEntry<S>[] {
    const pk = pathToString(p);
    const out: ConsoleEntry<S>[] = [];
    for (const e of this.entries.values()) if (e.ring !== undefined && pathToString(e.name.path) === pk) out.push(e);
    return out;
  }

  private enforcePathLimit(p: Path, close: S[], dropped: Name[]): void {
    const limit = this.pathLimit.get(pathToString(p)) ?? 1;
    const ofPath = this.ringsOfPath(p);
    if (ofPath.length <= limit) return;
    const inactive = ofPath.filter((e) => !e.active).sort((a, b) => ((a.name.label ?? '') < (b.name.label ?? '') ? -1 : 1));
    let excess = ofPath.length - limit;
    for (const e of inactive) {
      if (excess-- <= 0) break;
      this.drop(e, close, dropped);
    }
  }

  private drop(e: ConsoleEntry<S>, close: S[], dropped: Name[]): void {
    if (e.ring !== undefined) {
      this.rings--;
      if (!e.active) this.inactiveRings--;
    }
    close.push(...e.subscribers);
    this.entries.delete(e.key);
    dropped.push(e.name);
  }

  /** End of file on the FIFO: the entry keeps its ring but becomes inactive. */
  deactivate(name: Name): { close: S[]; dropped: Name[] } {
    const close: S[] = [];
    const dropped: Name[] = [];
    const e = this.find(name);
    if (e === undefined || !e.active) return { close, dropped };
    e.active = false;
    e.inactiveSince = ++this.tick;
    if (e.ring !== undefined) this.inactiveRings++;
    if (this.inactiveRings > this.maxInactiveRings) {
      const inactive = [...this.entries.values()].filter((x) => !x.active && x.ring !== undefined).sort((a, b) => a.inactiveSince - b.inactiveSince);
      for (const x of inactive) {
        if (this.inactiveRings <= this.maxInactiveRings) break;
        this.drop(x, close, dropped);
      }
    }
    return { close, dropped };
  }

  /**
   * `console subscribe` (precondition: `name` has a label): the subscriber is added after
   * closing the oldest ones beyond `maxSubscribers - 1` (so at most `maxSubscribers`).
   */
  subscribe(name: Name, sub: S): SubscribeResult<S> {
    const key = nameToString(name);
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { name, key, active: false, ring: undefined, subscribers: [], inactiveSince: ++this.tick };
      this.entries.set(key, entry);
      const pk = pathToString(name.path);
      if (!this.pathLimit.has(pk)) this.pathLimit.set(pk, 1);
    }
    const close: S[] = [];
    while (entry.subscribers.length >= this.maxSubscribers) close.push(entry.subscribers.shift() as S);
    entry.subscribers.push(sub);
    return { status: entry.ring === undefined ? 'waiting for VM' : 'subscribed', entry, close };
  }

  /** A subscriber went away (closed, failed, too slow). */
  unsubscribe(name: Name, sub: S): void {
    const e = this.find(name);
    if (e === undefined) return;
    const i = e.subscribers.indexOf(sub);
    if (i >= 0) e.subscribers.splice(i, 1);
    if (e.ring === undefined && e.subscribers.length === 0) this.entries.delete(e.key);
  }

  /**
   * `console list-inactive` at path `p`: inactive entries with a ring whose path is `p` or
   * below it, relative names. The unikernel `:dept` is not in `dept:` (it only shares the
   * trie key), so a tenant of `dept` does not see it.
   */
  listInactive(p: Path): Name[] {
    const out: Name[] = [];
    for (const e of this.entries.values()) {
      if (!e.active && e.ring !== undefined && nameIsWithin(e.name, p)) out.push(relativeName(e.name, p));
    }
    return out;
  }
}
