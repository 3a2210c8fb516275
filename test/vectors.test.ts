/**
 * Every frame body recorded from upstream Albatross v2.7.2 (test/fixtures/upstream-2.7.2/run1,
 * see its README.md) decodes, re-encodes to the identical octets, survives the JSON form,
 * and carries the values of the command that produced it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseName, nameToString } from '../src/core/name.js';
import { unwrap } from '../src/core/result.js';
import { fromJson, parseGeneralizedTime } from '../src/core/asn.js';
import { type Wire, decodeWire, encodeWire, describeCommand, wire } from '../src/core/wire/wire.js';

const DIR = join(__dirname, '..', '..', 'test', 'fixtures', 'upstream-2.7.2', 'run1');
const files = readdirSync(DIR).filter((f) => f.endsWith('.der')).sort();
const bytes = (f: string): Uint8Array => new Uint8Array(readFileSync(join(DIR, f)));
const decoded = (f: string): Wire => unwrap(decodeWire(bytes(f)));
const nm = (s: string) => unwrap(parseName(s));
const hdr = (s: string) => ({ version: 5, sequence: 0n, name: nm(s) });

test('the fixture directory holds the recorded run', () => {
  assert.equal(files.length, 51);
  assert.equal(files.filter((f) => f.endsWith('.req.der')).length, 23);
});

test('every recorded frame decodes and re-encodes to the same octets', () => {
  for (const f of files) {
    const b = bytes(f);
    const r = decodeWire(b);
    assert.ok(r.ok, `${f}: ${r.ok ? '' : r.error}`);
    assert.ok(Buffer.from(encodeWire(r.value)).equals(Buffer.from(b)), `${f}: re-encoding differs`);
    // requests are commands, replies are not
    assert.equal(r.value.payload.kind === 'command', f.endsWith('.req.der'), f);
  }
});

test('every recorded frame survives the JSON form', () => {
  for (const f of files) {
    const w = decoded(f);
    const j = JSON.parse(JSON.stringify(wire.toJson(w)));
    const back = fromJson(wire, j);
    assert.ok(back.ok, `${f}: ${back.ok ? '' : back.error}`);
    assert.ok(Buffer.from(encodeWire(back.value)).equals(Buffer.from(bytes(f))), `${f}: JSON round trip differs`);
  }
});

test('vmmd 1, 9, 21: info of the root, with no unikernel running', () => {
  for (const n of [1, 9, 21]) {
    assert.deepEqual(decoded(`vmmd.${n}.000.req.der`), { header: hdr(':'), payload: { kind: 'command', value: { kind: 'unikernel', value: { kind: 'info', value: null } } } });
    assert.deepEqual(decoded(`vmmd.${n}.000.rep.der`), { header: hdr(':'), payload: { kind: 'reply', value: { kind: 'unikernel_info', value: [] } } });
  }
});

const rootPolicy = { cpuids: [0, 1], unikernels: 2n ** 62n - 1n, memory: 24105, block: 258019, bridges: ['br0'] };
const deptPolicy = { cpuids: [0, 1], unikernels: 3n, memory: 256, block: 100, bridges: ['br0'] };

test('vmmd 2-4: policy info, policy add dept, policy info again', () => {
  assert.deepEqual(decoded('vmmd.2.000.req.der').payload, { kind: 'command', value: { kind: 'policy', value: { kind: 'info', value: null } } });
  assert.deepEqual(decoded('vmmd.2.000.rep.der'), {
    header: hdr(':'), payload: { kind: 'reply', value: { kind: 'policies', value: [{ name: nm(':'), policy: rootPolicy }] } },
  });
  assert.deepEqual(decoded('vmmd.3.000.req.der'), {
    header: hdr('dept:'), payload: { kind: 'command', value: { kind: 'policy', value: { kind: 'add', value: deptPolicy } } },
  });
  assert.deepEqual(decoded('vmmd.3.000.rep.der'), { header: hdr('dept:'), payload: { kind: 'reply', value: { kind: 'string', value: 'added policy' } } });
  assert.deepEqual(decoded('vmmd.4.000.rep.der').payload, {
    kind: 'reply', value: { kind: 'policies', value: [{ name: nm(':'), policy: rootPolicy }, { name: nm('dept:'), policy: deptPolicy }] },
  });
});

test('vmmd 5-7: block devices created and listed', () => {
  assert.deepEqual(decoded('vmmd.5.000.req.der'), { header: hdr(':storage'), payload: { kind: 'command', value: { kind: 'block', value: { kind: 'add', value: 4 } } } });
  assert.deepEqual(decoded('vmmd.5.000.rep.der').payload, { kind: 'reply', value: { kind: 'string', value: 'added block device' } });
  assert.deepEqual(decoded('vmmd.6.000.req.der'), { header: hdr('dept:data'), payload: { kind: 'command', value: { kind: 'block', value: { kind: 'add', value: 8 } } } });
  assert.deepEqual(decoded('vmmd.7.000.req.der').payload, { kind: 'command', value: { kind: 'block', value: { kind: 'info', value: null } } });
  assert.deepEqual(decoded('vmmd.7.000.rep.der').payload, {
    kind: 'reply',
    value: { kind: 'block_devices', value: [{ name: nm(':storage'), size: 4, active: false }, { name: nm('dept:data'), size: 8, active: false }] },
  });
});

test('vmmd 8, 10, 11, 12: creates carry the configurations of the README', () => {
  const cmd = (f: string) => {
    const w = decoded(f);
    assert.equal(w.payload.kind, 'command');
    if (w.payload.kind !== 'command' || w.payload.value.kind !== 'unikernel' || w.payload.value.value.kind !== 'create') throw new Error(`${f} is not a create`);
    assert.equal(describeCommand(w.payload.value), 'unikernel create');
    return { name: nameToString(w.header.name), config: w.payload.value.value.value };
  };
  const elf = (c: { image: Uint8Array }) => Buffer.from(c.image.subarray(0, 4)).toString('hex');

  const hello = cmd('vmmd.8.000.req.der');
  assert.equal(hello.name, ':hello');
  assert.deepEqual(hello.config.arguments, ['Hello_Solo5']);
  assert.equal(elf(hello.config), '7f454c46');
  assert.deepEqual(decoded('vmmd.8.000.rep.der').payload, { kind: 'reply', value: { kind: 'string', value: 'created unikernel' } });

  const blk = cmd('vmmd.10.000.req.der');
  assert.equal(blk.name, ':blk');
  assert.equal(blk.config.memory, 16);
  assert.deepEqual(blk.config.failBehaviour, { kind: 'restart', value: [3] });
  assert.deepEqual(blk.config.blocks.map((b) => b.blockName), ['storage']);

  const net = cmd('vmmd.11.000.req.der');
  assert.equal(net.name, 'dept:net');
  assert.equal(net.config.memory, 64);
  assert.equal(net.config.startup, 10);
  assert.deepEqual(net.config.cpuids, [1]);
  assert.deepEqual(net.config.bridges.map((b) => [b.netif, b.bridge]), [['service0', 'br0']]);

  const big = cmd('vmmd.12.000.req.der');
  assert.equal(big.name, 'dept:big');
  assert.equal(big.config.memory, 512);
  assert.deepEqual(decoded('vmmd.12.000.rep.der'), {
    header: hdr('dept:big'),
    payload: { kind: 'failure', value: 'maximum allowed memory (256, used 0) would be exceeded (requesting 512)' },
  });
});

test('vmmd 13-21: info, destroys, removals and restart', () => {
  assert.deepEqual(decoded('vmmd.13.000.req.der').header, hdr(':dept'));
  assert.deepEqual(decoded('vmmd.13.000.rep.der').payload, { kind: 'reply', value: { kind: 'unikernel_info', value: [] } });
  for (const [n, name] of [[14, 'dept:net'], [15, ':nosuch'], [20, ':blk']] as const) {
    assert.deepEqual(decoded(`vmmd.${n}.000.req.der`), { header: hdr(name), payload: { kind: 'command', value: { kind: 'unikernel', value: { kind: 'destroy', value: null } } } });
    assert.deepEqual(decoded(`vmmd.${n}.000.rep.der`), { header: hdr(name), payload: { kind: 'failure', value: 'destroy: not found' } });
  }
  assert.deepEqual(decoded('vmmd.16.000.req.der'), { header: hdr('dept:'), payload: { kind: 'command', value: { kind: 'policy', value: { kind: 'remove', value: null } } } });
  assert.deepEqual(decoded('vmmd.16.000.rep.der').payload, { kind: 'reply', value: { kind: 'string', value: 'removed policy' } });
  for (const [n, name] of [[17, 'dept:data'], [18, ':storage']] as const) {
    assert.deepEqual(decoded(`vmmd.${n}.000.req.der`), { header: hdr(name), payload: { kind: 'command', value: { kind: 'block', value: { kind: 'remove', value: null } } } });
    assert.deepEqual(decoded(`vmmd.${n}.000.rep.der`).payload, { kind: 'reply', value: { kind: 'string', value: 'removed block' } });
  }
  assert.deepEqual(decoded('vmmd.19.000.req.der'), {
    header: hdr(':blk'), payload: { kind: 'command', value: { kind: 'unikernel', value: { kind: 'restart', value: { kind: 'no_arguments', value: null } } } },
  });
  assert.deepEqual(decoded('vmmd.19.000.rep.der').payload, { kind: 'failure', value: 'destroy: not found' });
});

test('console 1: subscribe count 5 for hello, then the buffered lines', () => {
  assert.deepEqual(decoded('console.1.000.req.der'), {
    header: hdr(':hello'), payload: { kind: 'command', value: { kind: 'console', value: { kind: 'subscribe', value: { kind: 'count', value: 5 } } } },
  });
  assert.deepEqual(decoded('console.1.000.rep.der'), { header: hdr(':hello'), payload: { kind: 'reply', value: { kind: 'string', value: 'subscribed' } } });
  const ts = unwrap(parseGeneralizedTime('20261125170300.915Z'));
  const lines = [1, 2, 3, 4, 5].map((i) => {
    const w = decoded(`console.1.00${i}.rep.der`);
    assert.deepEqual(w.header, hdr(':hello'));
    if (w.payload.kind !== 'data' || w.payload.value.kind !== 'console') throw new Error('not console data');
    assert.equal(w.payload.value.value.timestamp, ts);
    return w.payload.value.value.line;
  });
  assert.deepEqual(lines, [
    'Solo5:       heap >= 0x106000 < stack < 0x2000000',
    '**** Solo5 standalone test_hello ****',
    'Hello, World',
    "Command line is: '--name=hello Hello_Solo5'",
    'Solo5: solo5_exit(0) called',
  ]);
});

test('console 2: inactive consoles', () => {
  assert.deepEqual(decoded('console.2.000.req.der'), {
    header: hdr(':'), payload: { kind: 'command', value: { kind: 'console', value: { kind: 'list_inactive', value: null } } },
  });
  assert.deepEqual(decoded('console.2.000.rep.der').payload, { kind: 'reply', value: { kind: 'consoles', value: [nm(':hello'), nm(':blk'), nm('dept:net')] } });
});
