/**
 * Start-up of the companion daemons (vmmd_console, vmmd_stats, vmmd_log) as processes:
 * the runtime directory and the log file's directory must exist, as for vmmd (they are
 * not created); their sockets are 0660 like vmmd.sock whatever the umask; vmmd_log
 * --read-only refuses a missing file and one that is not a log.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { until } from './helpers/vmmd.js';

const CLI = path.join(__dirname, '..', 'src', 'cli');
const bin = (name: string): string => path.join(CLI, `${name}.js`);
const DAEMONS = [
  { name: 'vmmd_console', socket: 'console.sock' },
  { name: 'vmmd_stats', socket: 'stat.sock' },
  { name: 'vmmd_log', socket: 'log.sock' },
];

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'albatross-companions-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a missing --tmpdir is refused (exit 1, as vmmd) and not created', () => {
  const missing = path.join(dir, 'no', 'such', 'run');
  for (const d of DAEMONS) {
    const extra = d.name === 'vmmd_log' ? ['--logfile', path.join(dir, 'albatross.log')] : [];
    const r = spawnSync(process.execPath, [bin(d.name), '--tmpdir', missing, ...extra], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 1, `${d.name}: ${r.stderr}`);
    assert.equal(r.stderr, `${d.name}: error: --tmpdir ${missing} does not exist\n`);
    assert.equal(fs.existsSync(path.join(dir, 'no')), false, `${d.name} created the directory`);
  }
  // vmmd_log wrote no startup record before refusing
  assert.equal(fs.existsSync(path.join(dir, 'albatross.log')), false);
});

test("vmmd_log: a --logfile whose directory is missing is refused (exit 1) and the directory not created", () => {
  const logfile = path.join(dir, 'nolog', 'sub', 'albatross.log');
  const r = spawnSync(process.execPath, [bin('vmmd_log'), '--tmpdir', dir, '--logfile', logfile], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr, `vmmd_log: error: the log file's directory ${path.dirname(logfile)} does not exist\n`);
  assert.equal(fs.existsSync(path.join(dir, 'nolog')), false);
});

test('console.sock, stat.sock and log.sock are created 0660 under umask 022, like vmmd.sock', async () => {
  const run = fs.mkdtempSync(path.join(dir, 'run-'));
  for (const d of DAEMONS) {
    const extra = d.name === 'vmmd_log' ? ['--logfile', path.join(run, 'albatross.log')] : [];
    const child = spawn('/bin/sh', ['-c', 'umask 022; exec "$@"', 'sh', process.execPath, bin(d.name), '--tmpdir', run, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
    const sock = path.join(run, 'util', d.socket);
    try {
      // the daemon says so once the socket is ready
      await until(`${d.name} listening`, () => stderr.includes('listening on'));
      assert.equal((fs.statSync(sock).mode & 0o777).toString(8), '660', d.name);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  }
});

test('vmmd_log --read-only: a missing file and a file that is not a log are refused (exit 1); an empty log prints nothing', () => {
  const ro = (file: string) => spawnSync(process.execPath, [bin('vmmd_log'), '--read-only', '--logfile', file], { encoding: 'utf8', timeout: 10_000 });
  const missing = path.join(dir, 'missing.log');
  let r = ro(missing);
  assert.deepEqual([r.status, r.stdout, r.stderr], [1, '', `vmmd_log: no log file ${missing} (nor ${missing}.1)\n`]);
  const text = path.join(dir, 'notes.txt');
  fs.writeFileSync(text, 'this is not an albatross log\n'.repeat(20));
  r = ro(text);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, new RegExp(`^vmmd_log: ${text.replace(/[.]/g, '\\.')} is not a log file \\(no record in it decodes\\)\\n$`));
  r = ro(dir);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^vmmd_log: cannot read the log file .*EISDIR.*\n$/);
  const empty = path.join(dir, 'empty.log');
  fs.writeFileSync(empty, '');
  r = ro(empty);
  assert.deepEqual([r.status, r.stdout, r.stderr], [0, '', '']);
});
