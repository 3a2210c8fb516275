import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  bigInt, int, int32, int64, utf8, octets, bool, generalizedTime, utcTime, setOf, seqOf, seq, opt, choice, explicit,
  implicitSeq, nul, decodeDer, encodeDer, bytesToText, textToBytes, formatGeneralizedTime, parseGeneralizedTime,
  fromJson, type Codec,
} from '../src/core/asn.js';
import { checkDer } from '../src/core/der.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

function roundTrip<T>(c: Codec<T>, v: T): void {
  const der = encodeDer(c, v);
  const back = decodeDer(c, der);
  assert.ok(back.ok, back.ok ? '' : back.error);
  assert.deepEqual(back.value, v);
  assert.equal(hex(encodeDer(c, back.value)), hex(der));
  const j = fromJson(c, JSON.parse(JSON.stringify(c.toJson(v))));
  assert.ok(j.ok, j.ok ? '' : j.error);
  assert.deepEqual(j.value, v);
}

test('INTEGER: minimal two\'s complement over the whole 63-bit range, both directions', () => {
  assert.equal(hex(encodeDer(bigInt, 2n ** 62n - 1n)), '02083fffffffffffffff');
  assert.equal(hex(encodeDer(int, 0)), '020100');
  assert.equal(hex(encodeDer(int, 128)), '02020080');
  assert.equal(hex(encodeDer(int, -129)), '0202ff7f');
  fc.assert(fc.property(fc.bigInt(-(2n ** 62n), 2n ** 62n - 1n), (v) => roundTrip(bigInt, v)), { numRuns: RUNS });
  fc.assert(fc.property(fc.maxSafeInteger(), (v) => roundTrip(int, v)), { numRuns: RUNS });
  fc.assert(fc.property(fc.integer(), (v) => roundTrip(int32, v)), { numRuns: RUNS });
});

test('INTEGER: empty, non-minimal, longer than 8 octets and >= 2^62 are refused', () => {
  for (const [h, why] of [
    ['0200', 'empty INTEGER'], ['02020001', 'non-minimal INTEGER'], ['0202ff80', 'non-minimal INTEGER'],
    ['0209010000000000000000', 'out of range'], ['02084000000000000000', 'out of range'],
  ]) {
    const r = decodeDer(bigInt, bytes(h));
    assert.equal(r.ok, false, h);
    assert.match((r as { error: string }).error, new RegExp(why), h);
  }
  const r = decodeDer(int, bytes('02080020000000000000')); // 2^53
  assert.equal(r.ok, false);
  assert.equal(decodeDer(int32, bytes('020500ffffffff')).ok, false);
});

test('Int64 is exactly 8 octets', () => {
  fc.assert(fc.property(fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n), (v) => roundTrip(int64, v)), { numRuns: RUNS });
  assert.match((decodeDer(int64, bytes('040700000000000000')) as { error: string }).error, /8 octets/);
});

test('BOOLEAN is 00 or FF; NULL is empty', () => {
  assert.equal(hex(encodeDer(bool, true)), '0101ff');
  assert.equal(hex(encodeDer(bool, false)), '010100');
  assert.equal(decodeDer(bool, bytes('010101')).ok, false);
  assert.equal(decodeDer(nul, bytes('050100')).ok, false);
});

test('UTF8String keeps arbitrary octets (invalid UTF-8 survives a round trip)', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
    assert.equal(hex(textToBytes(bytesToText(b))), hex(b));
  }), { numRuns: RUNS });
  fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (s) => roundTrip(utf8, s)), { numRuns: RUNS });
  assert.equal(decodeDer(utf8, bytes('2c03 0c0161')).ok, false); // constructed
});

