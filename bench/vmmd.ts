/**
 * vmmd at scale: N unikernels (BENCH_VMMD_N, default 1,000) each running a tender that only
 * sleeps (a shell script exec'ing sleep, so the tenders cost little), with the real
 * vmmd_console. Measures create latency as the count grows, vmmd's memory per unikernel,
 * info latency with N running, the pure restore of an N-entry state file, and a full restart
 * of vmmd after kill -9 (leftover tenders stopped, N relaunched).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connectUnix } from '../src/transport/conn.js';
import { command, type Command } from '../src/core/wire/wire.js';
import { decodeState } from '../src/core/wire/state.js';
import type { UnikernelConfig } from '../src/core/wire/common.js';
import { MAX_UNIKERNELS } from '../src/core/policy.js';
import { initialState, restore } from '../src/state/vmmd.js';

const root = path.resolve(__dirname, '..', '..');
const N = Number(process.env.BENCH_VMMD_N ?? '1000');

const TENDER = `#!/bin/sh
case "$1" in --version) echo "solo5-spt tender, version v0.12.1"; echo "ABI version 2"; exit 0;; esac
exec sleep 1000000
`;

/** A minimal Solo5 spt image (ELF64 with the ABI and an empty manifest note). */
function image(): Uint8Array {
  const { solo5Image } = require(path.join(root, 'build', 'test', 'helpers', 'image.js')) as { solo5Image: () => Uint8Array };
  return solo5Image();
}

async function ask(sock: string, name: string, cmd: Command): Promise<string> {
  const c = await connectUnix(sock);
  if (!c.ok) throw new Error(c.error);
  await c.value.writeMessage(command(name === '' ? { path: ['bench'] } : { path: ['bench'], label: name }, cmd));
  const m = await c.value.readMessage(600_000);
  c.value.close();
  if (m.kind !== 'message') throw new Error(`no answer to ${name}`);
  const p = m.wire.payload;
  return p.kind === 'failure' ? `fail: ${p.value}` : p.kind === 'reply' && p.value.kind === 'string' ? p.value.value : p.kind;
}

function rssKB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

async function waitSocket(sock: string, proc: ChildProcess): Promise<void> {
  for (;;) {
    const c = await connectUnix(sock);
    if (c.ok) {
      c.value.close();
      return;
    }
    if (proc.exitCode !== null) throw new Error(`${sock}: daemon exited`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const ms = (x: number): string => `${x.toFixed(1)} ms`;

export async function run(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-vmmd-'));
  const tmpdir = path.join(dir, 'tmp');
  const dbdir = path.join(dir, 'db');
  fs.mkdirSync(path.join(tmpdir, 'util'), { recursive: true });
  fs.mkdirSync(dbdir);
  fs.writeFileSync(path.join(dbdir, 'solo5-spt'), TENDER, { mode: 0o755 });
  const procs: ChildProcess[] = [];
  const start = (main: string, args: string[]): ChildProcess => {
    const p = spawn(process.execPath, [path.join(root, 'build', 'src', 'cli', main), '--tmpdir', tmpdir, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    procs.push(p);
    return p;
  };
  const sock = path.join(tmpdir, 'util', 'vmmd.sock');
  try {
    const console_ = start('vmmd_console.js', []);
    await waitSocket(path.join(tmpdir, 'util', 'console.sock'), console_);
    let vmmd = start('vmmd.js', ['--dbdir', dbdir, '-q']);
    await waitSocket(sock, vmmd);
    const rss0 = rssKB(vmmd.pid as number);
    const img = image();
    const config = (i: number): UnikernelConfig => ({
      typ: 'solo5', compressed: false, image: img, addName: true, failBehaviour: { kind: 'quit', value: null },
      cpuids: [0], memory: 1, blocks: [], bridges: [], cpus: 1, arguments: [`--n=${i}`],
    });
    const lat: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const t = performance.now();
      const r = await ask(sock, `u${i}`, { kind: 'unikernel', value: { kind: 'create', value: config(i) } });
      lat.push(performance.now() - t);
      if (r !== 'created unikernel') throw new Error(`create u${i}: ${r}`);
    }
    const total = (performance.now() - t0) / 1000;
    const first = lat.slice(0, Math.min(100, N));
    const last = lat.slice(-Math.min(100, N));
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    process.stdout.write(`unikernels: ${N} created in ${total.toFixed(1)} s\n`);
    process.stdout.write(`create latency: p50 ${ms(pct(lat, 50))}, p99 ${ms(pct(lat, 99))}, first 100 mean ${ms(mean(first))}, last 100 mean ${ms(mean(last))}\n`);
    const rss1 = rssKB(vmmd.pid as number);
    process.stdout.write(`vmmd RSS: ${(rss0 / 1024).toFixed(0)} MB empty, ${(rss1 / 1024).toFixed(0)} MB with ${N}: ${((rss1 - rss0) / N).toFixed(1)} kB per unikernel (image ${img.length} bytes)\n`);

    const infoLat: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const r = await ask(sock, '', { kind: 'unikernel', value: { kind: 'info', value: null } });
      infoLat.push(performance.now() - t);
      if (r !== 'reply') throw new Error(`info: ${r}`);
    }
    const one: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await ask(sock, `u${i}`, { kind: 'unikernel', value: { kind: 'info', value: null } });
      one.push(performance.now() - t);
    }
    process.stdout.write(`info of all ${N}: median ${ms(pct(infoLat, 50))}; info of one: median ${ms(pct(one, 50))}\n`);

    // the pure part of a restore: decode the state file, install policies, order the creates
    const bytes = fs.readFileSync(path.join(dbdir, 'state'));
    const tr = performance.now();
    const st = decodeState(bytes);
    if (!st.ok) throw new Error(st.error);
    const rs = restore(
      initialState({ tmpdir, dbdir, platform: 'linux', dropPath: true, restartArgs: 'all', backoff: { baseMs: 0, maxMs: 0, stableMs: 0 } }),
      st.value.dump,
      { unikernels: MAX_UNIKERNELS, cpuids: [0], memory: 1 << 20, bridges: [] },
    );
    if (!rs.ok) throw new Error(rs.error);
    process.stdout.write(`state file: ${(bytes.length / 1024).toFixed(0)} kB, decode + restore plan ${ms(performance.now() - tr)} for ${rs.value.creates.length} entries\n`);

    // kill -9 and restart: leftovers stopped, all relaunched, then the socket opens
    vmmd.kill('SIGKILL');
    await new Promise((r) => vmmd.once('exit', r));
    const tk = performance.now();
    vmmd = start('vmmd.js', ['--dbdir', dbdir, '-q']);
    await waitSocket(sock, vmmd);
    process.stdout.write(`restart after kill -9 (stop ${N} leftovers, relaunch ${N}): ${((performance.now() - tk) / 1000).toFixed(1)} s\n`);
    const ts = performance.now();
    vmmd.kill('SIGTERM');
    await new Promise((r) => vmmd.once('exit', r));
    process.stdout.write(`shutdown (SIGTERM ${N} tenders, wait for all): ${((performance.now() - ts) / 1000).toFixed(1)} s\n`);
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    // tenders a failed run left behind, from vmmd's own pid records
    const recs = path.join(tmpdir, 'tender');
    for (const f of fs.existsSync(recs) ? fs.readdirSync(recs) : []) {
      try {
        process.kill((JSON.parse(fs.readFileSync(path.join(recs, f), 'utf8')) as { pid: number }).pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  run().catch((e: unknown) => {
    process.stderr.write(`bench vmmd: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
