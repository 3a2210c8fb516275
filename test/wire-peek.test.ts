/**
 * peekMessage (src/core/wire/peek.ts): the header and command of a message from its first
 * octets, as vmmd reads them before admitting a long frame.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { peekMessage } from '../src/core/wire/peek.js';
import { command, decodeWire, describeCommand, encodeWire } from '../src/core/wire/wire.js';
import { parseName } from '../src/core/name.js';

const DIR = join(__dirname, '..', '..', 'test', 'fixtures', 'upstream-2.7.2', 'run1');

test('every recorded upstream request: the header as decoded, the command family named, only creates carry data', () => {
  const reqs = readdirSync(DIR).filter((f) => f.endsWith('.req.der'));
  assert.ok(reqs.length > 10);
  for (const f of reqs) {
    const b = new Uint8Array(readFileSync(join(DIR, f)));
    const w = decodeWire(b);
    assert.ok(w.ok && w.value.payload.kind === 'command', f);
    // the first 4096 octets (or all of a shorter message) suffice
    const p = peekMessage(b.subarray(0, 4096));
    assert.ok(p.ok, `${f}: ${!p.ok && p.error}`);
    assert.deepEqual(p.value.header, w.value.header, f);
    const cmd = w.value.payload.value;
    assert.ok(p.value.what.startsWith(`${cmd.kind} `), `${f}: ${p.value.what}`);
    if (cmd.kind === 'unikernel' && (cmd.value.kind === 'info' || cmd.value.kind === 'create' || cmd.value.kind === 'destroy')) {
      assert.equal(p.value.what, describeCommand(cmd), f);
    }
    assert.equal(p.value.carriesData, cmd.kind === 'unikernel' && /create/.test(cmd.value.kind), `${f}: ${p.value.what}`);
  }
});

test('block add and set with inline data carry data; a header beyond the prefix and garbage are errors', () => {
  const n = parseName('p:b');
  assert.ok(n.ok);
  const peek = (cmd: Parameters<typeof command>[1]): { what: string; carriesData: boolean } => {
    const p = peekMessage(encodeWire(command(n.value, cmd)));
    assert.ok(p.ok);
    assert.equal(p.value.header.name.label, 'b');
    return { what: p.value.what, carriesData: p.value.carriesData };
  };
  assert.deepEqual(peek({ kind: 'block', value: { kind: 'set_old', value: { compress: false, data: new Uint8Array(10) } } }), { what: 'block old set', carriesData: true });
  assert.deepEqual(peek({ kind: 'block', value: { kind: 'add_old', value: { size: 1, compress: false, data: new Uint8Array(10) } } }), { what: 'block old add', carriesData: true });
  assert.deepEqual(peek({ kind: 'block', value: { kind: 'set', value: true } }), { what: 'block set', carriesData: false });
  assert.deepEqual(peek({ kind: 'policy', value: { kind: 'info', value: null } }), { what: 'policy info', carriesData: false });
  const info = encodeWire(command(n.value, { kind: 'unikernel', value: { kind: 'info', value: null } }));
  const cut = peekMessage(info.subarray(0, 10));
  assert.ok(!cut.ok && /header does not end within the first 10 bytes/.test(cut.error));
  assert.equal(peekMessage(Uint8Array.of(1, 2, 3)).ok, false);
});
