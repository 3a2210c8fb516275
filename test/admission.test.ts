/**
 * The admission of TLS connections (src/core/admission.ts): the caps on connections in
 * the handshake, in all and per address, eviction of the busiest address's oldest when
 * full, and the cap on authenticated connections.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Admission, addressKey, perWorker } from '../src/core/admission.js';

const admitted = (a: ReturnType<Admission['arrive']>) => {
  assert.equal(a.kind, 'admitted');
  return a as Extract<typeof a, { kind: 'admitted' }>;
};

test('addressKey: IPv4 and IPv4-mapped alike, IPv6 by /64', () => {
  assert.equal(addressKey('127.0.0.2'), '127.0.0.2');
  assert.equal(addressKey('::ffff:127.0.0.2'), '127.0.0.2');
  assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
  assert.equal(addressKey(undefined), 'unknown');
});

test('per-address cap on connections in the handshake', () => {
  const a = new Admission({ handshakes: 10, handshakesPerAddress: 2, connections: 10 });
  admitted(a.arrive('x'));
  const t = admitted(a.arrive('x')).ticket;
  const r = a.arrive('x');
  assert.equal(r.kind, 'refused');
  assert.match(r.kind === 'refused' ? r.reason : '', /2 connections from x already in the TLS handshake \(limit 2\)/);
  admitted(a.arrive('y'));
  // a finished handshake frees the address's slot
  assert.equal(a.secured(t), undefined);
  admitted(a.arrive('x'));
  assert.deepEqual([a.pending, a.established], [3, 1]);
});

test('full: a newcomer evicts the oldest of the address with the most; the busiest address itself is refused', () => {
  const a = new Admission({ handshakes: 3, handshakesPerAddress: 3, connections: 10 });
  const x1 = admitted(a.arrive('x')).ticket;
  admitted(a.arrive('x'));
  admitted(a.arrive('y'));
  const z = admitted(a.arrive('z'));
  assert.equal(z.evicted, x1);
  assert.equal(x1.phase, 'gone');
  assert.deepEqual([a.pendingFrom('x'), a.pendingFrom('y'), a.pendingFrom('z'), a.pending], [1, 1, 1, 3]);
  // every address has 1 now: one more from y would make it the busiest, it is refused
  const r = a.arrive('y');
  assert.equal(r.kind, 'refused');
  assert.match(r.kind === 'refused' ? r.reason : '', /3 connections already in the TLS handshake \(limit 3\)/);
  // a connection that leaves frees its slot once; leaving twice changes nothing
  a.leave(z.ticket);
  a.leave(z.ticket);
  assert.equal(a.pending, 2);
  a.leave(x1);
  assert.equal(a.pending, 2);
});

test('cap on connections past the handshake', () => {
  const a = new Admission({ handshakes: 10, handshakesPerAddress: 10, connections: 1 });
  const t1 = admitted(a.arrive('x')).ticket;
  const t2 = admitted(a.arrive('x')).ticket;
  assert.equal(a.secured(t1), undefined);
  assert.match(a.secured(t2) ?? '', /1 connections past the TLS handshake already \(limit 1\)/);
  assert.equal(t2.phase, 'gone');
  a.leave(t1);
  assert.equal(a.established, 0);
  const t3 = admitted(a.arrive('x')).ticket;
  assert.equal(a.secured(t3), undefined);
});

test('perWorker divides the totals, at least 1 each, and keeps the cap per address (within the share of handshakes)', () => {
  assert.deepEqual(perWorker({ handshakes: 128, handshakesPerAddress: 16, connections: 64 }, 4), { handshakes: 32, handshakesPerAddress: 16, connections: 16 });
  assert.deepEqual(perWorker({ handshakes: 16, handshakesPerAddress: 16, connections: 64 }, 4), { handshakes: 4, handshakesPerAddress: 4, connections: 16 });
  assert.deepEqual(perWorker({ handshakes: 2, handshakesPerAddress: 1, connections: 1 }, 4), { handshakes: 1, handshakesPerAddress: 1, connections: 1 });
});
