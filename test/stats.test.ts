import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { unwrap } from '../src/core/result.js';
import { parseName, nameToString, root } from '../src/core/name.js';
import { command, replyEmpty, type Wire } from '../src/core/wire/wire.js';
import type { StatsData } from '../src/core/wire/stats.js';
import { FramedConn } from '../src/transport/conn.js';
import { ifDataOf, parseProcStat, parseStatm, parseStatus, statsDataOf, IF_COUNTERS, type IfCounters } from '../src/stats/linux.js';
import { gather } from '../src/stats/daemon.js';
import { ask, connect, next, payloadText, startDaemon, tempDir, waitFor } from './console-helpers.js';

const nm = (s: string) => unwrap(parseName(s));

const STAT = '4242 (solo5 (hvt) x) S 1 4242 4242 0 -1 4194560 1234 0 7 0 250 31 0 0 20 0 1 0 555 123456789 3210 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0';
const STATM = '30141 3210 700 52 0 2400 0\n';
const STATUS = 'Name:\tsolo5-hvt\nvoluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t7\n';

test('Linux parsers: /proc/PID/stat (comm with spaces and parentheses), statm, status; StatsData built from them', () => {
  const s = unwrap(parseProcStat(STAT));
  assert.deepEqual(s, { minflt: 1234n, majflt: 7n, utime: 250n, stime: 31n, vsize: 123456789n, rss: 3210n, nswap: 0n });
  assert.deepEqual(unwrap(parseStatm(STATM)), { text: 52n, data: 2400n });
  assert.deepEqual(unwrap(parseStatus(STATUS)), { nvcsw: 150n, nivcsw: 7n });
  assert.ok(!parseProcStat('garbage').ok);
  assert.ok(!parseProcStat('1 (x) S 1 2').ok);
  assert.ok(!parseStatus('Name: x').ok);
  const c = Object.fromEntries([...IF_COUNTERS.map((k, i) => [k, `${i + 1}\n`]), ['mtu', '1500\n'], ['flags', '0x1103\n']]) as IfCounters;
  const i = unwrap(ifDataOf('service', c));
  assert.equal(i.mtu, 1500);
  assert.equal(i.flags, 0x1103);
  assert.equal(i.inputPackets, 1n);
  assert.equal(i.outputBytes, 8n);
  const d = unwrap(statsDataOf({ stat: STAT, statm: STATM, status: STATUS, startMs: 1_700_000_000_500 }, [i], 100));
  assert.deepEqual(d.resourceUsage.utime, { seconds: 2n, microseconds: 500000 });
  assert.deepEqual(d.resourceUsage.stime, { seconds: 0n, microseconds: 310000 });
  assert.equal(d.kinfoMem?.runtime, 2_810_000n);
  assert.deepEqual(d.kinfoMem?.start, { seconds: 1_700_000_000n, microseconds: 500000 });
  assert.equal(d.resourceUsage.nvcsw, 150n);
});

test('gather: a vanished process is an error value; polling many times leaks no file descriptor', () => {
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const me = { name: nm(':me'), pid: process.pid, vmmdev: '', network: [{ bridge: 'service', tap: 'lo' }] };
  unwrap(gather(me, '/proc', '/sys', 100));
  const before = fds();
  for (let i = 0; i < 500; i++) unwrap(gather(me, '/proc', '/sys', 100));
  assert.equal(fds(), before);
  const gone = gather({ ...me, pid: 2 ** 22 + 12345 }, '/proc', '/sys', 100);
  assert.ok(!gone.ok && /gone/.test(gone.error));
  const noTap = gather({ ...me, network: [{ bridge: 'service', tap: 'nosuchtap0' }] }, '/proc', '/sys', 100);
  assert.ok(!noTap.ok && /interface nosuchtap0: gone/.test(noTap.error));
  for (let i = 0; i < 100; i++) gather({ ...me, network: [{ bridge: 'service', tap: 'nosuchtap0' }] }, '/proc', '/sys', 100);
  assert.equal(fds(), before);
});

/** A stand-in for vmmd's socket: answers stats initial, then lets the test send add/remove. */
async function fakeVmmd(path: string): Promise<{ server: net.Server; conns: FramedConn[]; initials: number }> {
  const st = { server: net.createServer(), conns: [] as FramedConn[], initials: 0 };
  st.server.on('connection', (s) => {
    const c = new FramedConn(s);
    void (async () => {
      const m = await c.readMessage();
      if (m.kind !== 'message') return;
      const p = m.wire.payload;
      assert.ok(p.kind === 'command' && p.value.kind === 'stats' && p.value.value.kind === 'initial');
      assert.equal(m.wire.header.sequence, 0n);
      st.initials++;
      await c.writeMessage(replyEmpty(m.wire.header));
      st.conns.push(c);
    })();
  });
  await new Promise<void>((r) => st.server.listen(path, r));
  return st;
}

const add = (name: string, pid: number, taps: { bridge: string; tap: string }[], seq = 1n): Wire =>
  command(nm(name), { kind: 'stats', value: { kind: 'add', value: { vmmdev: '', pid, network: taps } } }, seq);
const subscribe = (name: string): Wire => command(nm(name), { kind: 'stats', value: { kind: 'subscribe', value: null } });

function stats(w: Wire): StatsData {
  assert.equal(w.payload.kind, 'data');
  const d = w.payload.value as { kind: string; value: StatsData };
  assert.equal(d.kind, 'statistics');
  return d.value;
}

