/**
 * Command building: every subcommand's encoding, compared byte for byte with the requests
 * upstream 2.7.2's albatross-client sent for the same command lines (fixtures run1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BuildInput, buildRequest, certificateCn, parseBlockSpec, parseNetSpec, parseSince, COMMAND_OPTIONS, fixAddName } from '../src/client/commands.js';
import { parseCli } from '../src/cli/common.js';
import { command, decodeWire, encodeWire } from '../src/core/wire/wire.js';
import { nameToString } from '../src/core/name.js';
import { unwrap } from '../src/core/result.js';
import { image as solo5Image } from './helpers/image.js';

const FIX = join(__dirname, '..', '..', 'test', 'fixtures', 'upstream-2.7.2', 'run1');
const recorded = (f: string): Uint8Array => new Uint8Array(readFileSync(join(FIX, `${f}.000.req.der`)));

function build(argv: string[], dest: BuildInput['dest'] = 'local', image?: Uint8Array) {
  const o = fixAddName(parseCli({ binary: 't', synopsis: [], description: '', options: COMMAND_OPTIONS }, argv), argv) as ReturnType<typeof parseCli>;
  const [sub, ...args] = o._;
  return buildRequest({ sub, args, opts: o, dest, image });
}
function encoded(argv: string[], image?: Uint8Array): Uint8Array {
  const r = build(argv, 'local', image);
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  assert.equal(r.value.kind, 'commands');
  if (r.value.kind !== 'commands') throw new Error('unreachable');
  assert.equal(r.value.steps.length, 1);
  const s = r.value.steps[0];
  return encodeWire(command(s.name, s.command));
}
/** The image of a recorded create request. */
function recordedImage(f: string): Uint8Array {
  const w = unwrap(decodeWire(recorded(f)));
  const p = w.payload;
  if (p.kind !== 'command' || p.value.kind !== 'unikernel' || p.value.value.kind !== 'create') throw new Error('not a create');
  return p.value.value.value.image;
}

const cases: [string, string[]][] = [
  ['vmmd.1', ['info']],
  ['vmmd.2', ['policy']],
  ['vmmd.3', ['add-policy', 'dept', '3', '--mem=256', '--cpu=0', '--cpu=1', '--bridge=br0', '--size=100']],
  ['vmmd.5', ['create-block', 'storage', '4']],
  ['vmmd.6', ['create-block', 'dept:data', '8']],
  ['vmmd.7', ['block']],
  ['vmmd.13', ['info', '--name=dept']],
  ['vmmd.14', ['destroy', 'dept:net']],
  ['vmmd.15', ['destroy', 'nosuch']],
  ['vmmd.16', ['remove-policy', '--path=dept']],
  ['vmmd.17', ['destroy-block', 'dept:data']],
  ['vmmd.18', ['destroy-block', 'storage']],
  ['vmmd.19', ['restart', 'blk']],
  ['vmmd.20', ['destroy', 'blk']],
  ['vmmd.21', ['info']],
  ['console.1', ['console', 'hello', '--count=5']],
  ['console.2', ['inactive-consoles']],
];
for (const [f, argv] of cases) {
  test(`${argv.join(' ')} encodes as upstream's ${f}`, () => {
    assert.deepEqual(Buffer.from(encoded(argv)).toString('hex'), Buffer.from(recorded(f)).toString('hex'));
  });
}

const creates: [string, string[]][] = [
  ['vmmd.8', ['create', 'hello', 'IMG', '--arg=Hello_Solo5']],
  ['vmmd.10', ['create', 'blk', 'IMG', '--block=storage', '--mem=16', '--restart-on-fail', '--exit-code=3']],
  ['vmmd.11', ['create', 'dept:net', 'IMG', '--net=service0:br0', '--cpu=1', '--mem=64', '--startup=10']],
  ['vmmd.12', ['create', 'dept:big', 'IMG', '--net=service0:br0', '--mem=512']],
];
for (const [f, argv] of creates) {
  test(`${argv.join(' ')} encodes as upstream's ${f} (with the recorded image)`, () => {
    assert.deepEqual(Buffer.from(encoded(argv, recordedImage(f))).toString('hex'), Buffer.from(recorded(f)).toString('hex'));
  });
}

