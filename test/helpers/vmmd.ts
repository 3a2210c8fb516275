/**
 * Test helpers for vmmd: a temp run directory with the fake tender installed as solo5-spt and
 * solo5-hvt, vmmd started as a real process, the real console daemon, and a tiny wire client.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FramedConn, connectUnix } from '../../src/transport/conn.js';
import { type Name, parseName } from '../../src/core/name.js';
import { type Command, type Wire, command } from '../../src/core/wire/wire.js';
import type { UnikernelConfig } from '../../src/core/wire/common.js';
import { solo5Image } from './image.js';

export const repoRoot = path.resolve(__dirname, '..', '..', '..');
export const fakeTender = path.join(repoRoot, 'test', 'fake-tender');
export const binary = (name: string): string => path.join(repoRoot, 'bin', name);
/** vmmd as compiled by tsc (the bundle in dist/ is rebuilt by other builds and may be absent meanwhile). */
export const vmmdMain = path.join(repoRoot, 'build', 'src', 'cli', 'vmmd.js');

export function nm(s: string): Name {
  const r = parseName(s);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

export interface RunDir {
  root: string;
  tmpdir: string;
  dbdir: string;
  /** Pid files of running fake tenders (FAKE_TENDER_PIDDIR). */
  piddir: string;
  remove(): void;
}

/** A fresh run directory; the fake tender is installed in dbdir unless `tender` is false. */
export function makeRunDir(o: { tender?: boolean } = {}): RunDir {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmmd-'));
  const tmpdir = path.join(root, 'tmp');
  const dbdir = path.join(root, 'db');
  const piddir = path.join(root, 'pids');
  for (const d of [tmpdir, dbdir, piddir, path.join(tmpdir, 'util')]) fs.mkdirSync(d, { recursive: true });
  if (o.tender !== false) {
    for (const t of ['solo5-spt', 'solo5-hvt']) {
      fs.copyFileSync(fakeTender, path.join(dbdir, t));
      fs.chmodSync(path.join(dbdir, t), 0o755);
    }
  }
  return { root, tmpdir, dbdir, piddir, remove: () => fs.rmSync(root, { recursive: true, force: true }) };
}

/** Pids of fake tenders currently running in this run directory. */
export function livePids(d: RunDir): number[] {
  return fs.readdirSync(d.piddir).map(Number).filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}

// ------------------------------------------------------------------ vmmd process

export interface VmmdProcess {
  proc: ChildProcess;
  sock: string;
  stderr: () => string;
  /** SIGTERM and wait for the exit; returns the exit code. */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Can vmmd run in a network namespace of its own (root, unshare, tun)? Taps and bridges are
 * then created there and vanish with it, never touching the host's interfaces.
 */
export function netnsAvailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  if (!fs.existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  const r = spawnSync('unshare', ['-nm', 'sh', '-c', 'mount -t sysfs none /sys && ip link add br9 type bridge && ip tuntap add vmmtap9 mode tap && ip tuntap show'], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.includes('vmmtap9')) return `unshare/ip failed: ${(r.stderr || r.error?.message || '').trim()}`;
  return undefined;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  /** Run in a fresh network namespace with these bridges (see netnsAvailable). */
  netnsBridges?: string[];
}

/** Starts vmmd on a run directory and waits until its socket accepts connections. */
export async function startVmmd(d: RunDir, args: string[] = [], o: StartOptions = {}): Promise<VmmdProcess> {
  const env = o.env ?? {};
  const argv = [vmmdMain, '--tmpdir', d.tmpdir, '--dbdir', d.dbdir, '-v', ...args];
  let file = process.execPath;
  let fileArgs = argv;
  if (o.netnsBridges !== undefined) {
    const q = (x: string): string => `'${x.replace(/'/g, `'\\''`)}'`;
    const setup = ['mount -t sysfs none /sys', ...o.netnsBridges.flatMap((b) => [`ip link add ${b} type bridge`, `ip link set ${b} up`])];
    file = 'unshare';
    fileArgs = ['-nm', 'sh', '-c', `${setup.join(' && ')} && exec ${[process.execPath, ...argv].map(q).join(' ')}`];
  }
  const proc = spawn(file, fileArgs, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, FAKE_TENDER_PIDDIR: d.piddir, ...env },
  });
  let err = '';
  proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  let done = false;
  void exited.then(() => (done = true));
  const sock = path.join(d.tmpdir, 'util', 'vmmd.sock');
  const end = Date.now() + 20_000;
  for (;;) {
    if (done) throw new Error(`vmmd exited during start-up: ${err}`);
    const c = await connectUnix(sock);
    if (c.ok) {
      c.value.close();
      break;
    }
    if (Date.now() > end) throw new Error(`vmmd did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    sock,
    stderr: () => err,
    exited,
    stop: async () => {
      if (!done) proc.kill('SIGTERM');
      return (await exited).code;
    },
    kill9: async () => {
      if (!done) proc.kill('SIGKILL');
      await exited;
    },
  };
}

// ------------------------------------------------------------------ wire client

/** Sends one command and collects every message until vmmd closes the connection. */
export async function request(sock: string, name: string, cmd: Command, timeoutMs = 20_000): Promise<Wire[]> {
  const c = await connectUnix(sock);
  if (!c.ok) throw new Error(c.error);
  await c.value.writeMessage(command(nm(name), cmd));
  return readAll(c.value, timeoutMs);
}

export async function readAll(c: FramedConn, timeoutMs = 20_000): Promise<Wire[]> {
  const out: Wire[] = [];
  for (;;) {
    const m = await c.readMessage(timeoutMs);
    if (m.kind === 'end') break;
    if (m.kind === 'error') {
      if (/timed out/.test(m.error)) throw new Error(m.error);
      break;
    }
    out.push(m.wire);
  }
  c.close();
  return out;
}

/** The first answer to a command (policy add keeps the connection open, so only one is read). */
export async function ask(sock: string, name: string, cmd: Command, timeoutMs = 20_000): Promise<string> {
  const c = await connectUnix(sock);
  if (!c.ok) throw new Error(c.error);
  await c.value.writeMessage(command(nm(name), cmd));
  const m = await c.value.readMessage(timeoutMs);
  c.value.close();
  if (m.kind !== 'message') throw new Error(`no answer: ${m.kind === 'error' ? m.error : 'end of stream'}`);
  return describe(m.wire);
}

export function describe(w: Wire): string {
  switch (w.payload.kind) {
    case 'failure':
      return `fail: ${w.payload.value}`;
    case 'reply':
      return w.payload.value.kind === 'string' ? `ok: ${w.payload.value.value}` : `reply ${w.payload.value.kind}`;
    default:
      return w.payload.kind;
  }
}

/** A solo5 configuration running the fake tender with these unikernel arguments. */
export function config(args: string[], o: Partial<UnikernelConfig> & { blocksDeclared?: string[]; netsDeclared?: string[] } = {}): UnikernelConfig {
  const { blocksDeclared, netsDeclared, ...rest } = o;
  return {
    typ: 'solo5',
    compressed: false,
    image: solo5Image({ blocks: blocksDeclared ?? (o.blocks ?? []).map((b) => b.blockName), nets: netsDeclared ?? (o.bridges ?? []).map((b) => b.netif) }),
    addName: false,
    failBehaviour: { kind: 'quit', value: null },
    cpuids: [0],
    memory: 32,
    blocks: [],
    bridges: [],
    cpus: 1,
    arguments: ['--solo5:quiet', ...args],
    ...rest,
  };
}

export const create = (c: UnikernelConfig): Command => ({ kind: 'unikernel', value: { kind: 'create', value: c } });
export const forceCreate = (c: UnikernelConfig): Command => ({ kind: 'unikernel', value: { kind: 'force_create', value: c } });
export const destroy: Command = { kind: 'unikernel', value: { kind: 'destroy', value: null } };
export const info: Command = { kind: 'unikernel', value: { kind: 'info', value: null } };

/** Polls `f` until it returns true (fails after `ms`). */
export async function until(what: string, f: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ------------------------------------------------------------------ the real vmmd_console

export const consoleMain = path.join(repoRoot, 'build', 'src', 'cli', 'vmmd_console.js');

/**
 * The real vmmd_console on a run directory, with a way to read a unikernel's console lines
 * (history and live, by subscription).
 */
export class RealConsole {
  private proc: ChildProcess | undefined;
  private err = '';
  constructor(readonly tmpdir: string) {}

  get sock(): string {
    return path.join(this.tmpdir, 'util', 'console.sock');
  }

  async start(): Promise<void> {
    const proc = spawn(process.execPath, [consoleMain, '--tmpdir', this.tmpdir], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    proc.stderr?.on('data', (b: Buffer) => (this.err += b.toString()));
    const end = Date.now() + 20_000;
    for (;;) {
      const c = await connectUnix(this.sock);
      if (c.ok) {
        c.value.close();
        return;
      }
      if (proc.exitCode !== null || Date.now() > end) throw new Error(`vmmd_console did not start: ${this.err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Every line of the unikernel's ring now (subscription with history, read until quiet). */
  async of(name: string): Promise<string[]> {
    const c = await connectUnix(this.sock);
    if (!c.ok) throw new Error(c.error);
    await c.value.writeMessage(command(nm(name), { kind: 'console', value: { kind: 'subscribe', value: { kind: 'count', value: 1024 } } }));
    const out: string[] = [];
    for (;;) {
      const m = await c.value.readMessage(150);
      if (m.kind !== 'message') break;
      const p = m.wire.payload;
      if (p.kind === 'data' && p.value.kind === 'console') out.push(p.value.value.line);
    }
    c.value.close();
    return out;
  }

  async waitFor(name: string, pred: (l: string) => boolean, ms = 10_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const lines = await this.of(name);
      const hit = lines.find(pred);
      if (hit !== undefined) return hit;
      if (Date.now() > end) throw new Error(`no matching console line for ${name}; have ${JSON.stringify(lines)}`);
    }
  }

  /** How many times the unikernel started (the fake tender prints its arguments once per run). */
  async runs(name: string): Promise<number> {
    return (await this.of(name)).filter((l) => l.startsWith('args: ')).length;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (p === undefined || p.exitCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGTERM');
    });
  }
}
