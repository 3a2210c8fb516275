/**
 * What an operator sees of vmmd beside the answers: the audit events it sends to vmmd_log
 * for every change it makes, block sets that replace a device only when their stream is
 * complete, and the state of every unikernel (running, or waiting out its restart back-off)
 * in vmmc_local info. The real vmmd, vmmd_console, vmmd_log and vmmc_local with the fake tender.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connectUnix } from '../src/transport/conn.js';
import { command } from '../src/core/wire/wire.js';
import type { Command } from '../src/core/wire/wire.js';
import {
  type RunDir, type VmmdProcess, RealConsole, ask, config, create, destroy, info, livePids, makeRunDir, nm, readAll, request,
  startVmmd, until,
} from './helpers/vmmd.js';
import { CLI_DIR, type Daemon, startDaemon } from './console-helpers.js';

const MB = 1024 * 1024;
let d: RunDir;
let cp: RealConsole;
let log: Daemon;
let v: VmmdProcess;
let logfile: string;

before(async () => {
  d = makeRunDir();
  cp = new RealConsole(d.tmpdir);
  await cp.start();
  logfile = path.join(d.root, 'events.log');
  log = await startDaemon('vmmd_log', ['--tmpdir', d.tmpdir, '--logfile', logfile], path.join(d.tmpdir, 'util', 'log.sock'));
  // the second quick failure in a row waits 60 s: long enough to see a unikernel restarting
  v = await startVmmd(d, ['--restart-backoff', '60000']);
});

after(async () => {
  const code = await v.stop();
  await cp.stop();
  await log.stop();
  assert.equal(code, 0, v.stderr());
  assert.deepEqual(livePids(d), [], 'every tender stopped at shutdown');
  d.remove();
});

/** The event log as `vmmd_log --read-only` prints it, without sequence numbers and times. */
const readLog = (): string[] =>
  execFileSync(process.execPath, [path.join(CLI_DIR, 'vmmd_log.js'), '--read-only', '--logfile', logfile]).toString()
    .trim().split('\n').map((l) => l.replace(/^\d+ \S+ /, ''));

/** Waits until the log holds `line` (vmmd sends without waiting; vmmd_log writes in order). */
async function logged(re: RegExp): Promise<string[]> {
  let lines: string[] = [];
  await until(`a log line matching ${re}`, () => (lines = readLog()).some((l) => re.test(l)), 15_000);
  return lines;
}

/** The lines about `name`, in order. */
const about = (lines: string[], name: string): string[] => lines.filter((l) => l.split(' ').includes(name));

const blk = (kind: 'add' | 'remove', value: number | null = null): Command =>
  ({ kind: 'block', value: kind === 'add' ? { kind, value: value as number } : { kind, value: null } }) as Command;

async function upload(name: string, chunks: Uint8Array[], o: { end?: 'marker' | 'torn' } = {}): Promise<string> {
  const c = await connectUnix(v.sock);
  assert.ok(c.ok);
  await c.value.writeMessage(command(nm(name), { kind: 'block', value: { kind: 'set', value: false } }));
  try {
    for (const ch of chunks) await c.value.write(ch);
    // torn: a frame announced as 1000 octets of which 10 arrive, then the connection ends
    if (o.end === 'torn') await c.value.writeBytes(Buffer.concat([Buffer.from([0, 0, 3, 232]), Buffer.alloc(10, 7)]));
    else await c.value.writeEnd();
    c.value.stream.end();
  } catch {
    /* vmmd answered early and closed */
  }
  const ws = await readAll(c.value);
  return ws.map((w) => (w.payload.kind === 'failure' ? `fail: ${w.payload.value}` : w.payload.kind === 'reply' && w.payload.value.kind === 'string' ? `ok: ${w.payload.value.value}` : w.payload.kind)).join(' | ');
}

const device = (name: string): string => path.join(d.dbdir, 'block', name);
const leftovers = (): string[] => fs.readdirSync(path.join(d.dbdir, 'block')).filter((f) => f.includes('~'));