test('GeneralizedTime: exactly three fraction digits or none, as upstream emits', () => {
  assert.equal(formatGeneralizedTime(Date.UTC(2024, 0, 2, 3, 4, 5, 678)), '20240102030405.678Z');
  assert.equal(formatGeneralizedTime(Date.UTC(2024, 0, 2, 3, 4, 5)), '20240102030405Z');
  assert.equal(formatGeneralizedTime(Date.UTC(2024, 0, 2, 3, 4, 5, 100)), '20240102030405.100Z');
  const sub = parseGeneralizedTime('20240102030405.000Z');
  assert.ok(sub.ok);
  assert.equal(formatGeneralizedTime(sub.value), '20240102030405.000Z');
  // upstream reads fraction digits as milliseconds; offsets are local time ahead of UTC
  assert.deepEqual(parseGeneralizedTime('20240102030405.5Z'), { ok: true, value: Date.UTC(2024, 0, 2, 3, 4, 5, 5) });
  assert.deepEqual(parseGeneralizedTime('20240102050405+0200'), { ok: true, value: Date.UTC(2024, 0, 2, 3, 4, 5) });
  assert.deepEqual(parseGeneralizedTime('2024010203'), { ok: true, value: Date.UTC(2024, 0, 2, 3) });
  for (const bad of ['2024010203040', '20241302030405Z', '20240102030405.1234Z', 'x']) assert.equal(parseGeneralizedTime(bad).ok, false, bad);
  fc.assert(fc.property(fc.integer({ min: 0, max: 253402300799999 }), (t) => roundTrip(generalizedTime, t)), { numRuns: RUNS });
  roundTrip(utcTime, Date.UTC(2021, 5, 1, 12, 0, 0));
});

test('SET OF is sorted by encoding; SEQUENCE OF keeps order', () => {
  // WIRE.md example 13: exit codes 255, 2, 10 are sorted on the wire
  assert.equal(hex(encodeDer(setOf(int), [255, 2, 10])), '310a02010202010a020200ff');
  assert.equal(hex(encodeDer(seqOf(int), [255, 2, 10])), '300a020200ff02010202010a');
  const r = decodeDer(setOf(int), bytes('310a020200ff02010202010a'));
  assert.deepEqual(r, { ok: true, value: [255, 2, 10] }); // any order accepted, wire order kept
});

test('SEQUENCE: optional fields by tag look-ahead, missing and extra fields refused with a location', () => {
  const s = seq('S', { a: int, b: opt(explicit(0, utf8)), c: opt(explicit(1, bool)), d: octets });
  roundTrip(s, { a: 1, d: new Uint8Array([1]) });
  roundTrip(s, { a: 1, b: 'x', c: true, d: new Uint8Array([]) });
  const missing = decodeDer(s, bytes('3003020101'));
  assert.deepEqual(missing, { ok: false, error: 'S.d: missing OCTET STRING' });
  const extra = decodeDer(s, bytes('3008 020101 0400 0c0178'.replace(/ /g, '')));
  assert.equal(extra.ok, false);
  assert.match((extra as { error: string }).error, /unexpected UTF8String after the last field of S/);
  const wrong = decodeDer(s, bytes('3006 0c0178 0401ff'.replace(/ /g, '')));
  assert.match((wrong as { error: string }).error, /S\.a: expected INTEGER/);
});

test('CHOICE: decodes by tag; rejected alternatives carry their message; IMPLICIT sequence', () => {
  const c = choice('C', { x: explicit(0, int), y: explicit(1, nul) }, { 2: 'support for z dropped' });
  roundTrip(c, { kind: 'x', value: 7 });
  roundTrip(c, { kind: 'y', value: null });
  assert.deepEqual(decodeDer(c, bytes('a2020500')), { ok: false, error: 'C: support for z dropped' });
  assert.deepEqual(decodeDer(c, bytes('a3020500')), { ok: false, error: 'C: unknown C [3]' });
  const inner = seq('K', { a: int });
  const imp = implicitSeq(1, inner);
  assert.equal(hex(encodeDer(imp, { a: 5 })), 'a103020105');
  roundTrip(imp, { a: 5 });
});

