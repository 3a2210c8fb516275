/**
 * The clients' operator features against the real daemons (vmmd, vmmd_console, vmmd_log,
 * vmmd_stats with the fake tender): the documented --json documents, --no-follow of
 * console, stats and log, and a name that has nothing to follow.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type RunDir, type VmmdProcess, makeRunDir, startVmmd, until } from './helpers/vmmd.js';
import { solo5Image } from './helpers/image.js';

const cli = (b: string): string => path.join(__dirname, '..', 'src', 'cli', `${b}.js`);

interface Out { code: number; stdout: string; stderr: string }
function run(b: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Out> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli(b), ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, timeout: 30_000 }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
    });
  });
}

let d: RunDir;
let vmmd: VmmdProcess;
const daemons: ChildProcess[] = [];
let L: (args: string[]) => Promise<Out>;
const docs = (s: string): Record<string, unknown>[] => s.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

before(async () => {
  d = makeRunDir();
  const util = path.join(d.tmpdir, 'util');
  daemons.push(spawn(process.execPath, [cli('vmmd_console'), '--tmpdir', d.tmpdir], { stdio: 'ignore' }));
  await until('console.sock', () => fs.existsSync(path.join(util, 'console.sock')));
  daemons.push(spawn(process.execPath, [cli('vmmd_log'), '--tmpdir', d.tmpdir, '--logfile', path.join(d.root, 'albatross.log')], { stdio: 'ignore' }));
  await until('log.sock', () => fs.existsSync(path.join(util, 'log.sock')));
  daemons.push(spawn(process.execPath, [cli('vmmd_stats'), '--tmpdir', d.tmpdir, '--interval', '1'], { stdio: 'ignore' }));
  await until('stat.sock', () => fs.existsSync(path.join(util, 'stat.sock')));
  vmmd = await startVmmd(d);
  L = (args) => run('vmmc_local', [...args, '--tmpdir', d.tmpdir], { TMPDIR: d.root });
  fs.writeFileSync(path.join(d.root, 'hello.spt'), solo5Image({}));
  const r = await L(['create', 'hello', path.join(d.root, 'hello.spt'), '--arg=--solo5:quiet', '--arg=--lines=3', '--arg=--sleep']);
  assert.equal(r.code, 0, r.stderr);
  await until('the console lines', async () => (await L(['console', 'hello', '--no-follow'])).stdout.includes('line 3'));
});

after(async () => {
  await L(['destroy', 'hello']);
  await vmmd?.stop();
  for (const c of daemons) c.kill();
  d?.remove();
});

test('--json: policy, block, inactive-consoles, success and failure are one documented document each, numbers as numbers', async () => {
  let r = await L(['add-policy', 'dept', '3', '--mem', '256', '--cpu', '1', '--bridge', 'br0', '--size', '100', '--json']);
  assert.deepEqual([r.code, docs(r.stdout)], [0, [{ result: 'success', message: 'added policy' }]]);
  r = await L(['policy', '-p', 'dept', '--json']);
  assert.deepEqual(docs(r.stdout), [{ policies: [{ path: ':', unikernels: 3, cpuids: [1], memory_mb: 256, block_mb: 100, bridges: ['br0'] }] }]);
  r = await L(['create-block', 'disk', '2', '--json']);
  assert.equal(r.code, 0, r.stderr);
  r = await L(['block', '--json']);
  assert.deepEqual(docs(r.stdout), [{ block_devices: [{ name: ':disk', size_mb: 2, in_use: false }] }]);
  r = await L(['destroy', 'nosuch', '--json']);
  assert.equal(r.code, 117, 'a failure exits 117 as without --json');
  assert.deepEqual(docs(r.stdout), [{ result: 'failure', message: 'destroy: not found' }]);
  r = await L(['inactive-consoles', '--json']);
  assert.deepEqual(docs(r.stdout), [{ inactive_consoles: [] }]);
  r = await L(['policy', '--json=wire', '-p', 'dept']);
  assert.deepEqual(Object.keys(docs(r.stdout)[0]), ['header', 'payload'], '--json=wire is the wire form');
  r = await L(['policy', '--json=yaml']);
  assert.equal(r.code, 124);
  assert.match(r.stderr, /--json: expected --json or --json=wire, got "yaml"/);
});

test('--json console, log and stats: one document per line, the subscription reply not printed, ISO times', async () => {
  let r = await L(['console', 'hello', '--no-follow', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const lines = docs(r.stdout);
  assert.deepEqual(lines.map((x) => x.line), ['args: --name=hello --solo5:quiet --lines=3 --sleep', 'line 1', 'line 2', 'line 3']);
  for (const l of lines) {
    assert.equal(l.name, ':hello');
    assert.match(String(l.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  }
  r = await L(['log', '-n', 'hello', '--no-follow', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const events = docs(r.stdout);
  assert.deepEqual(events.map((e) => e.event), ['create', 'start']);
  assert.equal(events[1].name, ':hello');
  assert.equal(typeof events[1].pid, 'number');
  r = await L(['stats', '-n', 'hello', '--no-follow', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const st = docs(r.stdout);
  assert.equal(st.length, 1, 'one round: the one unikernel once');
  assert.equal(st[0].name, ':hello');
  assert.equal(typeof st[0].utime_s, 'number');
  assert.equal(typeof st[0].maxrss_pages, 'number');
  assert.ok(Array.isArray(st[0].interfaces));
});

test('--no-follow prints what is there and exits; a name with nothing says so instead of waiting for ever', async () => {
  let r = await L(['console', 'hello', '--no-follow']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^subscribed\n:hello \S+ args: [^\n]*\n:hello \S+ line 1\n:hello \S+ line 2\n:hello \S+ line 3\n$/);
  r = await L(['console', 'nosuch', '--no-follow']);
  assert.deepEqual([r.code, r.stderr], [1, 'vmmc_local: no console for :nosuch\n']);
  r = await L(['stats', '-n', 'nosuch', '--no-follow']);
  assert.deepEqual([r.code, r.stderr], [1, 'vmmc_local: no unikernel :nosuch is running\n']);
  r = await L(['log', '-n', 'nosuch', '--no-follow']);
  assert.deepEqual([r.code, r.stderr], [1, 'vmmc_local: no log entries for :nosuch\n']);
  r = await L(['log', '--no-follow', '--count', '2']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 2);
  r = await L(['info', '--no-follow']);
  assert.deepEqual([r.code, r.stderr], [124, 'vmmc_local: --no-follow does not apply to info (see vmmc_local --help)\n']);

  // without --no-follow: a note on stderr, and it keeps waiting (killed here)
  const c = spawn(process.execPath, [cli('vmmc_local'), 'console', 'nosuch', '--tmpdir', d.tmpdir], { env: { ...process.env, NO_COLOR: '1' } });
  let err = '';
  c.stderr.on('data', (b: Buffer) => (err += b.toString()));
  await until('the note', () => err.includes('\n'));
  assert.equal(err, 'vmmc_local: note: no console for :nosuch yet; waiting for the unikernel to start (--no-follow exits instead)\n');
  assert.equal(c.exitCode, null, 'still waiting');
  c.kill();
});
