/**
 * vmmd as a real process with the fake tender: unikernel lifecycle, restart-on-failure with
 * back-off, force-create, restart with arguments, info and get, policies, block devices with
 * streamed upload and download.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { deflateSync, inflateSync } from 'node:zlib';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connectUnix } from '../src/transport/conn.js';
import { command } from '../src/core/wire/wire.js';
import type { Command, Wire } from '../src/core/wire/wire.js';
import type { Policy } from '../src/core/wire/common.js';
import {
  type RunDir, type VmmdProcess, RealConsole, ask, config, create, describe, destroy, forceCreate, info, livePids, makeRunDir,
  nm, readAll, request, startVmmd, until,
} from './helpers/vmmd.js';

let d: RunDir;
let cp: RealConsole;
let v: VmmdProcess;

before(async () => {
  d = makeRunDir();
  cp = new RealConsole(d.tmpdir);
  await cp.start();
  v = await startVmmd(d, ['--restart-backoff', '100']);
});

after(async () => {
  const code = await v.stop();
  await cp.stop();
  assert.equal(code, 0, v.stderr());
  assert.deepEqual(livePids(d), [], 'every tender stopped at shutdown');
  d.remove();
});

const infoOf = async (name: string): Promise<Array<{ name: string; memory: number; args?: string[]; digest: string }>> => {
  const ws = await request(v.sock, name, info);
  assert.equal(ws.length, 1);
  const p = ws[0].payload;
  assert.ok(p.kind === 'reply' && p.value.kind === 'unikernel_info', describe(ws[0]));
  return p.value.value.map((e) => ({
    name: `${e.name.path.join(':')}:${e.name.label ?? ''}`,
    memory: e.info.memory,
    ...(e.info.arguments === undefined ? {} : { args: e.info.arguments }),
    digest: Buffer.from(e.info.digest).toString('hex'),
  }));
};

const policy = (p: Partial<Policy>): Command => ({
  kind: 'policy',
  value: { kind: 'add', value: { cpuids: [0], unikernels: 10n, memory: 1024, bridges: [], ...p } },
});

test('create, info, get, destroy of a unikernel', async () => {
  const c = config(['--lines=3', '--sleep']);
  assert.equal(await ask(v.sock, 'life:one', create(c)), 'ok: created unikernel');
  await cp.waitFor('life:one', (l) => l === 'line 3');
  assert.equal(await ask(v.sock, 'life:one', create(c)), 'fail: Unikernel with same name is already running');
  const all = await infoOf('life:');
  assert.deepEqual(all.map((e) => e.name), [':one'], 'names relative to the queried path');
  assert.equal(all[0].digest, createHash('sha256').update(c.image).digest('hex'));
  assert.deepEqual((await infoOf('life:one')).map((e) => e.name), ['life:one'], 'a single unikernel under the header name');
  assert.deepEqual(await infoOf('life:two'), []);

  // get: uncompressed stored image at level 0 and at level 9
  const g0 = await request(v.sock, 'life:one', { kind: 'unikernel', value: { kind: 'get', value: 0 } });
  assert.ok(g0[0].payload.kind === 'reply' && g0[0].payload.value.kind === 'unikernel_image');
  assert.equal(g0[0].payload.value.value.compressed, false);
  assert.deepEqual(Buffer.from(g0[0].payload.value.value.image), Buffer.from(c.image));
  const g9 = await request(v.sock, 'life:one', { kind: 'unikernel', value: { kind: 'get', value: 9 } });
  assert.ok(g9[0].payload.kind === 'reply' && g9[0].payload.value.kind === 'unikernel_image');
  assert.equal(g9[0].payload.value.value.compressed, true);
  assert.deepEqual(inflateSync(g9[0].payload.value.value.image), Buffer.from(c.image));

  assert.equal(await ask(v.sock, 'life:one', destroy), 'ok: destroyed unikernel');
  assert.equal(await ask(v.sock, 'life:one', destroy), 'fail: destroy: not found');
  assert.equal(await ask(v.sock, 'life:one', { kind: 'unikernel', value: { kind: 'get', value: 0 } }), 'fail: get: no unikernel found');
  assert.ok(!fs.existsSync(path.join(d.tmpdir, 'life:one.img')), 'image removed');
  assert.ok(!fs.existsSync(path.join(d.tmpdir, 'fifo', 'life:one')), 'FIFO removed');
});

test('a compressed image: get at level 0 decompresses, at level 5 returns the stored stream', async () => {
  const plain = config(['--sleep']);
  const z = deflateSync(plain.image);
  assert.equal(await ask(v.sock, 'life:zipped', create({ ...plain, compressed: true, image: z })), 'ok: created unikernel');
  const g0 = await request(v.sock, 'life:zipped', { kind: 'unikernel', value: { kind: 'get', value: 0 } });
  assert.ok(g0[0].payload.kind === 'reply' && g0[0].payload.value.kind === 'unikernel_image');
  assert.deepEqual(Buffer.from(g0[0].payload.value.value.image), Buffer.from(plain.image));
  const g5 = await request(v.sock, 'life:zipped', { kind: 'unikernel', value: { kind: 'get', value: 5 } });
  assert.ok(g5[0].payload.kind === 'reply' && g5[0].payload.value.kind === 'unikernel_image');
  assert.deepEqual(Buffer.from(g5[0].payload.value.value.image), z);
  assert.equal(await ask(v.sock, 'life:zipped', create({ ...plain, compressed: true, image: new Uint8Array([1, 2, 3]) })), 'fail: Unikernel with same name is already running');
  assert.match(await ask(v.sock, 'life:bad', create({ ...plain, compressed: true, image: new Uint8Array([1, 2, 3]) })), /^fail: failed to uncompress: /);
  assert.equal(await ask(v.sock, 'life:zipped', destroy), 'ok: destroyed unikernel');
});

test('the tender refuses a manifest mismatch; vmmd refuses it first with the manifest message', async () => {
  const c = config([], { blocksDeclared: ['storage'] });
  const r = await ask(v.sock, 'life:mft', create(c));
  assert.match(r, /^fail: specified block device\(s\) does not match with manifest/);
});

test('restart on failure: exit codes in the set restart with back-off, destroy ends the loop', async () => {
  const before = await cp.runs('loop:crash');
  const c = config(['--exit=3'], { failBehaviour: { kind: 'restart', value: [3] } });
  assert.equal(await ask(v.sock, 'loop:crash', create(c)), 'ok: created unikernel');
  await until('three restarts', async () => (await cp.runs('loop:crash')) >= before + 4);
  const r = await ask(v.sock, 'loop:crash', destroy);
  assert.ok(r === 'ok: destroyed: removed from restarting' || r === 'ok: destroyed unikernel', r);
  await until('no tender left', () => livePids(d).length === 0);
  // a later exit of the last run (if any) must not start it again
  await new Promise((res) => setTimeout(res, 500));
  const n = await cp.runs('loop:crash');
  await new Promise((res) => setTimeout(res, 500));
  assert.equal(await cp.runs('loop:crash'), n, 'no restart after destroy');
  assert.equal(await ask(v.sock, 'loop:crash', destroy), 'fail: destroy: not found');
  assert.match(v.stderr(), /loop:crash exited \d+ times in a row quickly; restarting in \d+ ms/);
});

test('restart on failure: an exit code outside the set, exit 1 and a signal are not restarted', async () => {
  for (const [label, args] of [['code', ['--exit=4']], ['one', ['--exit=1']], ['segv', ['--signal=SEGV']]] as const) {
    const name = `loop:${label}`;
    const c = config([...args], { failBehaviour: { kind: 'restart', value: label === 'code' ? [3] : [] } });
    assert.equal(await ask(v.sock, name, create(c)), 'ok: created unikernel');
    await until(`${name} gone`, async () => (await infoOf(name)).length === 0);
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(await cp.runs(name), 1, `${name} started once`);
  }
});

test('add-name: a unikernel exiting 64 on --name= is started again without it', async () => {
  const c = config(['--exit-on-name=64', '--sleep'], { addName: true });
  assert.equal(await ask(v.sock, 'names:web', create(c)), 'ok: created unikernel');
  await cp.waitFor('names:web', (l) => l.startsWith('args: --name=web'));
  await until('restart without --name', async () => (await cp.runs('names:web')) === 2);
  await cp.waitFor('names:web', (l) => l === 'args: --solo5:quiet --exit-on-name=64 --sleep');
  assert.equal(await ask(v.sock, 'names:web', destroy), 'ok: destroyed unikernel');
});

test('force-create replaces a running unikernel; restart applies new arguments', async () => {
  assert.equal(await ask(v.sock, 'fc:a', create(config(['--lines=1', '--sleep']))), 'ok: created unikernel');
  await cp.waitFor('fc:a', (l) => l === 'line 1');
  const pidsBefore = livePids(d);
  assert.equal(await ask(v.sock, 'fc:a', forceCreate(config(['--lines=5', '--sleep']))), 'ok: created unikernel');
  await cp.waitFor('fc:a', (l) => l === 'line 5');
  const after1 = livePids(d);
  assert.equal(after1.length, pidsBefore.length, 'one tender replaced by one');
  assert.deepEqual((await infoOf('fc:a'))[0].args, ['--solo5:quiet', '--lines=5', '--sleep']);

  const restart: Command = {
    kind: 'unikernel',
    value: {
      kind: 'restart',
      value: {
        kind: 'arguments',
        value: { failBehaviour: { kind: 'quit', value: null }, addName: false, cpuids: [0], memory: 48, blocks: [], bridges: [], cpus: 1, arguments: ['--solo5:quiet', '--lines=7', '--sleep'] },
      },
    },
  };
  assert.equal(await ask(v.sock, 'fc:a', restart), 'ok: created unikernel');
  await cp.waitFor('fc:a', (l) => l === 'line 7');
  const i = await infoOf('fc:a');
  assert.deepEqual(i[0].args, ['--solo5:quiet', '--lines=7', '--sleep']);
  assert.equal(i[0].memory, 48);
  assert.equal(await ask(v.sock, 'fc:a', { kind: 'unikernel', value: { kind: 'restart', value: { kind: 'no_arguments', value: null } } }), 'ok: created unikernel');
  assert.equal(await ask(v.sock, 'fc:b', { kind: 'unikernel', value: { kind: 'restart', value: { kind: 'no_arguments', value: null } } }), 'fail: destroy: not found');
  assert.equal(await ask(v.sock, 'fc:a', destroy), 'ok: destroyed unikernel');
  // force-create of a unikernel that is not running is a create
  assert.equal(await ask(v.sock, 'fc:c', forceCreate(config(['--sleep']))), 'ok: created unikernel');
  assert.equal(await ask(v.sock, 'fc:c', destroy), 'ok: destroyed unikernel');
});

test('policies: refusals name the limit, usage and request; policy add keeps the connection open', async () => {
  // policy add answers and keeps reading: a second command on the same connection
  const c = await connectUnix(v.sock);
  assert.ok(c.ok);
  await c.value.writeMessage(command(nm('org:'), policy({ unikernels: 1n, memory: 64 })));
  const first = await c.value.readMessage(5000);
  assert.ok(first.kind === 'message');
  assert.equal(describe(first.wire), 'ok: added policy');
  await c.value.writeMessage(command(nm('org:a'), create(config(['--sleep']))));
  const rest = await readAll(c.value);
  assert.deepEqual(rest.map(describe), ['ok: created unikernel']);

  assert.equal(await ask(v.sock, 'org:', policy({ unikernels: 1n, memory: 64 })), 'ok: no modification of policy');
  assert.equal(await ask(v.sock, 'org:b', create(config(['--sleep']))), 'fail: maximum amount of unikernels (1) reached');
  assert.equal(await ask(v.sock, 'org:', policy({ unikernels: 2n, memory: 64 })), 'ok: added policy');
  assert.equal(await ask(v.sock, 'org:b', create(config(['--sleep'], { memory: 40 }))), 'fail: maximum allowed memory (64, used 32) would be exceeded (requesting 40)');
  assert.match(await ask(v.sock, 'org:b', create(config(['--sleep'], { cpuids: [1] }))), /^fail: CPUids 1 are not allowed by policy/);
  assert.equal(await ask(v.sock, 'org:team:', policy({ unikernels: 5n, memory: 64 })), 'fail: policy above allows 2 unikernels, which is fewer than 5');
  assert.equal(await ask(v.sock, 'org:', policy({ unikernels: 2n, memory: 16 })), 'fail: unikernel would exceed running memory limit set by policy to 16 MB, used 32 MB');

  const pi = await request(v.sock, 'org:', { kind: 'policy', value: { kind: 'info', value: null } });
  assert.ok(pi[0].payload.kind === 'reply' && pi[0].payload.value.kind === 'policies');
  assert.deepEqual(pi[0].payload.value.value.map((p) => [p.name.path.join(':'), p.policy.unikernels]), [['', 2n]]);
  assert.equal(await ask(v.sock, 'org:', { kind: 'policy', value: { kind: 'remove', value: null } }), 'ok: removed policy');
  assert.equal(await ask(v.sock, 'org:', { kind: 'policy', value: { kind: 'remove', value: null } }), 'fail: unknown policy');
  assert.equal(await ask(v.sock, 'org:a', destroy), 'ok: destroyed unikernel');
});

async function upload(name: string, chunks: Uint8Array[], compressed: boolean): Promise<string> {
  const c = await connectUnix(v.sock);
  assert.ok(c.ok);
  await c.value.writeMessage(command(nm(name), { kind: 'block', value: { kind: 'set', value: compressed } }));
  try {
    for (const ch of chunks) await c.value.write(ch);
    await c.value.writeEnd();
  } catch {
    /* vmmd answered early and closed */
  }
  const ws = await readAll(c.value);
  return ws.map(describe).join(' | ');
}

