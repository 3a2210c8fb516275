/**
 * `npm start` (scripts/start.mjs) on a run directory of its own (`npm start -- --run DIR`):
 * killing npm, by SIGTERM or SIGKILL, stops the daemons it started. (--ignore-scripts skips
 * prestart, the build, which `npm test` has done.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot, until } from './helpers/vmmd.js';
import { cleanEnv } from './helpers/installed.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function killNpmDuringStart(signal: NodeJS.Signals): Promise<void> {
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'albatross-start-'));
  const npm = spawn('npm', ['start', '--ignore-scripts', '--', '--run', run], { cwd: repoRoot, env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  npm.stdout.on('data', (b: Buffer) => (out += b.toString()));
  npm.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const npmExited = new Promise<void>((r) => npm.once('exit', () => r()));
  let pids: number[] = [];
  try {
    await until('all daemons running', () => /all daemons are running/.test(out) && /stat\.sock \(pid \d+\)/.test(out), 60_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${out}`);
    });
    pids = [...out.matchAll(/\.sock \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    assert.equal(pids.length, 4, out);
    assert.ok(pids.every(alive));
    assert.ok(fs.existsSync(path.join(run, 'tmp', 'util', 'vmmd.sock')), 'the daemons run on the directory given');
    process.kill(npm.pid!, signal);
    await npmExited;
    await until('the daemons to stop', () => !pids.some(alive), 30_000).catch(() => undefined);
    assert.deepEqual(pids.filter(alive), [], `daemons still running after npm got ${signal}: ${out}`);
  } finally {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
    npm.stdin.destroy();
    fs.rmSync(run, { recursive: true, force: true });
  }
}

test('kill <pid of npm> (SIGTERM) during npm start stops the daemons', async () => {
  await killNpmDuringStart('SIGTERM');
});

test('kill -9 <pid of npm> during npm start stops the daemons', async () => {
  await killNpmDuringStart('SIGKILL');
});
