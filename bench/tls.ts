/**
 * The remote endpoint's cost per connection and its throughput, against floors measured
 * in the same rounds.
 *
 * One connection = connect, TLS 1.3 handshake presenting the chain [leaf `unikernel
 * info`, intermediate "org" with a policy], read until the server closes. The client is
 * node's tls in this process with its context made once (no client start-up counted).
 * Every endpoint is in front of its own daemons: a vmmd stand-in (the tests' DaemonPeer,
 * in its own process, bench/tls-procs.ts) that answers the policy add and the info, and
 * a real vmmd_log for the login and logout events.
 *
 * Variants (all started as a service manager or inetd starts them: `env -i PATH=...`):
 *
 * - floor, daemon: a minimal node TLS server (handshake with client certificate, one
 *   frame, close), one process;
 * - vmmd_tls with its default --workers (the number of CPUs), and with --workers 1;
 * - vmmd_tls_inetd --wait, warm (the process already runs);
 * - floor, per connection: a minimal node handler (the same, for the socket on standard
 *   input) under openbsd-inetd, nowait;
 * - vmmd_tls_inetd under openbsd-inetd, nowait (bin/vmmd_tls_inetd, as
 *   inetd.conf.example runs it).
 *
 * Latency: medians over rounds that alternate the variants (each daemon gets a few
 * connections per round, each nowait variant one). Throughput: 8 clients running
 * connections back to back, per variant, repeated, the median. RSS: daemons after the
 * throughput runs (all their processes), per-connection handlers their peak
 * (/usr/bin/time %M under the same inetd).
 *
 * BENCH_TLS_OTHER=DIR adds vmmd_tls, --wait and nowait of another built checkout (e.g.
 * `git archive REV | tar -x -C DIR`, node_modules linked, `npm run build` there), measured in
 * the same rounds: before and after side by side.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cmd, issue, policy, serverPki, writeClient } from '../test/helpers/pki.js';
import { readLog, root } from '../test/helpers/tls-peer.js';

const ROUNDS = Number(process.env.BENCH_TLS_ROUNDS ?? '21');
const PER_ROUND = 5;
/** Connections each daemon serves before measuring: V8 is still compiling the handler's code for the first few hundred. */
const WARM = Number(process.env.BENCH_TLS_WARM ?? '400');
const CONCURRENCY = 8;
const PER_CLIENT = Number(process.env.BENCH_TLS_PER_CLIENT ?? '40');
const REPEATS = 3;
const INETD = '/usr/sbin/inetd';
const TIME = '/usr/bin/time';
const procs = join(__dirname, 'tls-procs.js');
const other = process.env.BENCH_TLS_OTHER;
/** What a service manager or inetd gives the processes it starts. */
const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); r(true); });
      s.once('error', () => r(false));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`nothing listens on ${port}`);
}

/** A line a child prints on standard output (a port, "ready"). */
function firstLine(p: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    p.stdout?.on('data', (b: Buffer) => {
      buf += b.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    p.once('exit', (code) => reject(new Error(`exited with ${code} before it was ready`)));
  });
}

/** The pid and every descendant's. */
function tree(pid: number): number[] {
  const out = [pid];
  try {
    for (const c of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) out.push(...tree(Number(c)));
  } catch {
    // gone
  }
  return out;
}

const rssKb = (pid: number): number => {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
};

/** Waits until inetd has no child left, so that a handler's exit does not overlap the next measurement. */
async function noChildren(pid: number): Promise<void> {
  const file = `/proc/${pid}/task/${pid}/children`;
  for (let i = 0; i < 2500 && existsSync(file); i++) {
    if (readFileSync(file, 'utf8').trim() === '') return;
    await sleep(2);
  }
}

interface Variant {
  label: string;
  port: number;
  kind: 'daemon' | 'nowait';
  /** Processes whose RSS is the variant's (daemons). */
  pid?: number;
  /** File /usr/bin/time appends peak RSS lines to (nowait). */
  rssFile?: string;
  rssPort?: number;
  floor?: boolean;
  lat: number[];
  rps: number[];
  unanswered: number;
}

