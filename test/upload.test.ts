/**
 * The pieces of a streamed image upload: FrameReader.nextPiece (a frame's announced
 * length before its body, then the body in pieces) and spliceDer (the octets around an
 * image of another size, lengths rewritten).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameReader, frame } from '../src/core/frame.js';
import { spliceDer } from '../src/inetd/upload.js';
import { command, encodeWire, decodeWire, type Command } from '../src/core/wire/wire.js';

test('nextPiece: the announced length first, the body in pieces as it arrives, then the end marker', () => {
  const r = new FrameReader(100);
  const body = new Uint8Array(10).map((_, i) => i);
  const bytes = new Uint8Array([...frame(body), 0, 0, 0, 0]);
  r.push(bytes.subarray(0, 3));
  assert.deepEqual(r.nextPiece(4), { kind: 'need-more' });
  r.push(bytes.subarray(3, 5));
  assert.deepEqual(r.nextPiece(4), { kind: 'start', length: 10 });
  assert.deepEqual(r.nextPiece(4), { kind: 'piece', body: body.subarray(0, 1), rest: 9 });
  assert.deepEqual(r.nextPiece(4), { kind: 'need-more' });
  r.push(bytes.subarray(5));
  assert.deepEqual(r.nextPiece(4), { kind: 'piece', body: body.subarray(1, 5), rest: 5 });
  assert.deepEqual(r.nextPiece(4), { kind: 'piece', body: body.subarray(5, 9), rest: 1 });
  assert.deepEqual(r.nextPiece(4), { kind: 'piece', body: body.subarray(9), rest: 0 });
  assert.deepEqual(r.nextPiece(4), { kind: 'end', length: 0 });
  // a length beyond the reader's limit is an error before any body
  const big = new FrameReader(100);
  big.push(new Uint8Array([0, 0, 1, 0]));
  assert.equal(big.nextPiece(4).kind, 'error');
});

test('spliceDer: the octets around an image of another size make the same message as encoding it whole', () => {
  const create = (image: Uint8Array): Command => ({ kind: 'unikernel', value: { kind: 'create', value: {
    typ: 'solo5', compressed: false, image, addName: true,
    failBehaviour: { kind: 'quit', value: null }, cpuids: [0], memory: 64, blocks: [], bridges: [], cpus: 1, arguments: ['a'],
  } } } as Command);
  const mark = new Uint8Array(16).map((_, i) => 200 + i);
  const der = encodeWire(command({ path: ['org'], label: 'x' }, create(mark)));
  const at = Buffer.from(der).indexOf(mark);
  for (const size of [0, 1, 127, 128, 300, 70_000, 20_000_000]) {
    const image = new Uint8Array(size).fill(9);
    const parts = spliceDer(der, at, mark.length, size);
    assert.ok(parts !== undefined);
    const whole = Buffer.concat([parts.prefix, image, parts.suffix]);
    assert.deepEqual(whole, Buffer.from(encodeWire(command({ path: ['org'], label: 'x' }, create(image)))), `image of ${size}`);
    assert.ok(decodeWire(whole).ok);
  }
  // not the content of a primitive value: refused
  assert.equal(spliceDer(der, at + 1, 4, 10), undefined);
});
