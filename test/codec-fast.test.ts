/**
 * The codec's quick decoding paths agree with the general ones they short-cut: INTEGERs of up
 * to six octets (numbers instead of bigints), ASCII text (no UTF-8 decoder), the usual
 * GeneralizedTime forms (no string or regular expression), and DER nodes made on demand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  type Codec, INT63_MAX, INT63_MIN, bigInt, bytesToText, decodeDer, generalizedTime, int, int32, parseGeneralizedTime, uint, utf8,
} from '../src/core/asn.js';
import { parseDer } from '../src/core/der.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

/** A primitive TLV with a short or long length. */
function tlv(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Uint8Array.from([tag, ...len, ...content]);
}

/** Minimal two's complement octets of v (the DER content of an INTEGER). */
function twos(v: bigint): Uint8Array {
  const out: number[] = [];
  for (;;) {
    out.unshift(Number(BigInt.asUintN(8, v)));
    const rest = v >> 8n;
    if ((rest === 0n && (out[0] & 0x80) === 0) || (rest === -1n && (out[0] & 0x80) !== 0)) break;
    v = rest;
  }
  return Uint8Array.from(out);
}

test('INTEGER: the number path for up to 6 octets gives what the bigint path gives, range errors included', () => {
  const cases: Array<[Codec<number> | Codec<bigint>, bigint, bigint, (v: bigint) => unknown]> = [
    [int, BigInt(Number.MIN_SAFE_INTEGER), BigInt(Number.MAX_SAFE_INTEGER), Number],
    [int32, -(2n ** 31n), 2n ** 31n - 1n, Number],
    [uint, 0n, BigInt(Number.MAX_SAFE_INTEGER), Number],
    [bigInt, INT63_MIN, INT63_MAX, (v) => v],
  ];
  const values = fc.oneof(
    fc.bigInt(-(2n ** 47n), 2n ** 47n - 1n), // at most 6 octets
    fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n),
    fc.constantFrom(0n, -1n, 127n, 128n, -128n, -129n, 2n ** 31n, -(2n ** 31n) - 1n, 2n ** 47n - 1n, -(2n ** 47n), 2n ** 47n, -(2n ** 47n) - 1n),
  );
  fc.assert(fc.property(values, (v) => {
    const der = tlv(0x02, twos(v));
    for (const [c, min, max, to] of cases) {
      const r = decodeDer(c as Codec<unknown>, der);
      if (v >= min && v <= max) assert.deepEqual(r, { ok: true, value: to(v) }, `${c.what} ${v}`);
      else {
        assert.equal(r.ok, false, `${c.what} ${v}`);
        const len = der.length - 2;
        const why = len > 8 ? 'out of range' : `${v} out of range [${min}, ${max}]`;
        assert.match((r as { error: string }).error, new RegExp(why.replace(/[[\]]/g, '\\$&')), `${c.what} ${v}`);
      }
    }
  }), { numRuns: RUNS });
});

test('UTF8String: text read from ASCII octets is what the UTF-8 path gives, and any octets still round-trip', () => {
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }).map((b) => b.map((x) => x & 0x7f)),
    fc.string({ unit: 'binary', maxLength: 100 }).map((s) => new TextEncoder().encode(s)),
  );
  fc.assert(fc.property(bytes, (b) => {
    const r = decodeDer(utf8, tlv(0x0c, b));
    assert.deepEqual(r, { ok: true, value: bytesToText(b) });
  }), { numRuns: RUNS });
});

test('GeneralizedTime: the usual forms read from octets equal parseGeneralizedTime, and every other text takes its path', () => {
  const digits = (n: number): fc.Arbitrary<string> => fc.array(fc.constantFrom(...'0123456789'), { minLength: n, maxLength: n }).map((a) => a.join(''));
  const plausible = fc.tuple(
    fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 24 }),
    fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 61 }), fc.option(fc.integer({ min: 0, max: 999 })),
  ).map(([y, mo, d, h, mi, s, ms]) => {
    const p = (v: number, w: number): string => String(v).padStart(w, '0');
    return `${p(y, 4)}${p(mo, 2)}${p(d, 2)}${p(h, 2)}${p(mi, 2)}${p(s, 2)}${ms === null ? '' : `.${p(ms, 3)}`}Z`;
  });
  const other = fc.oneof(
    fc.tuple(digits(14), fc.constantFrom('', '.', '.5', '.12', '.123', '+0100', '-0230', 'z', 'Z ', '.1234')).map(([a, b]) => `${a}${b}${b.startsWith('+') || b.startsWith('-') ? '' : 'Z'}`),
    fc.string({ maxLength: 22 }),
    digits(10).map((d) => `${d}Z`),
  );
  fc.assert(fc.property(fc.oneof(plausible, other), (s) => {
    const content = Uint8Array.from(s, (ch) => ch.charCodeAt(0) & 0xff);
    const r = decodeDer(generalizedTime, tlv(0x18, content));
    const want = parseGeneralizedTime(Buffer.from(content).toString('latin1'));
    assert.equal(r.ok, want.ok, s);
    if (r.ok && want.ok) assert.equal(r.value, want.value, s);
  }), { numRuns: RUNS });
});

test('DER nodes made on demand: reading children twice gives equal trees, with offsets inside the parent', () => {
  const leaf = fc.oneof(
    fc.uint8Array({ maxLength: 140 }).map((b) => tlv(0x04, b)),
    fc.bigInt(-(2n ** 62n), 2n ** 62n - 1n).map((v) => tlv(0x02, twos(v))),
    fc.constant(Uint8Array.of(0x05, 0x00)),
  );
  const tree: fc.Arbitrary<Uint8Array> = fc.letrec<{ node: Uint8Array }>((t) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.tuple(fc.constantFrom(0x30, 0x31, 0xa0, 0xa3), fc.array(t('node'), { maxLength: 5 })).map(([tag, kids]) => {
        const body = new Uint8Array(kids.reduce((a, k) => a + k.length, 0));
        let at = 0;
        for (const k of kids) {
          body.set(k, at);
          at += k.length;
        }
        const n = body.length;
        const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
        return Uint8Array.from([tag, ...len, ...body]);
      }),
    ),
  })).node;
  type Shape = { key: number; start: number; contentStart: number; end: number; kids: Shape[] };
  const shape = (n: import('../src/core/der.js').DerNode): Shape => ({
    key: n.key, start: n.start, contentStart: n.contentStart, end: n.end, kids: n.children.map(shape),
  });
  fc.assert(fc.property(tree, (b) => {
    const r = parseDer(b);
    assert.ok(r.ok, r.ok ? '' : r.error);
    const a = shape(r.value);
    assert.deepEqual(shape(r.value), a);
    const inside = (s: Shape): void => {
      let p = s.contentStart;
      for (const k of s.kids) {
        assert.equal(k.start, p);
        assert.ok(k.end <= s.end);
        p = k.end;
        inside(k);
      }
      if (s.kids.length > 0) assert.equal(p, s.end);
    };
    inside(a);
    assert.equal(a.end, b.length);
  }), { numRuns: Math.min(RUNS, 1000) });
});
