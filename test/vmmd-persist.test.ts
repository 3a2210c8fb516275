/**
 * vmmd persistence: the state file across `kill -9` and restart (relaunch in startup order,
 * leftover tenders stopped so no unikernel runs twice), a damaged state file (the backup is
 * used), a damaged state file without backup (start-up refused), and SIGTERM shutdown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { decodeState } from '../src/core/wire/state.js';
import { nameToString } from '../src/core/name.js';
import {
  RealConsole, ask, config, create, info, livePids, makeRunDir, request, startVmmd, until, vmmdMain,
} from './helpers/vmmd.js';

const names = async (sock: string): Promise<string[]> => {
  const ws = await request(sock, ':', info);
  const p = ws[0].payload;
  assert.ok(p.kind === 'reply' && p.value.kind === 'unikernel_info');
  return p.value.value.map((e) => nameToString(e.name)).sort();
};

test('kill -9 of vmmd: tenders left running are stopped and the state file relaunches each unikernel once, by startup priority', async () => {
  const d = makeRunDir();
  const cp = new RealConsole(d.tmpdir);
  await cp.start();
  try {
    let v = await startVmmd(d);
    assert.equal(await ask(v.sock, 'p:late', create(config(['--sleep'], { startup: 70 }))), 'ok: created unikernel');
    assert.equal(await ask(v.sock, 'p:early', create(config(['--sleep'], { startup: 10 }))), 'ok: created unikernel');
    assert.equal(await ask(v.sock, 'p:middle', create(config(['--sleep']))), 'ok: created unikernel');
    assert.equal(await ask(v.sock, 'p:', { kind: 'policy', value: { kind: 'add', value: { cpuids: [0], unikernels: 5n, memory: 512, bridges: [] } } }), 'ok: added policy');
    await until('three tenders', () => livePids(d).length === 3);
    const old = livePids(d);
    await v.kill9();
    assert.deepEqual(livePids(d).sort(), old.sort(), 'the unikernels outlive a killed vmmd');

    v = await startVmmd(d);
    const launched = [...v.stderr().matchAll(/started (p:\w+) \(pid \d+, startup\)/g)].map((m) => m[1]);
    assert.deepEqual(launched, ['p:early', 'p:middle', 'p:late'], 'relaunched in startup order (absent = 50)');
    for (const pid of old) assert.ok(!livePids(d).includes(pid), `leftover tender ${pid} stopped`);
    await until('the relaunched tenders', () => livePids(d).length >= 3);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(livePids(d).length, 3, 'no duplicates');
    assert.deepEqual(await names(v.sock), ['p:early', 'p:late', 'p:middle']);
    assert.match(v.stderr(), /left running by a previous vmmd/);
    const pi = await request(v.sock, 'p:', { kind: 'policy', value: { kind: 'info', value: null } });
    assert.ok(pi[0].payload.kind === 'reply' && pi[0].payload.value.kind === 'policies');
    assert.equal(pi[0].payload.value.value[0].policy.unikernels, 5n, 'policy restored');
    assert.ok(fs.existsSync(path.join(d.dbdir, 'state.started')), 'state.started copied at start');

    // a second vmmd on the same directories refuses to start and leaves the unikernels alone
    const running = livePids(d).sort();
    const second = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const p = spawn(process.execPath, [vmmdMain, '--tmpdir', d.tmpdir, '--dbdir', d.dbdir], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (b: Buffer) => (err += b));
      p.on('exit', (code) => resolve({ code, err }));
    });
    assert.equal(second.code, 1);
    assert.match(second.err, /another vmmd is listening on /);
    assert.deepEqual(livePids(d).sort(), running);
    assert.deepEqual(await names(v.sock), ['p:early', 'p:late', 'p:middle']);

    // SIGTERM: every unikernel stopped, the state file keeps them for the next start
    assert.equal(await v.stop(), 0);
    assert.deepEqual(livePids(d), []);
    const st = decodeState(fs.readFileSync(path.join(d.dbdir, 'state')));
    assert.ok(st.ok);
    assert.deepEqual(st.value.dump.unikernels.map((u) => nameToString(u.name)), ['p:early', 'p:late', 'p:middle'], 'trie pre-order');

    // a damaged state file: the backup (the version before the last write) is used
    const bak = decodeState(fs.readFileSync(path.join(d.dbdir, 'state.bak')));
    assert.ok(bak.ok);
    fs.writeFileSync(path.join(d.dbdir, 'state'), Buffer.from('garbage, not DER'));
    v = await startVmmd(d);
    assert.match(v.stderr(), /couldn't parse state .*; using the backup .*state\.bak/);
    assert.deepEqual(await names(v.sock), bak.value.dump.unikernels.map((u) => nameToString(u.name)).sort());
    assert.equal(await v.stop(), 0);

    // damaged without a usable backup: start-up refused with the parse error
    fs.writeFileSync(path.join(d.dbdir, 'state'), Buffer.from('garbage'));
    fs.writeFileSync(path.join(d.dbdir, 'state.bak'), Buffer.from('garbage'));
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const p = spawn(process.execPath, [vmmdMain, '--tmpdir', d.tmpdir, '--dbdir', d.dbdir], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (b: Buffer) => (err += b));
      p.on('exit', (code) => resolve({ code, err }));
    });
    assert.equal(r.code, 1);
    assert.match(r.err, /^vmmd: couldn't parse state /m);
  } finally {
    await cp.stop();
    for (const pid of livePids(d)) process.kill(pid, 'SIGKILL');
    d.remove();
  }
});

test('vmmd refuses to start without the console daemon, and without its directories', async () => {
  const d = makeRunDir();
  try {
    const run = (args: string[]): Promise<{ code: number | null; err: string }> =>
      new Promise((resolve) => {
        const p = spawn(process.execPath, [vmmdMain, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        p.stderr.on('data', (b: Buffer) => (err += b));
        p.on('exit', (code) => resolve({ code, err }));
      });
    const a = await run(['--tmpdir', d.tmpdir, '--dbdir', d.dbdir]);
    assert.equal(a.code, 1);
    assert.match(a.err, /Failed to connect to .*console\.sock, is vmmd_console started\?/);
    const b = await run(['--tmpdir', path.join(d.root, 'nope'), '--dbdir', d.dbdir]);
    assert.equal(b.code, 1);
    assert.match(b.err, /--tmpdir .*nope does not exist/);
    const c = await run(['--bogus']);
    assert.equal(c.code, 124);
  } finally {
    d.remove();
  }
});

test('without a tender, create fails naming the tenders looked for', async () => {
  const d = makeRunDir({ tender: false });
  const cp = new RealConsole(d.tmpdir);
  await cp.start();
  const v = await startVmmd(d, [], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  try {
    const r = await ask(v.sock, 'hello', create(config([])));
    assert.equal(r, `fail: tender does not exist, looked for ${d.dbdir}/solo5-spt.2, solo5-spt.2, ${d.dbdir}/solo5-spt, solo5-spt`);
  } finally {
    await v.stop();
    await cp.stop();
    d.remove();
  }
});

test('the console daemon going away: creates fail with upstream\'s message until vmmd has reconnected', async () => {
  const d = makeRunDir();
  let cp = new RealConsole(d.tmpdir);
  await cp.start();
  const v = await startVmmd(d);
  try {
    assert.equal(await ask(v.sock, 'c:one', create(config(['--exit=0']))), 'ok: created unikernel');
    await cp.waitFor('c:one', (l) => l.startsWith('Solo5: solo5_exit'));
    await cp.stop();
    assert.equal(await ask(v.sock, 'c:two', create(config(['--sleep']))), 'fail: could not create unikernel: console failed');
    assert.ok(!fs.existsSync(path.join(d.tmpdir, 'c:two.img')), 'resources of the failed create are freed');
    cp = new RealConsole(d.tmpdir);
    await cp.start();
    await until('vmmd reconnected', async () => (await ask(v.sock, 'c:two', create(config(['--lines=1', '--sleep'])))) === 'ok: created unikernel');
    await cp.waitFor('c:two', (l) => l === 'line 1');
    assert.deepEqual(await names(v.sock), ['c:two']);
  } finally {
    await v.stop();
    await cp.stop();
    d.remove();
  }
});
