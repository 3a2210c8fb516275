/**
 * Framing (WIRE.md §1.2): the incremental FrameReader yields the same frames however the
 * octets are split, refuses oversized lengths, and reports 0 / negative lengths as 'end'.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type FrameResult, FrameReader, endOfData, frame, readFrames } from '../src/core/frame.js';
import { decodeWire } from '../src/core/wire/wire.js';

const DIR = join(__dirname, '..', '..', 'test', 'fixtures', 'upstream-2.7.2', 'run1');
const bodies = readdirSync(DIR).filter((f) => f.endsWith('.der')).sort().map((f) => new Uint8Array(readFileSync(join(DIR, f))));
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/[^0-9a-fA-F]/g, ''), 'hex'));
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Feeds the pieces one after the other, collecting everything next() returns until need-more. */
function feed(r: FrameReader, pieces: Uint8Array[]): FrameResult[] {
  const out: FrameResult[] = [];
  for (const p of pieces) {
    r.push(p);
    for (;;) {
      const x = r.next();
      if (x.kind === 'need-more') break;
      out.push(x);
      if (x.kind === 'error') return out;
    }
  }
  return out;
}

test('frame() writes the 4-octet big-endian length', () => {
  assert.deepEqual(frame(hex('DE AD BE EF')), hex('00 00 00 04 DE AD BE EF'));
  assert.deepEqual(frame(new Uint8Array(0x12345)).subarray(0, 4), hex('00 01 23 45'));
  assert.deepEqual(endOfData(), hex('00 00 00 00'));
});

/**
 * Split points for a frame: every offset for frames up to 8 KiB. The three recorded
 * unikernel images (80-95 KiB) get every offset in their first and last 4 KiB (the
 * length prefix, the DER header, the end) and every 251st in between: each split in the
 * middle of a body exercises the same path, and every one of them costs a copy of the
 * whole body, which made the full set take minutes.
 */
function splitPoints(len: number): number[] {
  if (len <= 8192) return Array.from({ length: len + 1 }, (_, i) => i);
  const out: number[] = [];
  for (let i = 0; i <= len; i++) if (i <= 4096 || i >= len - 4096 || i % 251 === 0) out.push(i);
  return out;
}

test('every recorded message split at every byte offset yields the same frame', () => {
  assert.ok(bodies.length > 0);
  for (const b of bodies) {
    const f = frame(b);
    for (const i of splitPoints(f.length)) {
      const got = feed(new FrameReader(), [f.subarray(0, i), f.subarray(i)]);
      assert.equal(got.length, 1);
      const x = got[0];
      assert.ok(x.kind === 'frame' && same(x.body, b), `split at ${i} of ${f.length}`);
    }
  }
});

test('all recorded messages in one stream, fed in pieces of every small size, then byte by byte', () => {
  const stream = Buffer.concat(bodies.map(frame));
  const check = (pieces: Uint8Array[]) => {
    const got = feed(new FrameReader(), pieces);
    assert.equal(got.length, bodies.length);
    got.forEach((x, i) => assert.ok(x.kind === 'frame' && same(x.body, bodies[i]), `frame ${i}`));
    for (const x of got) if (x.kind === 'frame') assert.ok(decodeWire(x.body).ok);
  };
  for (const size of [1, 2, 3, 4, 5, 7, 64, 1000, 4096, 65536]) {
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i += size) pieces.push(new Uint8Array(stream.subarray(i, i + size)));
    check(pieces);
  }
  check([new Uint8Array(stream)]);
});

test('returned bodies are copies, independent of the pushed chunks', () => {
  const chunk = frame(hex('01 02 03'));
  const r = new FrameReader();
  r.push(chunk);
  const x = r.next();
  chunk.fill(0);
  assert.deepEqual(x, { kind: 'frame', body: hex('01 02 03') });
  assert.equal(r.buffered, 0);
});

test('a length above the limit is an error, and the reader stays failed', () => {
  const r = new FrameReader(16);
  r.push(hex('00 00 00 10'));
  assert.deepEqual(r.next(), { kind: 'need-more' });
  r.push(new Uint8Array(16));
  assert.deepEqual(r.next(), { kind: 'frame', body: new Uint8Array(16) });
  r.push(hex('00 00 00 11'));
  const e = r.next();
  assert.deepEqual(e, { kind: 'error', error: 'frame of 17 bytes exceeds the limit of 16 bytes' });
  r.push(new Uint8Array(17));
  assert.deepEqual(r.next(), e);
  // the default limit comes from limits.ts
  const d = new FrameReader();
  d.push(hex('7F FF FF FF'));
  assert.equal(d.next().kind, 'error');
});

