/**
 * vmmd_console: throughput of console lines from a FIFO to a subscriber, and the
 * daemon's memory with 1,000 full rings. Runs the compiled daemon
 * (build/src/cli/vmmd_console.js) as a process; lines are written by `yes | head` into
 * the FIFO, as a unikernel's tender writes its console.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { FrameReader } from '../src/core/frame.js';
import { command } from '../src/core/wire/wire.js';
import { unwrap } from '../src/core/result.js';
import { parseName } from '../src/core/name.js';
import { ask, connect, openWriter, payloadText, startDaemon, tempDir, waitFor } from '../test/console-helpers.js';

const nm = (s: string) => unwrap(parseName(s));
const add = (name: string, seq: bigint) => command(nm(name), { kind: 'console', value: { kind: 'add', value: 100_000n } }, seq);

function rssMb(pid: number): number {
  const m = /^VmRSS:\s*(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function throughput(dir: string, sock: string, lines: number, lineBytes: number): Promise<void> {
  const name = `:flood${lineBytes}`;
  const fifo = join(dir, 'fifo', name);
  execFileSync('mkfifo', [fifo]);
  const v = await connect(sock);
  if (payloadText(await ask(v, add(name, 1n))) !== 'reply empty') throw new Error('console add failed');
  const sub = await connect(sock);
  const r = await ask(sub, command(nm(name), { kind: 'console', value: { kind: 'subscribe', value: { kind: 'count', value: 0 } } }));
  if (payloadText(r) !== 'string subscribed') throw new Error(`subscribe: ${payloadText(r)}`);
  const fr = new FrameReader();
  let got = 0;
  let bytes = 0;
  const started = performance.now();
  const writer = spawn('sh', ['-c', `yes ${'x'.repeat(lineBytes - 1)} | head -n ${lines} > "$1"`, 'sh', fifo], { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    sub.stream.on('data', (d: Buffer) => {
      bytes += d.length;
      fr.push(d);
      for (let f = fr.next(); f.kind === 'frame'; f = fr.next()) got++;
      if (got >= lines) resolve();
    });
    sub.stream.on('close', () => reject(new Error(`subscriber closed after ${got} lines`)));
    sub.stream.resume();
  });
  const s = (performance.now() - started) / 1000;
  writer.kill();
  sub.close();
  v.close();
  process.stdout.write(
    `fifo -> subscriber, ${lines.toLocaleString('en')} lines of ${lineBytes} bytes (${((lines * lineBytes) / 1e6).toFixed(0)} MB): ` +
      `${s.toFixed(2)} s, ${Math.round(lines / s).toLocaleString('en')} lines/s, ${(bytes / 1e6 / s).toFixed(0)} MB/s of frames\n`,
  );
}

async function fullRings(dir: string, sock: string, pid: number, rings: number, lineBytes: number): Promise<void> {
  const names = Array.from({ length: rings }, (_, i) => `r${lineBytes}:u${i}`);
  execFileSync('mkfifo', names.map((n) => join(dir, 'fifo', n)));
  const before = rssMb(pid);
  const v = await connect(sock);
  const writers: number[] = [];
  const chunk = Buffer.from(`${'y'.repeat(lineBytes - 1)}\n`.repeat(1024));
  let seq = 10n;
  for (const n of names) {
    if (payloadText(await ask(v, add(n, seq++))) !== 'reply empty') throw new Error('console add failed');
    const w = openWriter(join(dir, 'fifo', n));
    // the FIFO holds 64 KiB: write in pieces the daemon drains
    for (let off = 0; off < chunk.length; off += 32768) {
      for (;;) {
        try {
          fs.writeSync(w, chunk, off, Math.min(32768, chunk.length - off));
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
          await new Promise((r) => setTimeout(r, 1));
        }
      }
    }
    writers.push(w); // kept open: the rings stay active, so none is dropped
  }
  // wait until the daemon has read everything: the last ring holds 1024 lines
  const last = names[names.length - 1];
  await waitFor('last ring full', async () => {
    const c = await connect(sock);
    await c.writeMessage(command(nm(last), { kind: 'console', value: { kind: 'subscribe', value: { kind: 'count', value: 1024 } } }));
    let n = -1;
    for (;;) {
      const m = await c.read(300);
      if (m.kind !== 'frame') break;
      n++;
    }
    c.close();
    return n >= 1024;
  }, 120_000);
  if (typeof global.gc === 'function') global.gc();
  await new Promise((r) => setTimeout(r, 500));
  const after = rssMb(pid);
  process.stdout.write(
    `${rings.toLocaleString('en')} full rings (1,024 lines of ${lineBytes} bytes each, ${((rings * 1024 * lineBytes) / 1e6).toFixed(0)} MB of text): ` +
      `daemon RSS ${before.toFixed(0)} MB -> ${after.toFixed(0)} MB\n`,
  );
  for (const w of writers) fs.closeSync(w);
  v.close();
}

export async function run(): Promise<void> {
  const dir = tempDir('alb-bench-console-');
  fs.mkdirSync(join(dir, 'fifo'));
  const sock = join(dir, 'util', 'console.sock');
  const d = await startDaemon('vmmd_console', ['--tmpdir', dir, '--quiet'], sock);
  try {
    await throughput(dir, sock, 1_000_000, 100);
    await throughput(dir, sock, 2_000_000, 50);
    await fullRings(dir, sock, d.proc.pid as number, 1000, 80);
  } finally {
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}


if (require.main === module) void run();
