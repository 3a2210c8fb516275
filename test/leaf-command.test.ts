/**
 * The leaf-only commands of albatross-ts (WIRE.md §8.3, CERTS.md §3.3): `[16] status` and
 * `[17] log` in the certificate extension. Their octets, a round trip of generated values,
 * refusal of malformed forms, refusal by upstream's grammar (our decodeCertExtension, which
 * is upstream's Command) and by decodeWire, and how commandOfChain names and confines them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { commandOfChain, leafCommandAllowed } from '../src/core/certs.js';
import { type Name, nameIsWithin, nameToString } from '../src/core/name.js';
import { decodeCertExtension, decodeWire, encodeCertExtension } from '../src/core/wire/wire.js';
import { type LeafCommand, decodeLeafExtension, encodeLeafExtension } from '../src/core/wire/leaf.js';
import { type Identity, cmd, issue, makeRoot, policy } from './helpers/pki.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase().replace(/(..)(?!$)/g, '$1 ');

const STATUS: LeafCommand = { kind: 'status', value: { kind: 'status', value: null } };
const logCount = (n: number): LeafCommand => ({ kind: 'log', value: { kind: 'subscribe', value: { kind: 'count', value: n } } });
const logSince = (t: number): LeafCommand => ({ kind: 'log', value: { kind: 'subscribe', value: { kind: 'since', value: t } } });

/** The vectors of WIRE.md §8.3. */
const VECTORS: Array<[string, LeafCommand, string]> = [
  ['status', STATUS, '30 09 02 01 05 B0 04 A0 02 05 00'],
  ['log subscribe count 20', logCount(20), '30 0C 02 01 05 B1 07 A0 05 A1 03 02 01 14'],
  ['log subscribe since 2024-01-31', logSince(Date.UTC(2024, 0, 31)), '30 1A 02 01 05 B1 15 A0 13 A0 11 18 0F 32 30 32 34 30 31 33 31 30 30 30 30 30 30 5A'],
];

test('WIRE.md §8.3 vectors: status [16] and log [17] encode and decode byte-exact', () => {
  for (const [what, c, octets] of VECTORS) {
    assert.equal(toHex(encodeLeafExtension(c)), octets, what);
    const d = decodeLeafExtension(hex(octets));
    assert.ok(d.ok, what);
    assert.deepEqual(d.value, { version: 5, command: c }, what);
  }
});

test('upstream grammar refuses the leaf-only commands: decodeCertExtension and decodeWire fail on tags [16] and [17]', () => {
  for (const [what, , octets] of VECTORS) {
    const r = decodeCertExtension(hex(octets));
    assert.equal(r.ok, false, what);
    assert.match((r as { error: string }).error, /unknown Command \[1[67]\]/, what);
    // the same CHOICE inside a Wire command: SEQUENCE { header, [0] command }
    const body = hex(octets).subarray(5); // the Command alternative
    const header = hex('30 09 02 01 05 02 01 00 0C 01 3A');
    const payload = Uint8Array.from([0xa0, body.length, ...body]);
    const wireBytes = Uint8Array.from([0x30, header.length + payload.length, ...header, ...payload]);
    assert.equal(decodeWire(wireBytes).ok, false, `${what} in a Wire message`);
  }
});

test('upstream commands encode the same through the leaf grammar as through encodeCertExtension', () => {
  for (const c of [cmd.info(), cmd.consoleSubscribe(7), cmd.policyAdd(policy()), cmd.blockDump(3), cmd.statsSubscribe()]) {
    assert.deepEqual(encodeLeafExtension(c), encodeCertExtension(c));
    const d = decodeLeafExtension(encodeCertExtension(c));
    assert.ok(d.ok);
    assert.deepEqual(d.value.command, c);
  }
});

test('property: generated status and log leaf extensions round-trip byte-exact', () => {
  const since = fc.oneof(
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((n) => ({ kind: 'count' as const, value: n })),
    fc.integer({ min: 0, max: 253402300799999 }).map((t) => ({ kind: 'since' as const, value: t })),
  );
  const arb: fc.Arbitrary<LeafCommand> = fc.oneof(fc.constant(STATUS), since.map((s): LeafCommand => ({ kind: 'log', value: { kind: 'subscribe', value: s } })));
  fc.assert(fc.property(arb, (c) => {
    const bytes = encodeLeafExtension(c);
    const d = decodeLeafExtension(bytes);
    assert.ok(d.ok, d.ok ? '' : d.error);
    assert.deepEqual(d.value.command, c);
    assert.deepEqual(encodeLeafExtension(d.value.command), bytes);
    assert.equal(decodeCertExtension(bytes).ok, false);
  }), { numRuns: 300, seed: 42 });
});

test('malformed leaf extensions are refused with a reason', () => {
  const bad: Array<[string, string, RegExp]> = [
    ['status without its CHOICE', '30 07 02 01 05 B0 02 05 00', /StatusCmd/],
    ['status with an unknown StatusCmd [1]', '30 09 02 01 05 B0 04 A1 02 05 00', /unknown StatusCmd \[1\]/],
    ['status [16] primitive', '30 07 02 01 05 90 02 A0 00', /expected a constructed value/],
    ['log without SinceCount', '30 09 02 01 05 B1 04 A0 02 05 00', /SinceCount/],
    ['log with an unknown LogCmd [1]', '30 0C 02 01 05 B1 07 A1 05 A1 03 02 01 14', /unknown LogCmd \[1\]/],
    ['version 4', '30 09 02 01 04 B0 04 A0 02 05 00', /unknown version number 0x4/],
    ['trailing octets in [16]', '30 0B 02 01 05 B0 06 A0 02 05 00 05 00', /\[16\] must contain exactly one value, got 2/],
    ['Command [18]', '30 09 02 01 05 B2 04 A0 02 05 00', /unknown Command \[18\]/],
    ['rejected Command [2]', '30 09 02 01 05 A2 04 A0 02 05 00', /support for log dropped/],
  ];
  for (const [what, octets, why] of bad) {
    const r = decodeLeafExtension(hex(octets));
    assert.equal(r.ok, false, what);
    assert.match((r as { error: string }).error, why, what);
  }
});

