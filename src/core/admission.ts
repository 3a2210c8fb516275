/**
 * Who may hold a connection slot of the TLS endpoint, in two phases:
 *
 * - pending: accepted, TLS handshake not finished. Anyone can open these, so they have
 *   their own cap (`handshakes`), a cap per client address (`handshakesPerAddress`; an
 *   IPv6 client is counted by its /64, which one host usually owns whole), and an
 *   absolute deadline that the caller enforces from accept. When the pending cap is
 *   full, a new connection from an address holding fewer pending connections than the
 *   busiest one evicts the busiest address's oldest pending connection: a client that
 *   is not part of a flood always gets to do its handshake.
 * - established: handshake done, client authenticated by its certificate; capped by
 *   `connections`.
 *
 * Pure bookkeeping, no IO: the caller closes what it is told to close. All state of one
 * accepting process is in one Admission. Should several worker processes one day share
 * the listening socket, each worker keeps its own Admission with `perWorker(limits, n)`
 * (the caps divided, so the sums still hold), or the process that accepts keeps the one
 * Admission and hands over only admitted connections.
 */

export interface AdmissionLimits {
  /** Connections whose handshake has not finished, over all addresses. */
  handshakes: number;
  /** Such connections from one address (IPv4 address, IPv6 /64). */
  handshakesPerAddress: number;
  /** Connections past the handshake. */
  connections: number;
}

/** One connection's slot; `address` is the key it is counted under. */
export interface Ticket {
  readonly address: string;
  readonly id: number;
  phase: 'pending' | 'established' | 'gone';
}

export type Arrival =
  | { kind: 'admitted'; ticket: Ticket; evicted?: Ticket }
  | { kind: 'refused'; reason: string; limit: 'handshakes' | 'handshakesPerAddress'; address: string };

/** The key an address is counted under: IPv4 (also IPv4-mapped IPv6) whole, other IPv6 by their /64. */
export function addressKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const a = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return mapped[1];
  if (!a.includes(':')) return a;
  // expand :: to get the first four groups
  const [head, tail] = a.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined ? [] : tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * Caps for one of `workers` processes that share a listening socket: the totals divided (at
 * least 1 each), so that their sums never exceed the caps. The cap per address is not
 * divided: node hands connections to whichever worker is free, not strictly in turn, so a
 * burst of one client could land unevenly and be refused by one worker while another had
 * room. One address may so hold up to `workers` times its cap in all, still within each
 * worker's share of `handshakes`, where the busiest address is the one evicted.
 */
export function perWorker(l: AdmissionLimits, workers: number): AdmissionLimits {
  const share = (n: number): number => Math.max(1, Math.floor(n / workers));
  return { handshakes: share(l.handshakes), handshakesPerAddress: Math.min(l.handshakesPerAddress, share(l.handshakes)), connections: share(l.connections) };
}

export class Admission {
  /** Pending tickets per address key, oldest first (a Set keeps insertion order). */
  private readonly pendingBy = new Map<string, Set<Ticket>>();
  private pendingCount = 0;
  private establishedCount = 0;
  private nextId = 0;

  constructor(readonly limits: AdmissionLimits) {}

  get pending(): number {
    return this.pendingCount;
  }

  get established(): number {
    return this.establishedCount;
  }

  pendingFrom(address: string): number {
    return this.pendingBy.get(address)?.size ?? 0;
  }

  /** A new connection from `address` (a key of addressKey). */
  arrive(address: string): Arrival {
    const mine = this.pendingFrom(address);
    if (mine >= this.limits.handshakesPerAddress) {
      return { kind: 'refused', limit: 'handshakesPerAddress', address, reason: `${mine} connections from ${address} already in the TLS handshake (limit ${this.limits.handshakesPerAddress})` };
    }
    let evicted: Ticket | undefined;
    if (this.pendingCount >= this.limits.handshakes) {
      const victim = this.busiest();
      if (victim === undefined || this.pendingFrom(victim) <= mine) {
        return { kind: 'refused', limit: 'handshakes', address, reason: `${this.pendingCount} connections already in the TLS handshake (limit ${this.limits.handshakes})` };
      }
      evicted = (this.pendingBy.get(victim) as Set<Ticket>).values().next().value as Ticket;
      this.leave(evicted);
    }
    const ticket: Ticket = { address, id: this.nextId++, phase: 'pending' };
    let set = this.pendingBy.get(address);
    if (set === undefined) {
      set = new Set();
      this.pendingBy.set(address, set);
    }
    set.add(ticket);
    this.pendingCount++;
    return evicted === undefined ? { kind: 'admitted', ticket } : { kind: 'admitted', ticket, evicted };
  }

  /** The handshake finished: the connection becomes established, or the reason it may not. */
  secured(t: Ticket): string | undefined {
    if (t.phase !== 'pending') return t.phase === 'gone' ? 'connection already closed' : undefined;
    this.dropPending(t);
    if (this.establishedCount >= this.limits.connections) {
      t.phase = 'gone';
      return `${this.establishedCount} connections past the TLS handshake already (limit ${this.limits.connections})`;
    }
    t.phase = 'established';
    this.establishedCount++;
    return undefined;
  }

  /** The connection is gone (in any phase); calling it again does nothing. */
  leave(t: Ticket): void {
    if (t.phase === 'pending') this.dropPending(t);
    else if (t.phase === 'established') this.establishedCount--;
    t.phase = 'gone';
  }

  private dropPending(t: Ticket): void {
    const set = this.pendingBy.get(t.address);
    if (set === undefined || !set.delete(t)) return;
    this.pendingCount--;
    if (set.size === 0) this.pendingBy.delete(t.address);
  }

  /** The address with the most pending connections; among equals, the one whose oldest is oldest. */
  private busiest(): string | undefined {
    let best: string | undefined;
    let bestN = 0;
    let bestId = Infinity;
    for (const [a, set] of this.pendingBy) {
      const oldest = (set.values().next().value as Ticket).id;
      if (set.size > bestN || (set.size === bestN && oldest < bestId)) {
        best = a;
        bestN = set.size;
        bestId = oldest;
      }
    }
    return best;
  }
}
