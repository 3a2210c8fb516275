import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, Ring, consoleFrame, consoleFrames, consoleFramePrefix, timeTlv } from '../src/console/ring.js';
import { ConsoleRegistry } from '../src/console/registry.js';
import { encodeWire, data, makeHeader } from '../src/core/wire/wire.js';
import { unwrap } from '../src/core/result.js';
import { parseName, nameToString } from '../src/core/name.js';
import { textToBytes } from '../src/core/asn.js';
import { FrameReader, frame } from '../src/core/frame.js';

const nm = (s: string) => unwrap(parseName(s));
const text = (l: string) => l;

test('LineSplitter: lines across reads, empty lines dropped, cut at 512 bytes with " [truncated]" and the rest discarded', () => {
  const s = new LineSplitter(512);
  assert.deepEqual(s.push(Buffer.from('hel')).map(text), []);
  assert.deepEqual(s.push(Buffer.from('lo\n\n\nworld\npart')).map(text), ['hello', 'world']);
  assert.equal(s.pending, 4);
  assert.deepEqual(s.push(Buffer.from('ial\n')).map(text), ['partial']);
  // 511 bytes fit, 512 reach the limit
  assert.deepEqual(s.push(Buffer.from(`${'a'.repeat(511)}\n`)).map(text), ['a'.repeat(511)]);
  assert.deepEqual(s.push(Buffer.from(`${'b'.repeat(512)}\nnext\n`)).map(text), [`${'b'.repeat(512)} [truncated]`, 'next']);
  // a long line over several reads: the rest is discarded up to its newline
  assert.deepEqual(s.push(Buffer.from('c'.repeat(300))).map(text), []);
  assert.deepEqual(s.push(Buffer.from('c'.repeat(300))).map(text), [`${'c'.repeat(512)} [truncated]`]);
  assert.deepEqual(s.push(Buffer.from('c'.repeat(5000))).map(text), []);
  assert.equal(s.pending, 0);
  assert.deepEqual(s.push(Buffer.from('ccc\nafter\n')).map(text), ['after']);
});

test('LineSplitter: the same lines whatever the read sizes', () => {
  const input = Buffer.from(['x', '', 'y'.repeat(700), 'short', 'z'.repeat(512), 'w'.repeat(511), '', 'end'].join('\n') + '\n');
  const whole = new LineSplitter(512).push(input).map(text);
  for (const step of [1, 7, 511, 512, 513, 4096]) {
    const s = new LineSplitter(512);
    const got: string[] = [];
    for (let i = 0; i < input.length; i += step) got.push(...s.push(input.subarray(i, i + step)).map(text));
    assert.deepEqual(got, whole, `step ${step}`);
  }
  assert.deepEqual(whole, ['x', `${'y'.repeat(512)} [truncated]`, 'short', `${'z'.repeat(512)} [truncated]`, 'w'.repeat(511), 'end']);
});

test('Ring: 1024 lines kept, count and since clamp huge, negative and early values', () => {
  const r = new Ring(1024);
  for (let i = 0; i < 3000; i++) r.push(i, String(i));
  assert.equal(r.size, 1024);
  assert.equal(text(r.all()[0].line), '1976');
  assert.deepEqual(r.last(2).map((l) => text(l.line)), ['2998', '2999']);
  assert.equal(r.last(Number.MAX_SAFE_INTEGER).length, 1024);
  assert.equal(r.last(-5).length, 1024);
  assert.equal(r.last(0).length, 0);
  assert.equal(r.since(-8.64e15).length, 1024);
  assert.deepEqual(r.since(2997).map((l) => l.timestamp), [2997, 2998, 2999]);
});

test('consoleFrame produces the octets of encodeWire', () => {
  for (const [name, line, t] of [[':foo', 'hello', Date.UTC(2024, 0, 2, 3, 4, 5, 678)], ['a:b:c', 'x'.repeat(600), 0], [':u', 'é\u0001', Date.UTC(2030, 5, 1)]] as const) {
    const w = encodeWire(data(makeHeader(nm(name)), { kind: 'console', value: { timestamp: t, line } }));
    const f = consoleFrame(consoleFramePrefix(5, nameToString(nm(name))), timeTlv(t), Buffer.from(textToBytes(line)).toString('latin1'));
    const fr = new FrameReader();
    fr.push(f);
    const r = fr.next();
    assert.equal(r.kind, 'frame');
    assert.deepEqual(Buffer.from((r as { body: Uint8Array }).body), Buffer.from(w));
  }
});

test('consoleFrames: the frames of several lines in one buffer, each as encodeWire', () => {
  const prefix = consoleFramePrefix(5, 'org:web');
  const t = Date.UTC(2025, 1, 2);
  const lines = ['a', 'x'.repeat(200), 'b'.repeat(524)];
  const want = Buffer.concat(lines.map((l) => frame(encodeWire(data(makeHeader(nm('org:web')), { kind: 'console', value: { timestamp: t, line: l } })))));
  assert.deepEqual(consoleFrames(prefix, timeTlv(t), lines), want);
});

test('ConsoleRegistry: rings per path bounded by n, inactive rings bounded in total, subscribers capped at max', () => {
  const reg = new ConsoleRegistry<string>({ maxSubscribers: 2, maxInactiveRings: 3 });
  // path a: allows 2 rings
  assert.ok(reg.add(nm('a:x'), 2n).ok);
  reg.subscribe(nm('a:x'), 's1');
  reg.deactivate(nm('a:x'));
  assert.ok(reg.add(nm('a:y'), 2n).ok);
  reg.deactivate(nm('a:y'));
  const r = reg.add(nm('a:z'), 2n);
  assert.ok(r.ok);
  assert.deepEqual(r.dropped.map(nameToString), ['a:x'], 'smallest inactive label dropped');
  assert.deepEqual(r.close, ['s1'], 'its subscribers are closed');
  assert.deepEqual(reg.listInactive(['a']).map(nameToString), [':y']);
  // inactive rings over all paths
  for (let i = 0; i < 100; i++) {
    reg.add(nm(`p${i}:u`), 5n);
    reg.deactivate(nm(`p${i}:u`));
  }
  assert.equal(reg.inactiveRingCount, 3);
  assert.deepEqual(reg.listInactive([]).map(nameToString).sort(), ['p97:u', 'p98:u', 'p99:u']);
  // subscribers: the oldest is closed, at most max remain
  assert.deepEqual(reg.subscribe(nm(':w'), 'a').close, []);
  assert.equal(reg.subscribe(nm(':w'), 'b').status, 'waiting for VM');
  assert.deepEqual(reg.subscribe(nm(':w'), 'c').close, ['a']);
  assert.deepEqual(reg.find(nm(':w'))?.subscribers, ['b', 'c']);
  // an entry without ring disappears with its last subscriber
  reg.unsubscribe(nm(':w'), 'b');
  reg.unsubscribe(nm(':w'), 'c');
  assert.equal(reg.find(nm(':w')), undefined);
  // the total number of rings is bounded
  const small = new ConsoleRegistry<string>({ maxSubscribers: 1, maxRings: 2 });
  assert.ok(small.add(nm(':a'), 10n).ok);
  assert.ok(small.add(nm(':b'), 10n).ok);
  const third = small.add(nm(':c'), 10n);
  assert.ok(!third.ok && /too many consoles/.test(third.error));
  assert.ok(small.add(nm(':a'), 10n).ok, 'an existing ring can be re-activated');
});