test('every change vmmd makes leaves its event in the log: policy, block add/set/remove, create, destroy, restart on failure', async () => {
  assert.equal(await ask(v.sock, 'audit:', { kind: 'policy', value: { kind: 'add', value: { cpuids: [0], unikernels: 3n, memory: 256, block: 10, bridges: [] } } }), 'ok: added policy');
  assert.equal(await ask(v.sock, 'audit:', { kind: 'policy', value: { kind: 'add', value: { cpuids: [0], unikernels: 3n, memory: 256, block: 10, bridges: [] } } }), 'ok: no modification of policy');
  assert.equal(await ask(v.sock, 'audit:data', blk('add', 2)), 'ok: added block device');
  assert.equal(await upload('audit:data', [Buffer.from('content')]), 'ok: set block device');
  assert.equal(await ask(v.sock, 'audit:data', blk('remove')), 'ok: removed block');
  assert.equal(await ask(v.sock, 'audit:web', create(config(['--sleep']))), 'ok: created unikernel');
  assert.equal(await ask(v.sock, 'audit:web', destroy), 'ok: destroyed unikernel');
  assert.equal(await ask(v.sock, 'audit:', { kind: 'policy', value: { kind: 'remove', value: null } }), 'ok: removed policy');
  const lines = await logged(/^audit: policy remove$/);
  assert.deepEqual(about(lines, 'audit:'), ['audit: policy add', 'audit: policy remove'], 'an unchanged policy is no change');
  assert.deepEqual(about(lines, 'audit:data'), [
    'audit:data block add 2 MB',
    // a block set replaces the device: the log has no kind of its own for it
    'audit:data block remove', 'audit:data block add 2 MB',
    'audit:data block remove',
  ]);
  const web = about(lines, 'audit:web');
  assert.equal(web.length, 4, web.join('\n'));
  assert.equal(web[0], 'audit:web create');
  assert.match(web[1], /^audit:web started pid \d+$/);
  assert.match(web[2], /^audit:web stopped pid \d+ signal -11$/);
  assert.equal(web[3], 'audit:web destroy');

  // vmmd's own start after a failure: exec with the tender's command line, not create
  const crash = config(['--exit=3'], { failBehaviour: { kind: 'restart', value: [3] } });
  assert.equal(await ask(v.sock, 'audit:crash', create(crash)), 'ok: created unikernel');
  const after = about(await logged(/^audit:crash exec pid \d+ argv /), 'audit:crash');
  assert.equal(after[0], 'audit:crash create');
  assert.match(after[1], /^audit:crash started pid \d+$/);
  assert.match(after[2], /^audit:crash stopped pid \d+ exit code 3$/);
  assert.match(after[3], /^audit:crash exec pid \d+ argv \[".*solo5-(spt|hvt)"/);
  assert.equal(await ask(v.sock, 'audit:crash', destroy).then((r) => r.startsWith('ok: destroyed')), true);
  assert.equal(about(await logged(/^audit:crash destroy$/), 'audit:crash').at(-1), 'audit:crash destroy');
});

test('a block set that exceeds the device or is cut off leaves the device as it was, and no temporary file', async () => {
  assert.equal(await ask(v.sock, 'keep:data', blk('add', 1)), 'ok: added block device');
  const before = Buffer.alloc(MB, 0);
  before.write('the old content');
  assert.equal(await upload('keep:data', [before.subarray(0, 4096)]), 'ok: set block device');
  assert.ok(fs.readFileSync(device('keep:data')).equals(before));

  // more than the device holds, in pieces: the first ones fit, then the stream is refused
  const piece = Buffer.alloc(512 * 1024, 0x41);
  assert.equal(await upload('keep:data', [piece, piece, piece]), 'fail: stream exceeds size');
  assert.ok(fs.readFileSync(device('keep:data')).equals(before), 'the device keeps its content');
  assert.deepEqual(leftovers(), []);

  // a stream that ends in the middle of a frame
  // the connection is broken: vmmd's answer may not get through
  assert.match(await upload('keep:data', [piece], { end: 'torn' }), /^(fail: error while reading stream)?$/);
  assert.ok(fs.readFileSync(device('keep:data')).equals(before), 'the device keeps its content');
  assert.deepEqual(leftovers(), []);
  assert.equal(fs.statSync(device('keep:data')).size, MB);
});

test('vmmc_local set-block refuses a file larger than the device before sending anything', async () => {
  assert.equal(await ask(v.sock, 'cli:data', blk('add', 1)), 'ok: added block device');
  const before = fs.readFileSync(device('cli:data'));
  const big = path.join(d.root, 'big.img');
  fs.writeFileSync(big, Buffer.alloc(MB + 1, 1));
  const r = await vmmc(['set-block', 'cli:data', big]);
  assert.equal(r.code, 123, r.stderr);
  assert.equal(r.stderr, `vmmc_local: ${big} is ${MB + 1} bytes, larger than the block device cli:data of 1 MB (${MB} bytes); nothing was sent\n`);
  assert.ok(fs.readFileSync(device('cli:data')).equals(before));
  const r2 = await vmmc(['create-block', 'cli:new', '1', '--data', big]);
  assert.equal(r2.code, 123, r2.stderr);
  assert.match(r2.stderr, /larger than the block device cli:new of 1 MB/);
  assert.ok(!fs.existsSync(device('cli:new')), 'create-block --data checks before the block add');
});

test('vmmd removes the temporary file of a block set cut short by a crash at its start', async () => {
  const stale = path.join(d.dbdir, 'block', 'gone:data~set');
  fs.writeFileSync(stale, 'half an upload');
  await v.stop();
  v = await startVmmd(d, ['--restart-backoff', '60000']);
  assert.ok(!fs.existsSync(stale));
  assert.match(v.stderr(), /removing \S+gone:data~set: an unfinished block set/);
});

interface Out { code: number; stdout: string; stderr: string }
function vmmc(args: string[]): Promise<Out> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(CLI_DIR, 'vmmc_local.js'), ...args, '--tmpdir', d.tmpdir], { env: { ...process.env, NO_COLOR: '1' }, timeout: 30_000 }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
    });
  });
}

