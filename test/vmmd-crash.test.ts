/**
 * vmmd killed (SIGKILL) at named points of a create, a destroy, a restart-on-failure relaunch
 * and its own start-up, then started again: every unikernel it lists has exactly one tender,
 * and no tender runs that it does not list (no orphan, no duplicate). The points are reached
 * by the test hook VMMD_TEST_CRASH_AT (vmmd kills itself there), not by timing. Tenders are
 * found here from /proc (every process whose command line runs an image of the run
 * directory), independently of vmmd's records and of the fake tender's pid files.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { nameToString } from '../src/core/name.js';
import {
  type RunDir, type VmmdProcess, RealConsole, ask, config, create, destroy, info, makeRunDir, request, startVmmd, vmmdMain,
} from './helpers/vmmd.js';

/**
 * Live tenders of the run directory by unikernel name: processes running `... -- <tmpdir>/<name>.img`.
 * A process inside execve (taskset becoming the tender) shows an empty command line for an
 * instant: it is read again until it shows one.
 */
async function tenders(d: RunDir): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  let pending = fs.readdirSync('/proc').filter((f) => /^\d+$/.test(f));
  for (let round = 0; pending.length > 0 && round < 400; round++) {
    if (round > 0) await new Promise((r) => setTimeout(r, 5));
    const blank: string[] = [];
    for (const f of pending) {
      let argv: string[];
      let stat: string;
      try {
        argv = fs.readFileSync(`/proc/${f}/cmdline`, 'utf8').split('\0');
        stat = fs.readFileSync(`/proc/${f}/stat`, 'utf8');
      } catch {
        continue;
      }
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // not a zombie, not a kernel thread (PF_KTHREAD)
      if (argv.length === 1 && argv[0] === '' && fields[0] !== 'Z' && (Number(fields[6]) & 0x00200000) === 0) blank.push(f);
      const i = argv.indexOf('--');
      const img = i < 0 ? undefined : argv[i + 1];
      if (img === undefined || path.dirname(img) !== d.tmpdir || !img.endsWith('.img')) continue;
      const name = path.basename(img).slice(0, -'.img'.length);
      out.set(name, [...(out.get(name) ?? []), Number(f)]);
    }
    pending = blank;
  }
  return out;
}

const listed = async (sock: string): Promise<string[]> => {
  const ws = await request(sock, ':', info);
  const p = ws[0].payload;
  assert.ok(p.kind === 'reply' && p.value.kind === 'unikernel_info');
  return p.value.value.map((e) => nameToString(e.name)).sort();
};

/** The invariant after a restart: the listed names are exactly the names of the live tenders, each once. */
async function assertOneTenderEach(d: RunDir, v: VmmdProcess, expected: string[], what: string): Promise<void> {
  const names = await listed(v.sock);
  const running = [...(await tenders(d)).entries()].flatMap(([n, pids]) => pids.map(() => n)).sort();
  assert.deepEqual(running, names, `${what}: one tender per listed unikernel, none unlisted (vmmd's log:\n${v.stderr()})`);
  assert.deepEqual(names, expected, `${what}: listed after the restart`);
  // the records and images of the tenders stopped at start-up are gone with them
  assert.deepEqual(fs.readdirSync(path.join(d.tmpdir, 'tender')).sort(), names, `${what}: one record per running tender`);
  assert.deepEqual(fs.readdirSync(d.tmpdir).filter((f) => f.endsWith('.img')).sort(), names.map((n) => `${n}.img`), `${what}: images`);
}

const sleeper = config(['--sleep']);

/** vmmd with the hook armed; `during` drives it until it kills itself at the point. */
async function crashAt(d: RunDir, spec: string, during: (v: VmmdProcess) => Promise<unknown>): Promise<void> {
  const v = await startVmmd(d, [], { env: { VMMD_TEST_CRASH_AT: spec } });
  await during(v).catch(() => undefined);
  const e = await v.exited;
  assert.equal(e.signal, 'SIGKILL', `vmmd killed itself at ${spec}: ${v.stderr()}`);
  assert.match(v.stderr(), /VMMD_TEST_CRASH_AT: SIGKILL at /);
}

/** vmmd with the hook armed at a start-up point: it dies before it listens. */
async function crashDuringStartup(d: RunDir, spec: string): Promise<void> {
  const e = await new Promise<{ signal: NodeJS.Signals | null; err: string }>((resolve) => {
    const p = spawn(process.execPath, [vmmdMain, '--tmpdir', d.tmpdir, '--dbdir', d.dbdir, '-v'], {
      stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FAKE_TENDER_PIDDIR: d.piddir, VMMD_TEST_CRASH_AT: spec },
    });
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err += b));
    p.on('exit', (_code, signal) => resolve({ signal, err }));
  });
  assert.equal(e.signal, 'SIGKILL', `vmmd killed itself at ${spec}: ${e.err}`);
}

