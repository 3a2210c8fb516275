/**
 * vmmd at scale: N unikernels (BENCH_VMMD_N, default 1,000) each running a tender that only
 * sleeps (a shell script exec'ing sleep, so the tenders cost little), with the real
 * vmmd_console. Measures create latency, vmmd's memory per unikernel (JS heap after garbage
 * collection, and external memory apart), info latency with N running, the restore of an
 * N-entry state file, and shutdown.
 *
 * How the N unikernels get there (BENCH_VMMD_MODE):
 * - `create` (default up to 2,000): one client creates them one after another;
 * - `restore` (default above): the bench writes an N-entry state file (the configuration a
 *   create would send) and starts vmmd on it, which relaunches all N at start-up; the restore
 *   figures are vmmd's own log line. Create latency is then measured at N by destroying and
 *   re-creating a few unikernels.
 * BENCH_VMMD_RESTART=1 (default up to 2,000) also kills vmmd with SIGKILL and restarts it
 * (stop N leftover tenders, relaunch N).
 *
 * Memory: vmmd runs as `node --expose-gc --require build/bench/heap-probe.js`; on SIGUSR2 the
 * probe collects garbage and writes process.memoryUsage() to a file. "Empty" is a vmmd that
 * has served one create, info and destroy (so the code of those paths is loaded).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connectUnix, type FramedConn } from '../src/transport/conn.js';
import { limits } from '../src/core/limits.js';
import { command, decodeWire, encodeWire, type Command } from '../src/core/wire/wire.js';
import { decodeState, encodeState, type StateDump } from '../src/core/wire/state.js';
import type { UnikernelConfig } from '../src/core/wire/common.js';
import { MAX_UNIKERNELS } from '../src/core/policy.js';
import { initialState, restore } from '../src/state/vmmd.js';
import type { HeapSample } from './heap-probe.js';

const root = path.resolve(__dirname, '..', '..');
const N = Number(process.env.BENCH_VMMD_N ?? '1000');
const MODE = process.env.BENCH_VMMD_MODE ?? (N > 2000 ? 'restore' : 'create');
const RESTART = (process.env.BENCH_VMMD_RESTART ?? (N <= 2000 ? '1' : '0')) === '1';

/**
 * The tender: sleep in place of the shell (one process per unikernel). With the kill -9
 * restart, the shell stays and waits for sleep instead: vmmd recognises a leftover tender by
 * the image path on its command line, which an exec'd sleep no longer has. Each tender leaves
 * its pid in `pids` (a shell builtin, no process) for the clean-up after a failed run.
 */
const tender = (pids: string): string => `#!/bin/sh
case "$1" in --version) echo "solo5-spt tender, version v0.12.1"; echo "ABI version 2"; exit 0;; esac
: > '${pids}'/$$
${RESTART ? "trap 'kill $! 2>/dev/null; exit 0' TERM\nsleep 1000000 &\nwait" : 'exec sleep 1000000'}
`;

/** A minimal Solo5 spt image (ELF64 with the ABI and an empty manifest note). */
function image(): Uint8Array {
  const { solo5Image } = require(path.join(root, 'build', 'test', 'helpers', 'image.js')) as { solo5Image: () => Uint8Array };
  return solo5Image();
}

const out = (s: string): void => void process.stdout.write(`${s}\n`);
const note = (s: string): void => void process.stderr.write(`bench vmmd: ${s}\n`);

async function connect(sock: string): Promise<FramedConn> {
  const c = await connectUnix(sock, limits.maxFrameBytes);
  if (!c.ok) throw new Error(c.error);
  return c.value;
}

async function ask(sock: string, name: string, cmd: Command): Promise<string> {
  const c = await connect(sock);
  await c.writeMessage(command(name === '' ? { path: ['bench'] } : { path: ['bench'], label: name }, cmd));
  const m = await c.readMessage(600_000);
  c.close();
  if (m.kind !== 'message') throw new Error(`no answer to ${name}: ${m.kind === 'error' ? m.error : 'end'}`);
  const p = m.wire.payload;
  return p.kind === 'failure' ? `fail: ${p.value}` : p.kind === 'reply' && p.value.kind === 'string' ? p.value.value : p.kind;
}

interface InfoTiming {
  /** From writing the command to the last octet of the reply. */
  reply: number;
  body: Uint8Array;
}