test('create checks the image against its manifest before sending', () => {
  const img = recordedImage('vmmd.11'); // manifest: net service0
  const r = build(['create', 'x', 'IMG'], 'local', img);
  assert.ok(!r.ok);
  assert.equal(r.error.kind, 'invalid');
  assert.match(r.error.message, /does not match with the manifest/);
  const bad = build(['create', 'x', 'IMG'], 'local', new Uint8Array([1, 2, 3]));
  assert.ok(!bad.ok && bad.error.kind === 'invalid' && bad.error.message.startsWith('IMG: '));
});

test('create: remote and csr default to compression 9, local to 0; --force gives force-create', () => {
  const img = solo5Image();
  for (const [dest, compressed] of [['local', false], ['csr', true], ['remote', true]] as const) {
    const r = unwrap(build(['create', 'x', 'IMG', '-f'], dest, img) as never) as { kind: string; steps: { command: { value: { kind: string; value: { compressed: boolean } } } }[] };
    assert.equal(r.steps[0].command.value.kind, 'force_create');
    assert.equal(r.steps[0].command.value.value.compressed, compressed);
  }
});

test('device specs: block name[:hostdev][@sector], net [name:]bridge[@mac]', () => {
  assert.deepEqual(unwrap(parseBlockSpec('disk') as never), { blockName: 'disk' });
  assert.deepEqual(unwrap(parseBlockSpec('disk:store@4096') as never), { blockName: 'disk', blockDeviceName: 'store', blockSectorSize: 4096 });
  assert.match((parseBlockSpec('disk@1000') as { error: { message: string } }).error.message, /power of two >= 512/);
  assert.match((parseBlockSpec('disk@256') as { error: { message: string } }).error.message, /power of two >= 512/);
  const n = unwrap(parseNetSpec('service:br0@02:00:00:00:00:01') as never) as { netif: string; bridge: string; mac: Uint8Array };
  assert.equal(n.netif, 'service');
  assert.equal(n.bridge, 'br0');
  assert.deepEqual([...n.mac], [2, 0, 0, 0, 0, 1]);
  assert.deepEqual(unwrap(parseNetSpec('br0') as never), { netif: 'br0' });
  assert.match((parseNetSpec('a:b@zz') as { error: { message: string } }).error.message, /invalid MAC/);
});

test('client-side validation uses upstream messages', () => {
  const img = new Uint8Array(0);
  const e = (argv: string[]): string => {
    const r = build(argv, 'local', img);
    assert.ok(!r.ok, argv.join(' '));
    return r.error.message;
  };
  assert.equal(e(['create', 'x', 'IMG', '--net=a:br0', '--net=a:br1']), 'Bridge names must be a set');
  assert.equal(e(['create', 'x', 'IMG', '--block=a', '--block=a:b']), 'Block devices must be a set');
  assert.equal(e(['add-policy', 'p', '0']), 'Unusable policy with no unikernels');
  assert.equal(e(['add-policy', 'p', '2', '--mem=16']), 'Unusable policy with memory 16 MB <= 16 MB');
  assert.match(e(['info', '--count=3']), /--count does not apply to info/);
  assert.match(e(['destroy']), /missing argument NAME/);
  assert.match(e(['destroy', 'a', 'b']), /unexpected argument "b"/);
  assert.match(e(['destroy', 'a b']), /invalid name/);
  assert.match(e(['policy', '--path=a/b']), /invalid path/);
  assert.match(e(['console', 'x', '--since=yesterday']), /RFC 3339/);
  assert.match(e(['frobnicate']), /unknown subcommand/);
  assert.match(e(['get', 'x', '--compression-level=10']), /between 0 and 9/);
});