/** A run directory with its console daemon; `body` runs, then every tender left is killed. */
async function inRunDir(body: (d: RunDir) => Promise<void>): Promise<void> {
  const d = makeRunDir();
  const cp = new RealConsole(d.tmpdir);
  await cp.start();
  try {
    await body(d);
  } finally {
    await cp.stop();
    for (const pids of (await tenders(d)).values()) for (const pid of pids) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    d.remove();
  }
}

// the scenarios are independent (a run directory each) and mostly wait for processes
describe('vmmd crash safety', { concurrency: 3 }, () => {
  /** Killed at `spec` while `act` runs on a vmmd running p:stay; after a restart `expected` are listed, each with one tender. */
  function scenario(title: string, spec: string, act: (v: VmmdProcess, d: RunDir) => Promise<unknown>, expected: string[]): void {
    test(`kill -9 of vmmd ${title} (${spec}): after the restart each listed unikernel has one tender, none unlisted`, () => inRunDir(async (d) => {
      await crashAt(d, spec, async (v) => {
        assert.equal(await ask(v.sock, 'p:stay', create(sleeper)), 'ok: created unikernel');
        return act(v, d);
      });
      const v = await startVmmd(d);
      try {
        await assertOneTenderEach(d, v, expected, title);
      } finally {
        await v.stop();
      }
    }));
  }

  // a create: before and after the record, the exec and the state file write
  const createNew = (v: VmmdProcess): Promise<unknown> => request(v.sock, 'p:new', create(sleeper));
  scenario('during a create, before its record is written', 'create:record p:new', createNew, ['p:stay']);
  scenario('during a create, before the exec', 'create:exec p:new', createNew, ['p:stay']);
  scenario('during a create, after the exec and before the state file', 'create:spawned p:new', createNew, ['p:stay']);
  scenario('during a create, after the state file and before the answer', 'state:saved #2', createNew, ['p:new', 'p:stay']);

  // a destroy: the state file is written once the tender has exited; before that it comes back
  const destroyStay = (v: VmmdProcess): Promise<unknown> => request(v.sock, 'p:stay', destroy);
  scenario('during a destroy, after SIGTERM', 'kill:sent p:stay', destroyStay, ['p:stay']);
  scenario('during a destroy, after its tender\'s files are freed', 'cleanup:done p:stay', destroyStay, ['p:stay']);
  scenario('during a destroy, after the state file', 'state:saved #2', destroyStay, []);

  // restart on failure: the tender exits 3 once, is started again at once, and then runs
  const failsOnce = (v: VmmdProcess, d: RunDir): Promise<unknown> =>
    request(v.sock, 'p:r', create(config([`--exit-once=${path.join(d.root, 'failed-once')}:3`, '--sleep'], { failBehaviour: { kind: 'restart', value: [3] } })));
  scenario('during a restart-on-failure relaunch, before its record', 'create:record p:r restart', failsOnce, ['p:r', 'p:stay']);
  scenario('during a restart-on-failure relaunch, before the exec', 'create:exec p:r restart', failsOnce, ['p:r', 'p:stay']);
  scenario('during a restart-on-failure relaunch, after the exec', 'create:spawned p:r restart', failsOnce, ['p:r', 'p:stay']);
  scenario('after the failed tender\'s files are freed, before the relaunch', 'cleanup:done p:r', failsOnce, ['p:r', 'p:stay']);

  // start-up: killed while relaunching the stored unikernels, or while stopping leftovers
  for (const point of ['create:record', 'create:exec', 'create:spawned']) {
    test(`kill -9 of vmmd during its start-up relaunch (${point} startup p:b): after the next restart each listed unikernel has one tender, none unlisted`, () => inRunDir(async (d) => {
      let v = await startVmmd(d);
      for (const n of ['p:a', 'p:b', 'p:c']) assert.equal(await ask(v.sock, n, create(sleeper)), 'ok: created unikernel');
      await v.kill9();
      await crashDuringStartup(d, `${point} startup p:b`);
      v = await startVmmd(d);
      try {
        await assertOneTenderEach(d, v, ['p:a', 'p:b', 'p:c'], 'start-up relaunch');
      } finally {
        await v.stop();
      }
    }));
  }

  test('kill -9 of vmmd while it stops the tenders a killed vmmd left (leftovers:signalled): after the next restart each listed unikernel has one tender', () => inRunDir(async (d) => {
    let v = await startVmmd(d);
    for (const n of ['p:a', 'p:b']) assert.equal(await ask(v.sock, n, create(sleeper)), 'ok: created unikernel');
    await v.kill9();
    await crashDuringStartup(d, 'leftovers:signalled');
    v = await startVmmd(d);
    try {
      await assertOneTenderEach(d, v, ['p:a', 'p:b'], 'leftovers');
    } finally {
      await v.stop();
    }
  }));
});