test('vmmc_local info shows running unikernels with pid and uptime, and those waiting to restart; upstream\'s info reply is unchanged', async () => {
  assert.equal(await ask(v.sock, 'st:up', create(config(['--sleep']))), 'ok: created unikernel');
  const crash = config(['--exit=3'], { failBehaviour: { kind: 'restart', value: [3] } });
  assert.equal(await ask(v.sock, 'st:down', create(crash)), 'ok: created unikernel');
  let table = '';
  await until('st:down restarting', async () => /restarting/.test(table = (await vmmc(['info', '-n', 'st:'])).stdout), 15_000);
  const lines = table.trim().split('\n');
  assert.match(lines[0], /^NAME +TYPE +CPUIDS +MEM\(MB\) +STARTED +ON EXIT +STATE +DEVICES \/ ARGS$/);
  assert.equal(lines.length, 3, table);
  assert.match(lines[1], /^:down +- +- +- +- +restart +restarting after 2 failures, next start \d{4}-\d\d-\d\dT\S+Z \(in \S+\) +-$/);
  assert.match(lines[2], /^:up +solo5 +0 +32 +\S+ +quit +running pid \d+, up \d+s +args /);

  const j = await vmmc(['info', '-n', 'st:', '--json']);
  assert.equal(j.code, 0, j.stderr);
  const docs = j.stdout.trim().split('\n');
  assert.equal(docs.length, 1, 'info --json is one document');
  const st = (JSON.parse(docs[0]) as { unikernels: Array<Record<string, unknown>> }).unikernels;
  assert.equal(st.length, 2);
  assert.deepEqual({ ...st[0], next_start: typeof st[0].next_start }, { name: ':down', state: 'restarting', failures: 2, next_start: 'string' });
  assert.deepEqual([st[1].name, st[1].state, typeof st[1].pid, typeof st[1].since, st[1].failures, st[1].type], [':up', 'running', 'number', 'string', 0, 'solo5']);

  // the wire's info reply (what upstream's client gets) still has the running one only
  const ws = await request(v.sock, 'st:', info);
  assert.ok(ws[0].payload.kind === 'reply' && ws[0].payload.value.kind === 'unikernel_info');
  assert.deepEqual(ws[0].payload.value.value.map((e) => e.name.label), ['up']);

  // one name
  const one = await vmmc(['info', '-n', 'st:down']);
  assert.match(one.stdout, /\nst:down +- .* restarting after 2 failures/);
  assert.ok((await ask(v.sock, 'st:down', destroy)).startsWith('ok: destroyed'));
  assert.equal(await ask(v.sock, 'st:up', destroy), 'ok: destroyed unikernel');
  assert.equal((await vmmc(['info', '-n', 'st:'])).stdout, 'no unikernels\n');
});

test('the status query is a message of its own: version-5 Wire refuses it, and it refuses Wire', async () => {
  const { decodeStatusWire, encodeStatusWire } = await import('../src/core/wire/status.js');
  const { decodeWire, encodeWire, makeHeader } = await import('../src/core/wire/wire.js');
  const q = encodeStatusWire({ header: makeHeader(nm('a:')), payload: { kind: 'command', value: { kind: 'status', value: null } } });
  assert.equal(decodeWire(q).ok, false, 'upstream cannot take it for a command');
  const back = decodeStatusWire(q);
  assert.ok(back.ok && back.value.payload.kind === 'command');
  const a = { header: makeHeader(nm('a:')), payload: { kind: 'reply' as const, value: [
    { name: nm('web'), state: { kind: 'running' as const, value: { pid: 42, started: 1_700_000_000_123, failures: 0 } } },
    { name: nm('db'), state: { kind: 'restarting' as const, value: { failures: 3, due: 1_700_000_060_000 } } },
  ] } };
  const r = decodeStatusWire(encodeStatusWire(a));
  assert.ok(r.ok);
  assert.deepEqual(r.value.payload, a.payload);
  const info = decodeStatusWire(encodeWire(command(nm('a:'), { kind: 'unikernel', value: { kind: 'info', value: null } })));
  assert.ok(!info.ok);
  assert.match(info.error, /payload \[0\] is a version 5 command, not a status message/);
});

test('a tender killed by a signal is logged with the signal\'s wire number, taken from its name (SIGBUS -22, SIGSYS -24, SIGTERM -11)', async () => {
  for (const [label, sig] of [['sigbus', 'BUS'], ['sigsys', 'SYS']] as const) {
    assert.equal(await ask(v.sock, `audit:${label}`, create(config([`--signal=${sig}`]))), 'ok: created unikernel');
  }
  const lines = await logged(/^audit:sigsys stopped pid \d+ signal /);
  await logged(/^audit:sigbus stopped pid \d+ signal /);
  const stop = (label: string): string | undefined => readLog().find((l) => l.startsWith(`audit:${label} stopped`));
  assert.match(stop('sigbus') ?? '', /^audit:sigbus stopped pid \d+ signal -22$/, lines.join('\n'));
  assert.match(stop('sigsys') ?? '', /^audit:sigsys stopped pid \d+ signal -24$/);
});