test('strict DER check: trailing bytes, indefinite and non-minimal lengths, bounds', () => {
  const cases: [string, RegExp][] = [
    ['30000000', /trailing bytes/],
    ['3080', /indefinite length/],
    ['30810100', /non-minimal length/],
    ['3082000100', /non-minimal length/],
    ['3005020101', /truncated/],
    ['0c8501000000', /too large/],
    ['2403040100', /constructed form/],
    ['1f0100', /non-minimal tag/],
    ['0000', /end-of-contents/],
    ['0100', /BOOLEAN/],
  ];
  for (const [h, re] of cases) {
    const r = checkDer(bytes(h));
    assert.equal(r.ok, false, h);
    assert.match((r as { error: string }).error, re, h);
  }
  const many = bytes('30' + '0a' + '0500'.repeat(5));
  assert.match((checkDer(many, { maxDepth: 8, maxElements: 3, maxBytes: 100 }) as { error: string }).error, /more than 3 elements/);
  assert.match((checkDer(many, { maxDepth: 8, maxElements: 30, maxBytes: 5 }) as { error: string }).error, /exceeds the limit/);
  const d = new Uint8Array(2 * 40);
  for (let i = 0; i < 40; i++) { d[2 * i] = 0x30; d[2 * i + 1] = 2 * (40 - i - 1); }
  assert.match((checkDer(d, { maxDepth: 32, maxElements: 100, maxBytes: 1000 }) as { error: string }).error, /nesting deeper than 32/);
});

test('decoders never throw on random bytes', () => {
  const c = seq('S', { a: opt(int), b: setOf(utf8), t: opt(explicit(2, generalizedTime)) });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
    const r = decodeDer(c, b);
    assert.equal(typeof r.ok, 'boolean');
  }), { numRuns: RUNS * 5 });
});

test('asn1js as the oracle: our encodings and parse trees agree with asn1js on every recorded frame and on generated values', async () => {
  const asn1js = await import('asn1js');
  const { readdirSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { parseDer } = await import('../src/core/der.js');
  type A = InstanceType<typeof asn1js.BaseBlock>;
  const same = (ours: import('../src/core/der.js').DerNode, theirs: A): void => {
    assert.equal(ours.cls, theirs.idBlock.tagClass - 1);
    assert.equal(ours.tag, theirs.idBlock.tagNumber);
    assert.equal(ours.constructed, theirs.idBlock.isConstructed);
    if (ours.constructed) {
      const kids = (theirs.valueBlock as unknown as { value: A[] }).value;
      assert.equal(ours.children.length, kids.length);
      ours.children.forEach((k, i) => same(k, kids[i]));
    } else {
      assert.equal(ours.end - ours.contentStart, theirs.lenBlock.length);
    }
  };
  const check = (b: Uint8Array): void => {
    const theirs = asn1js.fromBER(b, { parseEmbedded: false });
    assert.equal(theirs.offset, b.length);
    assert.equal(hex(new Uint8Array(theirs.result.toBER())), hex(b)); // asn1js re-serialises our DER unchanged
    const ours = parseDer(b);
    assert.ok(ours.ok);
    same(ours.value, theirs.result);
  };
  const dir = join(__dirname, '..', '..', 'test', 'fixtures', 'upstream-2.7.2', 'run1');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.der'))) check(new Uint8Array(readFileSync(join(dir, f))));
  const c = seq('S', { a: bigInt, b: setOf(utf8), c: opt(explicit(2, generalizedTime)), d: octets, e: seqOf(bool) });
  fc.assert(fc.property(
    fc.record({ a: fc.bigInt(-(2n ** 62n), 2n ** 62n - 1n), b: fc.array(fc.string()), d: fc.uint8Array({ maxLength: 300 }), e: fc.array(fc.boolean()) }),
    (v) => check(encodeDer(c, v)),
  ), { numRuns: Math.min(RUNS, 500) });
});
