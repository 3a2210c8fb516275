/**
 * Test helpers for installed copies of albatross-ts (npm tarball, Debian package, the
 * upstream aliases): run a binary by its path as a user would (its #! line), start the
 * console daemon and vmmd from a set of binaries on a temp run directory (fake tender), and
 * drive a unikernel through create, info and destroy with a client.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { type RunDir, until } from './vmmd.js';
import { solo5Image } from './image.js';

/** The environment without npm's lifecycle variables (npm_config_local_prefix etc. would steer a nested npm). */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

export interface Ran { status: number | null; stdout: string; stderr: string }

/** Runs an executable file (its #! line decides how) and waits for it. */
export function runFile(file: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Ran {
  const r = spawnSync(file, args, { cwd: o.cwd, env: o.env ?? cleanEnv(), encoding: 'utf8', timeout: o.timeoutMs ?? 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface Daemon {
  proc: ChildProcess;
  stderr: () => string;
  stop(): Promise<void>;
}

/** Starts an executable daemon and waits until `socket` exists (it fails if the daemon exits first). */
export async function startFile(file: string, args: string[], socket: string, env: NodeJS.ProcessEnv = cleanEnv()): Promise<Daemon> {
  const proc = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  let ended = false;
  const exited = new Promise<void>((r) => proc.once('exit', () => {
    ended = true;
    r();
  }));
  await until(`${path.basename(file)} to create ${socket}`, () => {
    if (ended) throw new Error(`${file} ${args.join(' ')} exited: ${err}`);
    return fs.existsSync(socket);
  }, 20_000);
  return {
    proc,
    stderr: () => err,
    stop: async () => {
      if (!ended) proc.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * The console daemon and vmmd from `bin(name)` on the run directory `d`; the client
 * `client` (with `clientArgs` before the subcommand's own) creates a unikernel, lists it
 * with info and destroys it. Returns the info output.
 */
export async function roundTrip(o: {
  d: RunDir;
  consoleFile: string;
  consoleArgs?: string[];
  vmmdFile: string;
  vmmdArgs?: string[];
  client: (args: string[]) => Ran;
}): Promise<string> {
  const { d } = o;
  const env = cleanEnv({ FAKE_TENDER_PIDDIR: d.piddir });
  const daemons: Daemon[] = [];
  try {
    daemons.push(await startFile(o.consoleFile, o.consoleArgs ?? ['--tmpdir', d.tmpdir], path.join(d.tmpdir, 'util', 'console.sock'), env));
    daemons.push(await startFile(o.vmmdFile, o.vmmdArgs ?? ['--tmpdir', d.tmpdir, '--dbdir', d.dbdir], path.join(d.tmpdir, 'util', 'vmmd.sock'), env));
    const image = path.join(d.root, 'hello.hvt');
    fs.writeFileSync(image, solo5Image());
    let r = o.client(['create', 'hello', image, '--mem', '32', '--arg=--sleep']);
    assert.equal(r.status, 0, `create: ${r.stdout}${r.stderr}`);
    r = o.client(['info']);
    assert.equal(r.status, 0, `info: ${r.stdout}${r.stderr}`);
    const info = r.stdout;
    r = o.client(['destroy', 'hello']);
    assert.equal(r.status, 0, `destroy: ${r.stdout}${r.stderr}`);
    return info;
  } finally {
    for (const x of daemons.reverse()) await x.stop();
  }
}
