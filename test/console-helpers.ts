/**
 * Shared by the console, log, stats and influx tests: a temp run directory, daemons as
 * real processes (the compiled build/src/cli/<binary>.js), wire clients and FIFOs.
 * (This file has no tests of its own.)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { FramedConn, connectUnix } from '../src/transport/conn.js';
import { isListening } from '../src/daemon/server.js';
import { type Wire } from '../src/core/wire/wire.js';

export const CLI_DIR = join(__dirname, '..', 'src', 'cli');

export function tempDir(prefix = 'alb-'): string {
  return fs.mkdtempSync(join(os.tmpdir(), prefix));
}

export interface Daemon {
  proc: ChildProcess;
  stderr: () => string;
  stop: () => Promise<void>;
  exited: Promise<number | null>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


/** Starts `build/src/cli/<binary>.js args` and waits until `socket` accepts connections (if given). */
export async function startDaemon(binary: string, args: string[], socket?: string, env?: NodeJS.ProcessEnv): Promise<Daemon> {
  const proc = spawn(process.execPath, [join(CLI_DIR, `${binary}.js`), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 1_000_000) err = err.slice(-500_000);
  });
  proc.stdout?.on('data', () => undefined);
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code, signal) => {
      err += `[${binary} exited: ${code ?? signal}]\n`;
      resolve(code);
    }),
  );
  let done = false;
  void exited.then(() => {
    done = true;
  });
  if (socket !== undefined) {
    for (let i = 0; ; i++) {
      if (await isListening(socket)) break;
      if (done || i > 500) {
        proc.kill('SIGKILL');
        throw new Error(`${binary} did not start: ${err}`);
      }
      await sleep(20);
    }
  }
  return {
    proc,
    stderr: () => err,
    exited,
    stop: async () => {
      if (!done) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

export async function connect(path: string): Promise<FramedConn> {
  const c = await connectUnix(path);
  if (!c.ok) throw new Error(c.error);
  return c.value;
}

/** Reads the next message, failing the test on anything else. */
export async function next(c: FramedConn, timeoutMs = 5000): Promise<Wire> {
  const m = await c.readMessage(timeoutMs);
  if (m.kind !== 'message') throw new Error(`expected a message, got ${m.kind}${m.kind === 'error' ? `: ${m.error}` : ''}`);
  return m.wire;
}

/** Sends one message and reads the answer. */
export async function ask(c: FramedConn, w: Wire): Promise<Wire> {
  await c.writeMessage(w);
  return next(c);
}

export function mkfifo(path: string): void {
  execFileSync('mkfifo', ['-m', '0600', path]);
}

/** Opens a FIFO for writing (its reader must already be open). */
export function openWriter(path: string): number {
  return fs.openSync(path, fs.constants.O_WRONLY);
}

export function payloadText(w: Wire): string {
  const p = w.payload;
  if (p.kind === 'failure') return `failure ${p.value}`;
  if (p.kind === 'reply') return p.value.kind === 'string' ? `string ${p.value.value}` : `reply ${p.value.kind}`;
  return p.kind;
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