/** `info` of everything below `bench:` (or of one unikernel), timed on the raw frame. */
async function info(sock: string, label?: string): Promise<InfoTiming> {
  const c = await connect(sock);
  const body = encodeWire(command(label === undefined ? { path: ['bench'] } : { path: ['bench'], label }, { kind: 'unikernel', value: { kind: 'info', value: null } }));
  const t0 = performance.now();
  await c.write(body);
  const r = await c.read(600_000);
  const t1 = performance.now();
  c.close();
  if (r.kind !== 'frame') throw new Error(`info: ${r.kind === 'error' ? r.error : 'no answer'}`);
  return { reply: t1 - t0, body: r.body };
}

/** The client's decode of an info reply: time and number of entries. */
function decodeInfo(body: Uint8Array): { decode: number; entries: number } {
  const t = performance.now();
  const w = decodeWire(body);
  const decode = performance.now() - t;
  if (!w.ok) throw new Error(`info: ${w.error}`);
  const p = w.value.payload;
  if (p.kind !== 'reply' || p.value.kind !== 'unikernel_info') throw new Error(`info: answered ${p.kind}`);
  return { decode, entries: p.value.value.length };
}

async function waitSocket(sock: string, proc: ChildProcess, pollMs = 20): Promise<void> {
  for (;;) {
    if (fs.existsSync(sock)) {
      const c = await connectUnix(sock);
      if (c.ok) {
        c.value.close();
        return;
      }
    }
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${sock}: daemon exited`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

const median = (xs: number[]): number => pct(xs, 50);
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const ms = (x: number): string => `${x.toFixed(1)} ms`;
const mb = (x: number): string => `${(x / 1024 / 1024).toFixed(1)} MB`;
const perUk = (a: number, b: number, n: number): string => `${((b - a) / n / 1024).toFixed(2)} KB`;

export async function run(): Promise<void> {
  if (MODE !== 'create' && MODE !== 'restore') throw new Error(`BENCH_VMMD_MODE must be create or restore, not ${MODE}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-vmmd-'));
  const tmpdir = path.join(dir, 'tmp');
  const dbdir = path.join(dir, 'db');
  const probeFile = path.join(dir, 'heap.json');
  const logFile = path.join(dir, 'vmmd.log');
  fs.mkdirSync(path.join(tmpdir, 'util'), { recursive: true });
  fs.mkdirSync(dbdir);
  const pids = path.join(dir, 'pids');
  fs.mkdirSync(pids);
  fs.writeFileSync(path.join(dbdir, 'solo5-spt'), tender(pids), { mode: 0o755 });
  const procs: ChildProcess[] = [];
  /**
   * Starts a daemon through sh, which raises the soft limit of open files to the hard limit
   * (vmmd_console holds a FIFO per unikernel); vmmd logs to `logFile` with -v.
   */
  const start = (main: string, args: string[], nodeArgs: string[] = [], env: NodeJS.ProcessEnv = process.env): ChildProcess => {
    const log = fs.openSync(logFile, 'a');
    const p = spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', process.execPath, ...nodeArgs,
      path.join(root, 'build', 'src', 'cli', main), '--tmpdir', tmpdir, ...args], { stdio: ['ignore', 'ignore', log], env });
    fs.closeSync(log);
    procs.push(p);
    return p;
  };
  const startVmmd = (): ChildProcess =>
    start('vmmd.js', ['--dbdir', dbdir, '-v'], ['--expose-gc', '--require', path.join(root, 'build', 'bench', 'heap-probe.js')],
      { ...process.env, BENCH_HEAP_PROBE: probeFile });
  const probe = async (p: ChildProcess): Promise<HeapSample> => {
    fs.rmSync(probeFile, { force: true });
    p.kill('SIGUSR2');
    for (let i = 0; !fs.existsSync(probeFile); i++) {
      if (i > 3000) throw new Error('the heap probe did not answer');
      await new Promise((r) => setTimeout(r, 20));
    }
    return JSON.parse(fs.readFileSync(probeFile, 'utf8')) as HeapSample;
  };
  const stop = async (p: ChildProcess, signal: NodeJS.Signals): Promise<number> => {
    const t = performance.now();
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
    return performance.now() - t;
  };
  const sock = path.join(tmpdir, 'util', 'vmmd.sock');
  const consoleSock = path.join(tmpdir, 'util', 'console.sock');
  const img = image();
  const config = (i: number): UnikernelConfig => ({
    typ: 'solo5', compressed: false, image: img, addName: true, failBehaviour: { kind: 'quit', value: null },
    cpuids: [0], memory: 1, blocks: [], bridges: [], cpus: 1, arguments: [`--n=${i}`],
  });
  const create = async (i: number): Promise<number> => {
    const t = performance.now();
    const r = await ask(sock, `u${i}`, { kind: 'unikernel', value: { kind: 'create', value: config(i) } });
    if (r !== 'created unikernel') throw new Error(`create u${i}: ${r}`);
    return performance.now() - t;
  };
  try {
    out(`mode: ${MODE} (${MODE === 'create' ? `${N} creates by one client` : `vmmd restores a generated ${N}-entry state file`}), image ${img.length} bytes, add-name, one argument`);
    let console_ = start('vmmd_console.js', []);
    await waitSocket(consoleSock, console_);

    // the empty baseline: a vmmd that has served a create, info and destroy
    let vmmd = startVmmd();
    await waitSocket(sock, vmmd);
    await create(-1);
    await info(sock);
    const d = await ask(sock, 'u-1', { kind: 'unikernel', value: { kind: 'destroy', value: null } });
    if (d !== 'destroyed unikernel') throw new Error(`destroy: ${d}`);
    const empty = await probe(vmmd);

    let lat: number[] = [];
    if (MODE === 'create') {
      const t0 = performance.now();
      for (let i = 0; i < N; i++) lat.push(await create(i));
      out(`unikernels: ${N} created in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } else {
      await stop(vmmd, 'SIGTERM');
      // a fresh console daemon: the warm-up's ring would count against its 10,000 rings
      await stop(console_, 'SIGTERM');
      console_ = start('vmmd_console.js', []);
      await waitSocket(consoleSock, console_);
      const dump: StateDump = {
        unikernels: Array.from({ length: N }, (_, i) => ({ name: { path: ['bench'], label: `u${i}` }, config: config(i) })),
        policies: [],
      };
      fs.writeFileSync(path.join(dbdir, 'state'), encodeState(dump));
      const mark = fs.statSync(logFile).size;
      const t0 = performance.now();
      vmmd = startVmmd();
      const progress = setInterval(() => {
        const n = fs.existsSync(path.join(tmpdir, 'tender')) ? fs.readdirSync(path.join(tmpdir, 'tender')).length : 0;
        note(`relaunching: ${n} of ${N} after ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      }, 60_000);
      try {
        await waitSocket(sock, vmmd, 250);
      } finally {
        clearInterval(progress);
      }
      const log = fs.readFileSync(logFile, 'utf8').slice(mark);
      const restored = /state: (\d+) unikernels .*$/m.exec(log);
      const relaunched = /relaunched (\d+) of (\d+) unikernels in (.*)$/m.exec(log);
      out(`vmmd start-up on a ${N}-entry state file (${(fs.statSync(path.join(dbdir, 'state')).size / 1024).toFixed(0)} kB): socket after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      out(`  vmmd's log: ${restored?.[0] ?? '(no restore line)'}`);
      out(`  vmmd's log: ${relaunched?.[0] ?? '(no relaunch line)'}`);
      if (relaunched?.[1] !== String(N)) throw new Error(`only ${relaunched?.[1]} of ${N} unikernels were relaunched`);
    }
    const full = await probe(vmmd);
    out(`vmmd heap (after gc): ${mb(empty.heapUsed)} empty, ${mb(full.heapUsed)} with ${N}: ${perUk(empty.heapUsed, full.heapUsed, N)} per unikernel`);
    out(`  old space ${mb(full.spaces.old_space ?? 0)}, new space ${mb(full.spaces.new_space ?? 0)}, code ${mb(full.spaces.code_space ?? 0)}, large objects ${mb(full.spaces.large_object_space ?? 0)}`);
    out(`vmmd external memory: ${mb(empty.external)} empty, ${mb(full.external)} with ${N}: ${perUk(empty.external, full.external, N)} per unikernel (ArrayBuffers ${perUk(empty.arrayBuffers, full.arrayBuffers, N)}; images ${img.length} bytes)`);
    out(`vmmd RSS: ${mb(empty.rss)} empty, ${mb(full.rss)} with ${N}: ${perUk(empty.rss, full.rss, N)} per unikernel`);

    // the replies are decoded after all were received, so that the bench's own garbage
    // collection of decoded replies does not fall into the next request's time
    const first = await info(sock);
    const infos: InfoTiming[] = [];
    for (let i = 0; i < 19; i++) infos.push(await info(sock));
    const one: number[] = [];
    for (let i = 0; i < 20; i++) one.push((await info(sock, `u${i}`)).reply);
    const decoded = [first, ...infos].map((x) => decodeInfo(x.body));
    for (const x of decoded) if (x.entries !== N) throw new Error(`info listed ${x.entries} unikernels, expected ${N}`);
    const replies = infos.map((x) => x.reply);
    out(`info of all ${N} (${(first.body.length / 1024).toFixed(0)} kB reply), command sent to last reply byte: first ${ms(first.reply)}, then median of ${replies.length} ${ms(median(replies))} (min ${ms(Math.min(...replies))}, p90 ${ms(pct(replies, 90))}, max ${ms(Math.max(...replies))})`);
    out(`  each: ${replies.map((x) => x.toFixed(0)).join(' ')} ms`);
    out(`  client decode of that reply (decodeWire in the bench, afterwards): first ${ms(decoded[0].decode)}, median of the others ${ms(median(decoded.slice(1).map((x) => x.decode)))}`);
    out(`info of one: median ${ms(median(one))}`);

    if (MODE === 'restore') {
      // create latency at N: destroy one and create it again, N - 1 others running
      for (let i = 0; i < Math.min(20, N); i++) {
        const r = await ask(sock, `u${i}`, { kind: 'unikernel', value: { kind: 'destroy', value: null } });
        if (r !== 'destroyed unikernel') throw new Error(`destroy u${i}: ${r}`);
        lat.push(await create(i));
      }
    }
    const firsts = lat.slice(0, Math.min(100, lat.length));
    const lasts = lat.slice(-Math.min(100, lat.length));
    out(`create latency${MODE === 'restore' ? ` with ${N - 1} others running (${lat.length} creates)` : ''}: p50 ${ms(pct(lat, 50))}, p99 ${ms(pct(lat, 99))}` +
      (MODE === 'create' ? `, first 100 mean ${ms(mean(firsts))}, last 100 mean ${ms(mean(lasts))}` : ''));
    lat = [];

    // the pure part of a restore, in this process: decode the state file, install policies, order the creates
    const bytes = fs.readFileSync(path.join(dbdir, 'state'));
    const tr = performance.now();
    const st = decodeState(bytes);
    if (!st.ok) throw new Error(st.error);
    const td = performance.now();
    const rs = restore(
      initialState({ tmpdir, dbdir, platform: 'linux', dropPath: true, restartArgs: 'all', backoff: { baseMs: 0, maxMs: 0, stableMs: 0 } }),
      st.value.dump,
      { unikernels: MAX_UNIKERNELS, cpuids: [0], memory: 1 << 20, bridges: [] },
    );
    if (!rs.ok) throw new Error(rs.error);
    out(`state file: ${(bytes.length / 1024).toFixed(0)} kB; in the bench process, decode ${ms(td - tr)} + restore plan ${ms(performance.now() - td)} for ${rs.value.creates.length} entries`);

    if (RESTART) {
      // kill -9 and restart: leftovers stopped, all relaunched, then the socket opens
      await stop(vmmd, 'SIGKILL');
      const tk = performance.now();
      vmmd = startVmmd();
      await waitSocket(sock, vmmd, 100);
      out(`restart after kill -9 (stop ${N} leftovers, relaunch ${N}): ${((performance.now() - tk) / 1000).toFixed(1)} s`);
    }
    const down = await stop(vmmd, 'SIGTERM');
    out(`shutdown (SIGTERM ${N} tenders, wait for all): ${(down / 1000).toFixed(1)} s`);
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    // tenders a failed run left behind, with their sleep (vmmd starts each in a process group of
    // its own); a pid reused meanwhile is left alone: only this bench's tender or sleep is killed
    for (const f of fs.readdirSync(pids)) {
      try {
        const argv = fs.readFileSync(`/proc/${f}/cmdline`, 'utf8').split('\0');
        if (argv.includes('1000000') || argv.includes(path.join(dbdir, 'solo5-spt'))) process.kill(-Number(f), 'SIGKILL');
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
