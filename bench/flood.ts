/**
 * vmmd's memory under a partial-frame flood: BENCH_FLOOD_CONNS connections (default 8) each
 * announce a `unikernel create` of limits.maxFrameBytes (256 MiB) and send BENCH_FLOOD_MB
 * (default 200) MB of it, never finishing the frame. vmmd's resident set size (VmRSS from
 * /proc) is read before, during (peak, sampled every 100 ms), with every connection holding
 * its part, and 1 s, 10 s and 40 s after all of them closed; `info` is timed while the flood
 * holds. vmmd runs with the real vmmd_console and no unikernel.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { connectUnix } from '../src/transport/conn.js';
import { limits } from '../src/core/limits.js';
import { command, encodeWire, decodeWire, type Command } from '../src/core/wire/wire.js';

const root = path.resolve(__dirname, '..', '..');
const CONNS = Number(process.env.BENCH_FLOOD_CONNS ?? '8');
const MB = Number(process.env.BENCH_FLOOD_MB ?? '200');

const out = (s: string): void => void process.stdout.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;

function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

async function waitSocket(sock: string, p: ChildProcess): Promise<void> {
  for (let i = 0; ; i++) {
    const c = await connectUnix(sock);
    if (c.ok) {
      c.value.close();
      return;
    }
    if (p.exitCode !== null || i > 400) throw new Error(`no socket ${sock}`);
    await sleep(50);
  }
}

/** `info` of everything: milliseconds to the answer, and its kind. */
async function info(sock: string): Promise<{ ms: number; answer: string }> {
  const t = performance.now();
  const c = await connectUnix(sock);
  if (!c.ok) return { ms: performance.now() - t, answer: c.error };
  const cmd: Command = { kind: 'unikernel', value: { kind: 'info', value: null } };
  await c.value.writeMessage(command({ path: [] }, cmd));
  const m = await c.value.readMessage(120_000);
  c.value.close();
  const answer = m.kind === 'message' ? (m.wire.payload.kind === 'reply' ? 'reply' : `${m.wire.payload.kind}`) : m.kind === 'error' ? m.error : 'closed';
  return { ms: performance.now() - t, answer };
}

interface Flooder {
  sent: number;
  /** What vmmd answered before closing, if anything. */
  answer: string;
  closed: boolean;
  socket: net.Socket;
}

/** Announces a frame of maxFrameBytes (a create's header and tags first) and sends `bytes` of it. */
function flood(sock: string, bytes: number): Promise<Flooder> {
  return new Promise((resolve) => {
    const s = net.createConnection(sock);
    const f: Flooder = { sent: 0, answer: '', closed: false, socket: s };
    const got: Buffer[] = [];
    s.on('data', (b) => {
      got.push(b);
      const all = Buffer.concat(got);
      if (all.length >= 4 && all.length >= 4 + all.readUInt32BE(0)) {
        const w = decodeWire(all.subarray(4, 4 + all.readUInt32BE(0)));
        f.answer = w.ok ? (w.value.payload.kind === 'failure' ? `failure: ${w.value.payload.value}` : w.value.payload.kind) : w.error;
      }
    });
    let done = false;
    const finish = (): void => {
      if (!done) {
        done = true;
        resolve(f);
      }
    };
    s.on('error', () => finish());
    s.on('close', () => {
      f.closed = true;
      finish();
    });
    s.once('connect', () => {
      const start = new Uint8Array(4096);
      new DataView(start.buffer).setUint32(0, limits.maxFrameBytes);
      const create: Command = {
        kind: 'unikernel',
        value: {
          kind: 'create',
          value: {
            typ: 'solo5', compressed: false, image: new Uint8Array(16), addName: true, failBehaviour: { kind: 'quit', value: null },
            cpuids: [0], memory: 1, blocks: [], bridges: [], cpus: 1, arguments: [],
          },
        },
      };
      start.set(encodeWire(command({ path: [], label: 'flood' }, create)), 4);
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      const write = (): void => {
        while (!s.destroyed && f.sent < bytes) {
          const b = f.sent === 0 ? start : chunk;
          f.sent += b.length;
          if (!s.write(b)) {
            s.once('drain', write);
            return;
          }
        }
        if (f.sent >= bytes) finish();
      };
      write();
    });
  });
}

export async function run(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-flood-'));
  const tmpdir = path.join(dir, 'tmp');
  const dbdir = path.join(dir, 'db');
  fs.mkdirSync(path.join(tmpdir, 'util'), { recursive: true });
  fs.mkdirSync(dbdir);
  const procs: ChildProcess[] = [];
  const log = path.join(dir, 'vmmd.log');
  const start = (main: string, args: string[]): ChildProcess => {
    const fd = fs.openSync(log, 'a');
    const p = spawn(process.execPath, [path.join(root, 'build', 'src', 'cli', main), '--tmpdir', tmpdir, ...args], { stdio: ['ignore', 'ignore', fd] });
    fs.closeSync(fd);
    procs.push(p);
    return p;
  };
  const sock = path.join(tmpdir, 'util', 'vmmd.sock');
  try {
    const cons = start('vmmd_console.js', []);
    await waitSocket(path.join(tmpdir, 'util', 'console.sock'), cons);
    const vmmd = start('vmmd.js', ['--dbdir', dbdir]);
    await waitSocket(sock, vmmd);
    const pid = vmmd.pid as number;
    await info(sock);
    await sleep(1000);
    out(`flood: ${CONNS} connections each announcing a create of ${limits.maxFrameBytes} bytes and sending ${MB} MB of it`);
    out(`rss before: ${mb(rssKb(pid))}`);
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKb(pid))), 100);
    const t0 = performance.now();
    const floods = await Promise.all(Array.from({ length: CONNS }, () => flood(sock, MB * 1000 * 1000)));
    const sendSecs = (performance.now() - t0) / 1000;
    await sleep(1000);
    const holding = rssKb(pid);
    const during = await info(sock);
    clearInterval(sampler);
    peak = Math.max(peak, rssKb(pid));
    const refused = floods.filter((f) => f.answer !== '' || f.closed);
    out(`sent in ${sendSecs.toFixed(1)} s: ${floods.map((f) => `${(f.sent / 1e6).toFixed(0)} MB`).join(', ')}`);
    out(`closed or answered by vmmd before the end: ${refused.length}${refused.length > 0 ? ` (${[...new Set(refused.map((f) => f.answer || 'no answer'))].join('; ')})` : ''}`);
    out(`rss peak during the flood: ${mb(peak)}; holding 1 s after the last write: ${mb(holding)}`);
    out(`info during the flood: ${during.answer} in ${during.ms.toFixed(0)} ms`);
    for (const f of floods) f.socket.destroy();
    const after: string[] = [];
    let waited = 0;
    for (const s of [1, 10, 40]) {
      await sleep((s - waited) * 1000);
      waited = s;
      after.push(`${s} s: ${mb(rssKb(pid))}`);
    }
    out(`rss after the connections closed: ${after.join(', ')}`);
    const last = await info(sock);
    out(`info afterwards: ${last.answer} in ${last.ms.toFixed(0)} ms`);
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await sleep(500);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