async function dump(name: string, level: number): Promise<{ answers: Wire[]; content: Buffer }> {
  const ws = await request(v.sock, name, { kind: 'block', value: { kind: 'dump', value: level } });
  const parts: Buffer[] = [];
  for (const w of ws) if (w.payload.kind === 'data' && w.payload.value.kind === 'block' && w.payload.value.value.kind === 'chunk') parts.push(Buffer.from(w.payload.value.value.value));
  const all = Buffer.concat(parts);
  return { answers: ws, content: level === 0 ? all : inflateSync(all) };
}

test('block devices: add, streamed set (plain and zlib), dump, use by a unikernel, remove', async () => {
  const blk = (kind: 'add' | 'remove' | 'info', value: number | null = null): Command =>
    ({ kind: 'block', value: kind === 'add' ? { kind, value: value as number } : { kind, value: null } }) as Command;
  assert.equal(await ask(v.sock, 'st:data', blk('add', 4)), 'ok: added block device');
  assert.equal(await ask(v.sock, 'st:data', blk('add', 4)), 'fail: block device with same name already exists');
  assert.equal(await ask(v.sock, 'st:zero', blk('add', 0)), 'fail: overflow while computing bytes');
  assert.equal(fs.statSync(path.join(d.dbdir, 'block', 'st:data')).size, 4 * 1024 * 1024);

  const content = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < content.length; i++) content[i] = (i * 7 + (i >> 12)) & 0xff;
  content.write('hello block\0', 0);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < content.length; i += 4096) chunks.push(content.subarray(i, i + 4096));
  assert.equal(await upload('st:data', chunks, false), 'ok: set block device');
  const d0 = await dump('st:data', 0);
  assert.equal(describe(d0.answers[0]), 'reply block_device_image');
  assert.equal(d0.content.length, 4 * 1024 * 1024, 'the device keeps its size');
  assert.ok(d0.content.subarray(0, content.length).equals(content));
  assert.ok(d0.content.subarray(content.length).every((b) => b === 0));

  const z = deflateSync(content.subarray(0, 1024 * 1024));
  const zchunks = [z.subarray(0, 1000), z.subarray(1000)];
  assert.equal(await upload('st:data', zchunks, true), 'ok: set block device');
  const d6 = await dump('st:data', 6);
  assert.ok(d6.content.subarray(0, 1024 * 1024).equals(content.subarray(0, 1024 * 1024)));
  assert.ok(d6.content.subarray(1024 * 1024).every((b) => b === 0), 'content beyond the upload is gone');

  assert.equal(await upload('st:data', [Buffer.alloc(5 * 1024 * 1024)], false), 'fail: stream exceeds size');
  assert.equal(await upload('st:data', [Buffer.from('not zlib at all')], true), 'fail: error writing to file descriptor');
  assert.equal(await upload('st:none', [Buffer.alloc(10)], false), 'fail: set block: not found');

  assert.equal(await upload('st:data', [Buffer.from('written by set\0')], false), 'ok: set block device');
  const c = config(['--block-read', '--sleep'], { blocks: [{ blockName: 'storage', blockDeviceName: 'data' }] });
  assert.equal(await ask(v.sock, 'st:reader', create(c)), 'ok: created unikernel');
  await cp.waitFor('st:reader', (l) => l === 'block: written by set');
  assert.equal(await upload('st:data', [Buffer.alloc(10)], false), 'fail: set block: is in use');
  assert.equal(await ask(v.sock, 'st:data', blk('remove')), 'fail: remove block: is in use');
  assert.equal(await ask(v.sock, 'st:other', create(c)), 'fail: block device st:data already in use');
  const bi = await request(v.sock, 'st:', blk('info'));
  assert.ok(bi[0].payload.kind === 'reply' && bi[0].payload.value.kind === 'block_devices');
  assert.deepEqual(bi[0].payload.value.value.map((b) => [b.name.label, b.size, b.active]), [['data', 4, true]]);
  assert.equal(await ask(v.sock, 'st:reader', destroy), 'ok: destroyed unikernel');
  assert.equal(await ask(v.sock, 'st:data', blk('remove')), 'ok: removed block');
  assert.equal(await ask(v.sock, 'st:data', blk('remove')), 'fail: remove block: not found');
  assert.ok(!fs.existsSync(path.join(d.dbdir, 'block', 'st:data')));
});