test('names are names, paths are paths', () => {
  const name = (argv: string[]): string => {
    const r = unwrap(build(argv) as never) as { steps: { name: Parameters<typeof nameToString>[0] }[] };
    return nameToString(r.steps[0].name);
  };
  assert.equal(name(['info', '--name=dept']), ':dept');
  assert.equal(name(['info', '--name=dept:']), 'dept:');
  assert.equal(name(['policy', '--path=dept']), 'dept:');
  assert.equal(name(['stats', '-n', 'a:b']), 'a:b');
});

test('restart --replace-arguments carries the new configuration; options without it are refused', () => {
  const r = unwrap(build(['restart', 'x', '--replace-arguments', '--mem=64', '--arg=a']) as never) as { steps: { command: unknown }[] };
  assert.deepEqual(r.steps[0].command, {
    kind: 'unikernel',
    value: { kind: 'restart', value: { kind: 'arguments', value: { failBehaviour: { kind: 'quit', value: null }, addName: true, cpuids: [0], memory: 64, blocks: [], bridges: [], cpus: 1, arguments: ['a'] } } },
  });
  assert.ok(!build(['restart', 'x', '--mem=64']).ok);
  const n = unwrap(build(['restart', 'x', '--replace-arguments', '--no-add-name']) as never) as { steps: { command: { value: { value: { value: { addName: boolean } } } } }[] };
  assert.equal(n.steps[0].command.value.value.value.addName, false);
});

test('create-block --data: block add, then block set with the file; set-block and dump-block carry the level', () => {
  const r = unwrap(build(['create-block', 'b', '10', '--data=f.img', '--compression-level=3']) as never) as { steps: { command: unknown; upload?: unknown }[] };
  assert.equal(r.steps.length, 2);
  assert.deepEqual(r.steps[0].command, { kind: 'block', value: { kind: 'add', value: 10 } });
  assert.deepEqual(r.steps[1].command, { kind: 'block', value: { kind: 'set', value: true } });
  assert.deepEqual(r.steps[1].upload, { file: 'f.img', level: 3 });
  const s = unwrap(build(['set-block', 'b', 'f.img']) as never) as { steps: { command: unknown; upload?: unknown }[] };
  assert.deepEqual(s.steps[0].command, { kind: 'block', value: { kind: 'set', value: false } });
  const d = unwrap(build(['dump-block', 'b'], 'remote') as never) as { steps: { command: unknown }[] };
  assert.deepEqual(d.steps[0].command, { kind: 'block', value: { kind: 'dump', value: 9 } });
});

test('console --since takes RFC 3339 or a bare date; stats-add parses bridge:tap', () => {
  assert.equal(unwrap(parseSince('2024-01-31') as never), Date.UTC(2024, 0, 31));
  assert.equal(unwrap(parseSince('2024-01-31T12:00:00+01:00') as never), Date.UTC(2024, 0, 31, 11));
  const r = unwrap(build(['stats-add', '42', '--bridge=br0:tap0', '-n', 'x']) as never) as { steps: { command: unknown }[] };
  assert.deepEqual(r.steps[0].command, { kind: 'stats', value: { kind: 'add', value: { vmmdev: '', pid: 42, network: [{ bridge: 'br0', tap: 'tap0' }] } } });
});

test('certificate CN: the path for policies, the label otherwise', () => {
  const cmd = (argv: string[]) => (unwrap(build(argv, 'csr', new Uint8Array(0)) as never) as { steps: { name: never; command: never }[] }).steps[0];
  let s = cmd(['add-policy', 'user', '16']);
  assert.equal(unwrap(certificateCn(s.name, s.command)), 'user');
  s = cmd(['destroy', 'hello']);
  assert.equal(unwrap(certificateCn(s.name, s.command)), 'hello');
  s = cmd(['info']);
  assert.equal(unwrap(certificateCn(s.name, s.command)), '.');
  s = cmd(['destroy', 'a:hello']);
  assert.deepEqual(certificateCn(s.name, s.command), { ok: false, error: 'non-empty path' });
});