test('0 and negative lengths are the end; the reader goes on after an end marker', () => {
  for (const [len, v] of [['00 00 00 00', 0], ['80 00 00 00', -0x80000000], ['FF FF FF FF', -1], ['FF FF FF 00', -256]] as const) {
    const r = new FrameReader();
    r.push(hex(len));
    assert.deepEqual(r.next(), { kind: 'end', length: v });
    assert.deepEqual(r.next(), { kind: 'need-more' });
  }
  // a block upload: raw chunks, the 0 marker, then (say) another frame, as one stream
  const stream = Buffer.concat([frame(hex('DE AD BE EF')), frame(hex('01')), endOfData(), frame(hex('30 00'))]);
  const { frames, last } = readFrames(new Uint8Array(stream));
  assert.deepEqual(frames, [hex('DE AD BE EF'), hex('01')]);
  assert.deepEqual(last, { kind: 'end', length: 0 });
  const r = new FrameReader();
  const all = feed(r, [...stream].map((x) => new Uint8Array([x])));
  assert.deepEqual(all.map((x) => x.kind), ['frame', 'frame', 'end', 'frame']);
  assert.equal(r.buffered, 0);
});

test('a truncated frame stays need-more, and buffered tells it from a clean end', () => {
  const r = new FrameReader();
  r.push(frame(hex('01 02 03 04')).subarray(0, 6));
  assert.deepEqual(r.next(), { kind: 'need-more' });
  assert.equal(r.buffered, 6);
  const s = new FrameReader();
  s.push(hex('00 00'));
  assert.deepEqual(s.next(), { kind: 'need-more' });
  assert.equal(s.buffered, 2);
  assert.equal(new FrameReader().buffered, 0);
});

test('a frame trickled one octet at a time is parsed in linear time', () => {
  const b = new Uint8Array(256 * 1024).map((_, i) => i & 0xff);
  const f = frame(b);
  const r = new FrameReader();
  let x: FrameResult = { kind: 'need-more' };
  for (let i = 0; i < f.length; i++) {
    r.push(f.subarray(i, i + 1));
    x = r.next();
    if (i < f.length - 1) assert.equal(x.kind, 'need-more');
  }
  assert.ok(x.kind === 'frame' && same(x.body, b));
});

test('empty pushes are harmless', () => {
  const r = new FrameReader();
  r.push(new Uint8Array(0));
  assert.deepEqual(r.next(), { kind: 'need-more' });
  const got = feed(r, [new Uint8Array(0), hex('00 00'), new Uint8Array(0), hex('00 01 AA')]);
  assert.deepEqual(got, [{ kind: 'frame', body: hex('AA') }]);
});

test('admission: asked once per frame with its length and first peekBytes octets; a refusal fails the reader before the body is buffered', () => {
  const asked: [number, string][] = [];
  const r = new FrameReader(1 << 20, {
    peekBytes: 4,
    admit: (length, prefix) => {
      asked.push([length, Buffer.from(prefix).toString('hex')]);
      return length > 100 ? `frame of ${length} bytes refused` : undefined;
    },
  });
  const long = new Uint8Array(50).map((_, i) => i);
  // octet by octet: admission waits for the first 4 body octets, then happens once
  const got = feed(r, [...frame(hex('AA BB')), ...frame(long)].map((b) => Uint8Array.of(b)));
  assert.deepEqual(got, [{ kind: 'frame', body: hex('AA BB') }, { kind: 'frame', body: long }]);
  assert.deepEqual(asked, [[2, 'aabb'], [50, '00010203']]);
  // a refused frame: its body is never buffered, and the reader stays failed
  r.push(hex('00 00 10 00 01 02 03 04'));
  assert.deepEqual(r.next(), { kind: 'error', error: 'frame of 4096 bytes refused' });
  r.push(new Uint8Array(4092));
  assert.deepEqual(r.next(), { kind: 'error', error: 'frame of 4096 bytes refused' });
  assert.equal(asked.length, 3);
});

test('a body is received into one buffer of its length: pushed octets are copied in as they come, buffered counts them, discard drops them', () => {
  const r = new FrameReader();
  const body = new Uint8Array(1 << 20).map((_, i) => i * 7);
  const f = frame(body);
  r.push(f.subarray(0, 1000));
  assert.deepEqual(r.next(), { kind: 'need-more' });
  for (let i = 1000; i < f.length - 10; i += 65536) {
    const piece = new Uint8Array(f.subarray(i, Math.min(i + 65536, f.length - 10)));
    r.push(piece);
    piece.fill(0xee); // the reader kept no reference: the octets were copied into the body
    assert.deepEqual(r.next(), { kind: 'need-more' });
  }
  assert.equal(r.buffered, f.length - 10);
  r.push(f.subarray(f.length - 10));
  const x = r.next();
  assert.ok(x.kind === 'frame' && same(x.body, body));
  r.push(f.subarray(0, 5000));
  assert.equal(r.next().kind, 'need-more');
  r.discard();
  assert.equal(r.buffered, 0);
});