const ders = (...ids: Identity[]): Uint8Array[] => ids.map((i) => i.der);
const leafOf = (issuer: Identity, cn: string | null, c: LeafCommand): Promise<Identity> => issue(issuer, { cn, extValue: encodeLeafExtension(c) });

test('commandOfChain: status and log are allowed in a leaf; the CN names a unikernel or path below the chain\'s path', async () => {
  assert.ok(leafCommandAllowed(STATUS));
  assert.ok(leafCommandAllowed(logCount(5)));
  const root = await makeRoot();
  const org = await issue(root, { cn: 'org', ca: true, command: cmd.policyAdd(policy({ unikernels: 4n, memory: 1024 })) });
  const team = await issue(org, { cn: 'team', ca: true, command: cmd.policyAdd(policy({ unikernels: 2n, memory: 512 })) });
  const cases: Array<[string | null, string]> = [
    [null, 'org:team:'], ['.', 'org:team:'], [':', 'org:team:'],
    ['hello', 'org:team:hello'], [':hello', 'org:team:hello'], ['dev:', 'org:team:dev:'], ['dev:hello', 'org:team:dev:hello'], ['Web', 'org:team:web'],
  ];
  for (const c of [STATUS, logCount(20)]) {
    for (const [cn, want] of cases) {
      const r = commandOfChain(ders(await leafOf(team, cn, c), team, org), { now: Date.now() });
      assert.ok(r.ok, r.ok ? '' : r.error);
      assert.equal(nameToString(r.value.name), want, `${c.kind} CN ${String(cn)}`);
      assert.deepEqual(r.value.path, ['org', 'team']);
      assert.deepEqual(r.value.command, c);
    }
  }
  // the root CA's own leaf: everything (the operator)
  const r = commandOfChain(ders(await leafOf(root, '.', STATUS)));
  assert.ok(r.ok);
  assert.equal(nameToString(r.value.name), ':');
});

test('attack: a tenant\'s status or log leaf never names anything outside its path (:other, teamx:, the root-level :team, ..)', async () => {
  const root = await makeRoot();
  const team = await issue(root, { cn: 'team', ca: true, command: cmd.policyAdd(policy({ unikernels: 2n, memory: 512 })) });
  const tries = [
    ':other', '::other', 'other', ':team', 'team', 'teamx:', 'teamx:web', '..', '../other', ':..:other', '.:', '', ' ',
    'a::b', 'x'.repeat(64), 'team:..', ':', '.', '-x', 'dev:web:', 'ÿ', 'a\u0000b',
  ];
  for (const c of [STATUS, logCount(1)]) {
    for (const cn of tries) {
      const r = commandOfChain(ders(await leafOf(team, cn, c), team));
      if (!r.ok) {
        assert.match(r.error, /invalid name|label/, `CN ${JSON.stringify(cn)}`);
        continue;
      }
      const n: Name = r.value.name;
      assert.ok(nameIsWithin(n, ['team']), `CN ${JSON.stringify(cn)} gave ${nameToString(n)}, outside team:`);
      assert.notEqual(nameToString(n), ':team');
      assert.notEqual(nameToString(n), ':other');
      assert.ok(!n.path.includes('teamx') || n.path[0] === 'team', nameToString(n));
    }
  }
});

test('status and log are refused in an intermediate certificate', async () => {
  const root = await makeRoot();
  for (const c of [STATUS, logCount(3)]) {
    const odd = await issue(root, { cn: 'odd', ca: true, extValue: encodeLeafExtension(c) });
    const leaf = await issue(odd, { cn: 'x', command: cmd.info() });
    const r = commandOfChain(ders(leaf, odd));
    assert.equal(r.ok, false);
    assert.equal((r as { error: string }).error, `unexpected wire ${c.kind === 'status' ? 'status' : 'log subscribe'}`);
  }
});

test('property: mutated and random extension octets never throw in decodeLeafExtension, and what decodes re-encodes byte-exact', () => {
  const base = VECTORS.map(([, , octets]) => hex(octets));
  const mutated = fc.tuple(fc.constantFrom(...base), fc.nat(40), fc.integer({ min: 0, max: 255 })).map(([b, i, v]) => {
    const c = Uint8Array.from(b);
    c[i % c.length] = v;
    return c;
  });
  fc.assert(fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 40 })), (b) => {
    const d = decodeLeafExtension(b);
    if (d.ok) assert.deepEqual(encodeLeafExtension(d.value.command), b);
  }), { numRuns: 2000, seed: 7 });
});

test('vmmc_inspect cert reads the status and log leaves (it refused them as unknown Command [16] / [17])', async () => {
  const { describeCertificates } = await import('../src/inspect/inspect.js');
  const root = await makeRoot();
  for (const [c, want] of [[STATUS, '{"status":{"status":null}}'], [logCount(20), '{"log":{"subscribe":{"count":20}}}']] as const) {
    const r = describeCertificates((await leafOf(root, 'web', c)).der, false);
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.ok(r.value.includes(`command: ${want}`), r.value);
  }
});