test('concurrent creates under a policy: exactly the allowed number succeed, the rest name the limit', async () => {
  assert.equal(await ask(v.sock, 'many:', policy({ unikernels: 6n, memory: 1024 })), 'ok: added policy');
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => ask(v.sock, `many:u${i}`, create(config(['--sleep'])))));
  assert.equal(answers.filter((a) => a === 'ok: created unikernel').length, 6, answers.join('; '));
  assert.equal(answers.filter((a) => a === 'fail: maximum amount of unikernels (6) reached').length, 6, answers.join('; '));
  assert.equal((await infoOf('many:')).length, 6);
  const destroyed = await Promise.all((await infoOf('many:')).map((e) => ask(v.sock, `many${e.name}`, destroy)));
  assert.deepEqual(destroyed, Array(6).fill('ok: destroyed unikernel'));
  assert.deepEqual(await infoOf('many:'), []);
});

test('commands of other daemons and malformed requests are refused, vmmd keeps serving', async () => {
  assert.equal(await ask(v.sock, 'x', { kind: 'console', value: { kind: 'list_inactive', value: null } }), 'fail: unknown command');
  assert.equal(await ask(v.sock, 'x:', create(config([]))), 'fail: unikernel name x: has no label');
  assert.equal(await ask(v.sock, 'x', create(config([], { cpuids: [] }))), 'fail: CPUids may not be empty');
  assert.deepEqual(await infoOf('nothing:'), []);
});

test('a 64 MB block device streamed up and down (ALBATROSS_TEST_BIG=1)', { skip: process.env.ALBATROSS_TEST_BIG === '1' ? false : 'set ALBATROSS_TEST_BIG=1 to run' }, async () => {
  const size = 64;
  assert.equal(await ask(v.sock, 'big:disk', { kind: 'block', value: { kind: 'add', value: size } }), 'ok: added block device');
  const content = Buffer.alloc(size * 1024 * 1024);
  for (let i = 0; i < content.length; i += 4096) content.writeUInt32BE(i, i);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < content.length; i += 65536) chunks.push(content.subarray(i, i + 65536));
  assert.equal(await upload('big:disk', chunks, false), 'ok: set block device');
  const d0 = await dump('big:disk', 1);
  assert.ok(d0.content.equals(content));
  assert.equal(await ask(v.sock, 'big:disk', { kind: 'block', value: { kind: 'remove', value: null } }), 'ok: removed block');
});
