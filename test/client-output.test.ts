/**
 * What the clients print: every recorded upstream reply described without error, console
 * lines escaped, tables aligned, JSON one document per message, the `--socket -` hexdump;
 * and the provisioning helpers' serial numbers and key identifiers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { describeMessage, docText, downloadFileName, escapeLine, hexdump, logDoc, messageDoc, messageJson, table } from '../src/client/output.js';
import { decodeWire, makeHeader } from '../src/core/wire/wire.js';
import { parseName } from '../src/core/name.js';
import { unwrap } from '../src/core/result.js';
import { keyIdentifier, serialOf } from '../src/provision/certs.js';
import { generateKey, spkiOf } from '../src/provision/keys.js';
import { parseDestination } from '../src/client/remote.js';

const FIX = join(__dirname, '..', '..', 'test', 'fixtures', 'upstream-2.7.2', 'run1');
const plain = { colour: false };

test('every recorded upstream reply is described, as text and as one JSON line', () => {
  const files = readdirSync(FIX).filter((f) => f.endsWith('.rep.der'));
  assert.ok(files.length > 20);
  for (const f of files) {
    const w = unwrap(decodeWire(new Uint8Array(readFileSync(join(FIX, f)))));
    const text = describeMessage(plain, w);
    assert.ok(text.endsWith('\n') && text.length > 1, f);
    const j = messageJson(w);
    assert.equal(j.split('\n').length, 2, f);
    assert.doesNotThrow(() => JSON.parse(j), f);
  }
  const failure = unwrap(decodeWire(new Uint8Array(readFileSync(join(FIX, 'vmmd.14.000.rep.der')))));
  assert.equal(describeMessage(plain, failure), 'failure: destroy: not found\n');
});

test('console lines: control characters are escaped, backslashes and text are kept', () => {
  assert.equal(escapeLine('plain text é'), 'plain text é');
  assert.equal(escapeLine('a\x1b[31mred\x07\tb\\'), 'a\\x1b[31mred\\x07\\x09b\\');
  assert.equal(escapeLine('\\__ \\ (   | | (   |  ) |'), '\\__ \\ (   | | (   |  ) |', 'the Solo5 banner is shown as drawn');
  assert.equal(escapeLine('\x7f\u0085'), '\\x7f\\x85');
  const w = { header: makeHeader(unwrap(parseName('web'))), payload: { kind: 'data' as const, value: { kind: 'console' as const, value: { timestamp: Date.UTC(2024, 0, 1), line: 'hi\x1b' } } } };
  assert.equal(describeMessage(plain, w), ':web 2024-01-01T00:00:00Z hi\\x1b\n');
  assert.match(describeMessage({ colour: true }, w), /^\x1b\[1m:web\x1b\[0m /);
});

test('download file names have no colons: labels joined by _, ISO 8601 basic time', () => {
  const t = Date.UTC(2024, 0, 31, 12, 0, 0, 250);
  assert.equal(downloadFileName(unwrap(parseName('web')), t), 'web.20240131T120000Z');
  assert.equal(downloadFileName(unwrap(parseName('dept:team:web')), t), 'dept_team_web.20240131T120000Z');
});

test('tables pad columns to the widest cell; the last column is not padded', () => {
  assert.equal(table(plain, ['A', 'BB', 'C'], [['xxx', 'y', 'z'], ['q', 'rrrr', '']]), 'A    BB    C\nxxx  y     z\nq    rrrr\n');
});

test('the --socket - hexdump: offsets, two groups of eight, ASCII', () => {
  const b = new Uint8Array(18).map((_, i) => 0x41 + i);
  assert.equal(
    hexdump(b),
    'out:\n00000000  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  |ABCDEFGHIJKLMNOP|\n00000010  51 52                                             |QR|\n',
  );
});

test('serial numbers are positive 10-octet INTEGERs (CERTS.md §7.2)', () => {
  assert.equal(serialOf(new Uint8Array([0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9])), '0080010203040506070809');
  assert.equal(serialOf(new Uint8Array([0x00, 0x10, 2, 3, 4, 5, 6, 7, 8, 9])), '7f00100203040506070809');
  assert.equal(serialOf(new Uint8Array([0x00, 0x90, 2, 3, 4, 5, 6, 7, 8, 9])), '00900203040506070809');
  assert.equal(serialOf(new Uint8Array([0x12, 0, 0, 0, 0, 0, 0, 0, 0, 1])), '12000000000000000001');
});

test('key identifiers: SHA-1 over the public key octets', async () => {
  const k = await generateKey('ed25519');
  const spki = await spkiOf(k);
  // Ed25519 SPKI: 12 octets of header, then the 32 key octets
  assert.equal(keyIdentifier(spki), createHash('sha1').update(spki.subarray(12)).digest('hex'));
});

test('destinations: host, host:port, [v6]:port, default port 1025', () => {
  assert.deepEqual(parseDestination('example.org'), { ok: true, value: { host: 'example.org', port: 1025 } });
  assert.deepEqual(parseDestination('10.0.0.1:2000'), { ok: true, value: { host: '10.0.0.1', port: 2000 } });
  assert.deepEqual(parseDestination('[::1]:9'), { ok: true, value: { host: '::1', port: 9 } });
  assert.deepEqual(parseDestination('::1'), { ok: true, value: { host: '::1', port: 1025 } });
  assert.equal(parseDestination('host:port').ok, false);
  assert.equal(parseDestination(':1').ok, false);
});

test('--json documents: every recorded upstream reply gives one line of JSON without wire CHOICE objects', () => {
  for (const f of readdirSync(FIX).filter((x) => x.endsWith('.rep.der'))) {
    const w = unwrap(decodeWire(new Uint8Array(readFileSync(join(FIX, f)))));
    const d = messageDoc(w);
    if (d === undefined) continue;
    const text = docText(d);
    assert.equal(text.split('\n').length, 2, f);
    const j = JSON.parse(text) as unknown;
    assert.ok(!/"(solo5|quit|restart)":null/.test(text), `${f}: ${text.slice(0, 200)}`);
    assert.equal(typeof j, 'object', f);
  }
});

test('--json documents: 64-bit counters as plain numbers; log stops name the signal; actions as strings', () => {
  assert.equal(docText({ a: 2n ** 63n - 1n, b: undefined, c: [1, 'x'] }), '{"a":9223372036854775807,"c":[1,"x"]}\n');
  const hello = unwrap(parseName('hello'));
  const stop = (status: { kind: 'exit' | 'signal' | 'stopped'; value: number }) =>
    logDoc({ header: makeHeader(hello), payload: { kind: 'data', value: { timestamp: Date.UTC(2024, 0, 31, 12), event: { kind: 'unikernel_stop', value: { name: hello, pid: 42, status } } } } } as never);
  assert.deepEqual(stop({ kind: 'signal', value: -11 }), { time: '2024-01-31T12:00:00Z', event: 'stop', name: ':hello', pid: 42, signal: 'SIGTERM' });
  assert.deepEqual(stop({ kind: 'exit', value: 3 }), { time: '2024-01-31T12:00:00Z', event: 'stop', name: ':hello', pid: 42, exit_code: 3 });
  const add = logDoc({ header: makeHeader(hello), payload: { kind: 'data', value: { timestamp: 0, event: { kind: 'action', value: { name: hello, action: { kind: 'block_add', value: 10 } } } } } } as never);
  assert.deepEqual(add, { time: '1970-01-01T00:00:00Z', event: 'block-add', name: ':hello', size_mb: 10 });
});