test('vmmd_stats: stats initial to vmmd, add over the inverted connection, data to subscribers with the path part removed, vanished pid forgotten, reconnect', async () => {
  const dir = tempDir('alb-stats-');
  fs.mkdirSync(join(dir, 'util'));
  const vmmd = await fakeVmmd(join(dir, 'util', 'vmmd.sock'));
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  const d = await startDaemon('vmmd_stats', ['--tmpdir', dir, '--interval-ms', '100'], join(dir, 'util', 'stat.sock'));
  try {
    await waitFor('stats initial', () => vmmd.conns.length === 1);
    const v = vmmd.conns[0];
    const a = await ask(v, add('dept:net', sleeper.pid as number, [{ bridge: 'service0', tap: 'lo' }], 1n));
    assert.equal(payloadText(a), 'string added');
    assert.equal(a.header.sequence, 1n);
    const sock = join(dir, 'util', 'stat.sock');
    const names: Record<string, string> = {};
    const subs: FramedConn[] = [];
    for (const s of [':', 'dept:', 'dept:net', ':dept', 'other:']) {
      const c = await connect(sock);
      assert.equal(payloadText(await ask(c, subscribe(s))), 'string subscribed');
      subs.push(c);
      if (s === 'other:') continue;
      const w = await next(c);
      const st = stats(w);
      assert.equal(st.ifdata[0].bridge, 'service0');
      assert.ok(st.kinfoMem !== undefined && st.kinfoMem.vsize > 0n);
      names[s] = nameToString(w.header.name);
    }
    assert.deepEqual(names, { ':': 'dept:net', 'dept:': ':net', 'dept:net': ':net', ':dept': 'dept:net' });
    const other = await subs[4].readMessage(300);
    assert.equal(other.kind, 'error', 'nothing for a subscription elsewhere (read timed out)');
    // two subscribers of the same name both get data
    const again = await connect(sock);
    assert.equal(payloadText(await ask(again, subscribe('dept:'))), 'string subscribed');
    stats(await next(again));
    stats(await next(subs[1]));
    // the process vanishes: reported and forgotten, the daemon keeps serving
    sleeper.kill('SIGKILL');
    await waitFor('forgotten', () => /dept:net: process \d+: gone; forgetting it/.test(d.stderr()));
    // clients: initial refused, add/remove answered
    const c = await connect(sock);
    assert.equal(payloadText(await ask(c, command(root, { kind: 'stats', value: { kind: 'initial', value: null } }))), 'failure unexpected message initial');
    c.close();
    const c2 = await connect(sock);
    // a tap that does not exist is skipped at add (as upstream's if_nametoindex), the rest is sampled
    assert.equal(payloadText(await ask(c2, add(':mine', process.pid, [{ bridge: 'service0', tap: 'nosuchtap0' }, { bridge: 'service1', tap: 'lo' }]))), 'string added');
    const mine = await connect(sock);
    assert.equal(payloadText(await ask(mine, subscribe(':mine'))), 'string subscribed');
    assert.deepEqual(stats(await next(mine)).ifdata.map((i) => i.bridge), ['service1']);
    mine.close();
    assert.equal(payloadText(await ask(c2, command(nm(':mine'), { kind: 'stats', value: { kind: 'remove', value: null } }))), 'string removed');
    c2.close();
    // vmmd goes away: the daemon reconnects and sends stats initial again
    v.close();
    await waitFor('reconnect', () => vmmd.initials === 2, 5000);
    assert.match(d.stderr(), /connection to vmmd ended/);
    for (const s of [...subs, again]) s.close();
    assert.equal(d.proc.exitCode, null, 'still running');
  } finally {
    sleeper.kill('SIGKILL');
    await d.stop();
    for (const c of vmmd.conns) c.close();
    vmmd.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('vmmd_stats: a subscription to the path dept: does not get the statistics of the unikernel :dept (same trie key, root path)', async () => {
  const dir = tempDir('alb-stats-');
  fs.mkdirSync(join(dir, 'util'));
  const vmmd = await fakeVmmd(join(dir, 'util', 'vmmd.sock'));
  const d = await startDaemon('vmmd_stats', ['--tmpdir', dir, '--interval-ms', '100'], join(dir, 'util', 'stat.sock'));
  try {
    await waitFor('stats initial', () => vmmd.conns.length === 1);
    const v = vmmd.conns[0];
    // every round samples the unikernels in this order: :dept before dept:net
    assert.equal(payloadText(await ask(v, add(':dept', process.pid, [], 1n))), 'string added');
    assert.equal(payloadText(await ask(v, add('dept:net', process.pid, [], 2n))), 'string added');
    const sock = join(dir, 'util', 'stat.sock');
    const received = async (sub: string, n: number): Promise<string[]> => {
      const c = await connect(sock);
      assert.equal(payloadText(await ask(c, subscribe(sub))), 'string subscribed');
      const names: string[] = [];
      for (let i = 0; i < n; i++) names.push(nameToString((await next(c)).header.name));
      c.close();
      return names;
    };
    // the root sees both (full names); over three messages a leak would show :dept (as `:`)
    assert.deepEqual(new Set(await received(':', 4)), new Set([':dept', 'dept:net']));
    assert.deepEqual(await received('dept:', 3), [':net', ':net', ':net']);
    // a subscription to the name :dept gets :dept and, as upstream, what is below its trie key
    assert.deepEqual(new Set(await received(':dept', 4)), new Set([':dept', 'dept:net']));
    assert.deepEqual(await received('dept:net', 2), [':net', ':net']);
  } finally {
    await d.stop();
    for (const c of vmmd.conns) c.close();
    vmmd.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