export async function run(): Promise<void> {
  if (!existsSync(join(root, 'dist', 'vmmd_tls_inetd.js'))) throw new Error('run npm run build first');
  if (!existsSync(INETD)) throw new Error(`${INETD} is missing: install openbsd-inetd`);
  const dir = mkdtempSync(join(tmpdir(), 'albatross-bench-tls-'));
  const children: ChildProcess[] = [];
  const started = (p: ChildProcess): ChildProcess => {
    children.push(p);
    return p;
  };
  const load0 = loadavg();
  try {
    const peer = started(spawn(process.execPath, [procs, 'peer', dir], { stdio: ['ignore', 'pipe', 'inherit'], env }));
    await firstLine(peer);
    started(spawn(join(root, 'bin', 'vmmd_log'), ['--tmpdir', dir, '--logfile', join(dir, 'events')], { stdio: 'ignore', env }));
    for (let i = 0; i < 500 && !existsSync(join(dir, 'util', 'log.sock')); i++) await sleep(20);
    const pki = await serverPki(dir);
    const org = await issue(pki.root, { cn: 'org', ca: true, command: cmd.policyAdd(policy()) });
    const leaf = await issue(org, { cn: '.', command: cmd.info() });
    const files = writeClient(dir, 'info', [leaf, org]);
    const secureContext = tls.createSecureContext({ cert: readFileSync(files.cert), key: readFileSync(files.key), ca: readFileSync(pki.ca), minVersion: 'TLSv1.3' });
    const connectOnce = (port: number): Promise<{ ms: number; bytes: number }> => new Promise((resolve) => {
      const start = performance.now();
      let bytes = 0;
      const s = tls.connect({ host: '127.0.0.1', port, secureContext, checkServerIdentity: () => undefined });
      s.setNoDelay(true);
      s.on('data', (b: Buffer) => (bytes += b.length));
      s.on('error', () => {});
      const timer = setTimeout(() => s.destroy(), 10_000);
      s.on('close', () => {
        clearTimeout(timer);
        resolve({ ms: performance.now() - start, bytes });
      });
    });
    const handlerArgs = (logfile: string): string[] => [pki.ca, pki.cert, pki.key, '--tmpdir', dir, '--logfile', logfile];

    const variants: Variant[] = [];
    const add = (v: Omit<Variant, 'lat' | 'rps' | 'unanswered'>): void => {
      variants.push({ ...v, lat: [], rps: [], unanswered: 0 });
    };

    // daemons
    const floorServer = started(spawn(process.execPath, [procs, 'floor-server', pki.ca, pki.cert, pki.key], { stdio: ['ignore', 'pipe', 'inherit'], env }));
    add({ label: 'floor: minimal node TLS server', port: Number(await firstLine(floorServer)), kind: 'daemon', pid: floorServer.pid, floor: true });
    const vmmdTls = async (label: string, checkout: string, extra: string[]): Promise<void> => {
      const log = join(dir, `vmmd_tls-${variants.length}.log`);
      const p = started(spawn(join(checkout, 'bin', 'vmmd_tls'), [...handlerArgs(log), '--ip', '127.0.0.1', '--port', '0', ...extra], { stdio: 'ignore', env }));
      let port = 0;
      for (let i = 0; i < 500 && port === 0; i++) {
        const m = /listening on .*:(\d+)/.exec(readLog(log));
        if (m) port = Number(m[1]);
        else await sleep(20);
      }
      if (port === 0) throw new Error(`${label} did not start: ${readLog(log)}`);
      add({ label, port, kind: 'daemon', pid: p.pid });
    };
    const waitHandler = async (label: string, checkout: string): Promise<void> => {
      const listener = net.createServer();
      await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
      const port = (listener.address() as net.AddressInfo).port;
      const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
      const p = started(spawn(join(checkout, 'bin', 'vmmd_tls_inetd'), [...handlerArgs(join(dir, `wait-${variants.length}.log`)), '--wait', '--linger', '3600'], { stdio: [fd, 'ignore', 'ignore'], env }));
      listener.close();
      add({ label, port, kind: 'daemon', pid: p.pid });
    };
    await vmmdTls('vmmd_tls (default --workers)', root, []);
    await vmmdTls('vmmd_tls --workers 1', root, ['--workers', '1']);
    await waitHandler('vmmd_tls_inetd --wait, warm', root);
    if (other !== undefined) {
      await vmmdTls('before: vmmd_tls', other, []);
      await waitHandler('before: vmmd_tls_inetd --wait, warm', other);
    }

    // per-connection handlers under openbsd-inetd, each also on a second port under /usr/bin/time for its peak RSS
    const conf = join(dir, 'inetd.conf');
    let lines = '';
    const nowait = async (label: string, exe: string, argv0: string, args: string[], floor = false): Promise<void> => {
      const port = await freePort();
      const rssPort = await freePort();
      const rssFile = join(dir, `rss-${port}`);
      lines += `127.0.0.1:${port} stream tcp nowait.100000 root ${exe} ${argv0} ${args.join(' ')}\n`;
      lines += `127.0.0.1:${rssPort} stream tcp nowait.100000 root ${TIME} time -a -o ${rssFile} -f %M ${exe} ${args.join(' ')}\n`;
      add({ label, port, kind: 'nowait', rssFile, rssPort, floor });
    };
    await nowait('floor: minimal node handler, inetd nowait', process.execPath, 'node', [procs, 'floor-inetd', pki.ca, pki.cert, pki.key], true);
    await nowait('vmmd_tls_inetd, inetd nowait', join(root, 'bin', 'vmmd_tls_inetd'), 'vmmd_tls_inetd', handlerArgs(join(dir, 'nowait.log')));
    if (other !== undefined) await nowait('before: vmmd_tls_inetd, inetd nowait', join(other, 'bin', 'vmmd_tls_inetd'), 'vmmd_tls_inetd', handlerArgs(join(dir, 'nowait-before.log')));
    writeFileSync(conf, lines);
    const inetd = started(spawn(INETD, ['-d', conf], { stdio: 'ignore', env }));
    const inetdPid = inetd.pid ?? 0;
    for (const v of variants) await waitPort(v.port);

    // every variant answers; the daemons get warm
    for (const v of variants) {
      for (let i = 0; i < (v.kind === 'daemon' ? WARM : 2); i++) {
        const r = await connectOnce(v.port);
        if (r.bytes === 0) throw new Error(`${v.label}: no answer on port ${v.port}`);
        if (v.kind === 'nowait') await noChildren(inetdPid);
      }
    }

    // latency, one client
    for (let round = 0; round < ROUNDS; round++) {
      for (const v of variants) {
        for (let i = 0; i < (v.kind === 'daemon' ? PER_ROUND : 1); i++) {
          const r = await connectOnce(v.port);
          if (r.bytes === 0) v.unanswered++;
          v.lat.push(r.ms);
          if (v.kind === 'nowait') await noChildren(inetdPid);
        }
      }
    }

    // throughput, CONCURRENCY clients back to back
    for (let rep = 0; rep < REPEATS; rep++) {
      for (const v of variants) {
        const per = v.kind === 'daemon' ? PER_CLIENT : Math.max(2, Math.floor(PER_CLIENT / 8));
        const start = performance.now();
        await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
          for (let i = 0; i < per; i++) {
            const r = await connectOnce(v.port);
            if (r.bytes === 0) v.unanswered++;
          }
        }));
        v.rps.push((CONCURRENCY * per) / ((performance.now() - start) / 1000));
        if (v.kind === 'nowait') await noChildren(inetdPid);
      }
    }

    // memory
    const rss = new Map<Variant, string>();
    for (const v of variants) {
      if (v.pid !== undefined) {
        const pids = tree(v.pid).filter((p) => rssKb(p) > 0);
        const kb = pids.reduce((a, p) => a + rssKb(p), 0);
        rss.set(v, `${(kb / 1024).toFixed(0)} MB${pids.length > 1 ? ` (${pids.length} processes)` : ''}`);
      } else if (v.rssPort !== undefined && v.rssFile !== undefined) {
        for (let i = 0; i < 5; i++) {
          await connectOnce(v.rssPort);
          await noChildren(inetdPid);
        }
        const kbs = readLog(v.rssFile).split('\n').map(Number).filter((n) => n > 0);
        rss.set(v, `${(median(kbs) / 1024).toFixed(0)} MB peak`);
      }
    }

    const load1 = loadavg();
    const floorOf = (kind: Variant['kind']): Variant => variants.find((v) => v.floor && v.kind === kind) as Variant;
    process.stdout.write(`  load average ${load0.map((x) => x.toFixed(2)).join(' ')} at the start, ${load1.map((x) => x.toFixed(2)).join(' ')} at the end; `
      + `latency: medians of ${ROUNDS} alternating rounds (${PER_ROUND} connections per daemon, 1 per nowait variant); `
      + `throughput: ${CONCURRENCY} clients, median of ${REPEATS} runs; environment PATH only\n\n`);
    process.stdout.write('  | variant | c=1 median | ratio to floor | c=8 req/s | ratio to floor | RSS |\n  |---|---:|---:|---:|---:|---|\n');
    for (const v of variants) {
      const f = floorOf(v.kind);
      const lat = median(v.lat);
      const rps = median(v.rps);
      process.stdout.write(`  | ${v.label} | ${lat.toFixed(2)} ms | ${(lat / median(f.lat)).toFixed(2)}x | ${rps.toFixed(0)} | ${(rps / median(f.rps)).toFixed(2)}x | ${rss.get(v) ?? ''} |\n`);
    }
    const bad = variants.filter((v) => v.unanswered > 0);
    for (const v of bad) process.stdout.write(`  ${v.label}: ${v.unanswered} connections without an answer\n`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await sleep(200);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) void run();
