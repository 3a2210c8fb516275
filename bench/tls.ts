/**
 * The remote endpoint's cost per connection, measured with the client operators use in
 * scripts: `openssl s_client -tls1_3 -quiet` presenting a chain whose leaf says
 * `unikernel info`, reading the reply until the server closes. A small in-process vmmd
 * stand-in answers, so what is measured is the endpoint, not vmmd.
 *
 * Latencies are medians over rounds that alternate with a bare `node -e 0` (spawned and
 * waited for the same way), and are reported as a ratio to it, because the machine's
 * speed varies between runs more than these ratios do:
 *
 * - inetd nowait: one vmmd_tls_inetd process per connection (the real openbsd-inetd
 *   when installed, else a stand-in that spawns the same way); target <= 1.25x;
 * - vmmd_tls_inetd --wait, warm (the process already runs); target <= 0.20x;
 * - vmmd_tls; target <= 0.20x;
 * - vmmd_tls throughput with 16 clients at once (requests per second).
 *
 * The handler runs as inetd.conf.example runs it: bin/vmmd_tls_inetd executed directly
 * (its shebang's node flags, the launcher and the build's code cache). Everything runs
 * twice: in this process's environment, and in the environment a service manager gives
 * inetd (PATH only). They differ where the environment names CA bundles: with
 * NODE_EXTRA_CA_CERTS set, every node process (the baseline too) parses that bundle
 * before it runs any code.
 *
 * BENCH_TLS_OTHER=DIR adds a nowait line for the handler of another checkout (built,
 * e.g. `git worktree add DIR REV && cd DIR && npm ci`), measured in the same rounds, to
 * compare two versions side by side.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cmd, issue, policy, serverPki, writeClient } from '../test/helpers/pki.js';
import { DaemonPeer, readLog, root } from '../test/helpers/tls-peer.js';

const launcher = join(root, 'bin', 'vmmd_tls_inetd');

const ROUNDS = Number(process.env.BENCH_TLS_ROUNDS ?? '15');
const INETD = '/usr/sbin/inetd';

function timed(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ ms: number; out: number; code: number | null; err: string }> {
  return new Promise((resolve) => {
    const start = performance.now();
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let out = 0;
    let err = '';
    p.stdout?.on('data', (b: Buffer) => (out += b.length));
    p.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    p.stdin?.on('error', () => {});
    p.stdin?.end(opts.input ?? '');
    p.on('close', (code) => resolve({ ms: performance.now() - start, out, code, err }));
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); r(true); });
      s.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

const fmtMs = (x: number): string => `${x.toFixed(1)} ms`;

/**
 * Waits until inetd has no child left: a nowait handler goes on after its client has the
 * answer (logout event, exit), and the next measurement must not share the CPUs with it.
 */
async function noChildren(pid: number): Promise<void> {
  const file = `/proc/${pid}/task/${pid}/children`;
  if (!existsSync(file)) return;
  for (let i = 0; i < 2500; i++) {
    if (readFileSync(file, 'utf8').trim() === '') return;
    await new Promise((r) => setTimeout(r, 2));
  }
}

interface Setup {
  peer: DaemonPeer;
  sClient: (port: number) => Promise<{ ms: number; out: number; code: number | null; err: string }>;
  handlerArgs: string[];
  logfile: string;
  dir: string;
  pki: { ca: string; cert: string; key: string };
}

/** inetd nowait, --wait and vmmd_tls started in `env`, each checked to answer; returns their ports. */
const other = process.env.BENCH_TLS_OTHER;

async function endpoints(s: Setup, env: NodeJS.ProcessEnv, tag: string, children: ChildProcess[]): Promise<{ nowait: number; otherNowait: number; wait: number; daemon: number; dlog: string; inetdPid: number }> {
  const nowait = await freePort();
  const otherNowait = other !== undefined ? await freePort() : 0;
  const conf = join(s.dir, `inetd-${tag}.conf`);
  const line = (port: number, exe: string): string => `127.0.0.1:${port} stream tcp nowait.100000 root ${exe} vmmd_tls_inetd ${s.handlerArgs.join(' ')}\n`;
  writeFileSync(conf, line(nowait, launcher) + (other !== undefined ? line(otherNowait, join(other, 'bin', 'vmmd_tls_inetd')) : ''));
  const inetd = spawn(INETD, ['-d', conf], { stdio: 'ignore', env });
  children.push(inetd);
  await waitPort(nowait);

  // --wait: the listening socket as standard input
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const wait = (listener.address() as net.AddressInfo).port;
  const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
  children.push(spawn(launcher, [...s.handlerArgs, '--wait', '--linger', '3600'], { stdio: [fd, 'ignore', 'ignore'], env }));
  listener.close();

  const dlog = join(s.dir, `vmmd_tls-${tag}.log`);
  children.push(spawn(join(root, 'bin', 'vmmd_tls'), [s.pki.ca, s.pki.cert, s.pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', s.dir, '--logfile', dlog], { stdio: 'ignore', env }));
  let daemon = 0;
  for (let i = 0; i < 500 && daemon === 0; i++) {
    const m = /listening on .*:(\d+)/.exec(readLog(dlog));
    if (m) daemon = Number(m[1]);
    else await new Promise((r) => setTimeout(r, 20));
  }
  if (daemon === 0) throw new Error('vmmd_tls did not start');
  for (const p of [nowait, wait, daemon, ...(other !== undefined ? [otherNowait] : [])]) {
    const r = await s.sClient(p);
    if (r.out === 0) throw new Error(`no answer on port ${p}: ${readLog(s.logfile)}`);
  }
  return { nowait, otherNowait, wait, daemon, dlog, inetdPid: inetd.pid ?? 0 };
}

export async function run(): Promise<void> {
  if (!existsSync(join(root, 'dist', 'vmmd_tls_inetd.js'))) throw new Error('run npm run build first');
  if (!existsSync(INETD)) throw new Error(`${INETD} is missing: install openbsd-inetd`);
  const dir = mkdtempSync(join(tmpdir(), 'albatross-bench-tls-'));
  const children: ChildProcess[] = [];
  const closers: (() => void)[] = [];
  const peer = new DaemonPeer(dir);
  try {
    await peer.start(['vmmd']);
    const logd = spawn(join(root, 'bin', 'vmmd_log'), ['--tmpdir', dir, '--logfile', join(dir, 'events')], { stdio: 'ignore' });
    children.push(logd);
    for (let i = 0; i < 500 && !existsSync(join(dir, 'util', 'log.sock')); i++) await new Promise((r) => setTimeout(r, 20));
    const pki = await serverPki(dir);
    const org = await issue(pki.root, { cn: 'org', ca: true, command: cmd.policyAdd(policy()) });
    const leaf = await issue(org, { cn: '.', command: cmd.info() });
    const files = writeClient(dir, 'info', [leaf]);
    const chain = join(dir, 'chain.pem');
    writeFileSync(chain, org.pem);
    const logfile = join(dir, 'handler.log');
    const sClient = (port: number) => timed('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-quiet', '-cert', files.cert, '-cert_chain', chain, '-key', files.key, '-CAfile', pki.ca]);
    const setup: Setup = { peer, sClient, handlerArgs: [pki.ca, pki.cert, pki.key, '--tmpdir', dir, '--logfile', logfile], logfile, dir, pki };

    // the floor: the same client against a minimal TLS server in this process that
    // requests the client certificate, answers with one small frame and closes
    const tls = await import('node:tls');
    const floorServer = tls.createServer({
      ca: readFileSync(pki.ca), cert: readFileSync(pki.cert), key: readFileSync(pki.key), requestCert: true, rejectUnauthorized: true,
      minVersion: 'TLSv1.3', noDelay: true,
    }, (c) => {
      c.on('error', () => {});
      c.end(Buffer.from([0, 0, 0, 2, 0x30, 0x00]));
    });
    floorServer.on('tlsClientError', () => {});
    await new Promise<void>((r) => floorServer.listen(0, '127.0.0.1', r));
    const floorPort = (floorServer.address() as net.AddressInfo).port;
    closers.push(() => floorServer.close());

    const environments: [string, NodeJS.ProcessEnv][] = [
      ['this environment', process.env],
      ['a service manager\'s environment (PATH only)', { PATH: process.env.PATH ?? '/usr/bin:/bin' }],
    ];
    let lastDaemon = 0;
    let lastDlog = '';
    for (const [what, env] of environments) {
      const ports = await endpoints(setup, env, String(environments.findIndex((e) => e[1] === env)), children);
      lastDaemon = ports.daemon;
      lastDlog = ports.dlog;
      const base: number[] = [];
      const nowait: number[] = [];
      const otherNow: number[] = [];
      const warm: number[] = [];
      const daemon: number[] = [];
      const sOnly: number[] = [];
      const floor: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        base.push((await timed(process.execPath, ['-e', '0'], { env })).ms);
        nowait.push((await sClient(ports.nowait)).ms);
        await noChildren(ports.inetdPid);
        if (other !== undefined) {
          otherNow.push((await sClient(ports.otherNowait)).ms);
          await noChildren(ports.inetdPid);
        }
        warm.push((await sClient(ports.wait)).ms);
        daemon.push((await sClient(ports.daemon)).ms);
        sOnly.push((await timed('openssl', ['version'])).ms);
        floor.push((await sClient(floorPort)).ms);
      }
      const b = median(base);
      const row = (label: string, xs: number[], target?: number): void => {
        const m = median(xs);
        const ratio = m / b;
        const verdict = target === undefined ? '' : ratio <= target ? `  (target <= ${target}x: met)` : `  (target <= ${target}x: NOT met)`;
        process.stdout.write(`  ${label.padEnd(44)} ${fmtMs(m).padStart(9)}  ${ratio.toFixed(2)}x${verdict}\n`);
      };
      process.stdout.write(`  ${what}: medians of ${ROUNDS} alternating rounds; ratio to node -e 0 in the same environment\n`);
      row('node -e 0 (baseline)', base);
      row('openssl version (the client\'s own start-up)', sOnly);
      row('s_client against a minimal TLS server (floor)', floor);
      row('inetd nowait: s_client info', nowait, 1.25);
      if (other !== undefined) row(`the same, handler of ${other}`, otherNow);
      row('vmmd_tls_inetd --wait, warm: s_client info', warm, 0.2);
      row('vmmd_tls: s_client info', daemon, 0.2);
    }

    // throughput: 16 clients, each running requests back to back
    const clients = 16;
    const perClient = Number(process.env.BENCH_TLS_PER_CLIENT ?? '10');
    const start = performance.now();
    let failed = 0;
    let firstFailure = '';
    await Promise.all(Array.from({ length: clients }, async () => {
      for (let i = 0; i < perClient; i++) {
        const r = await sClient(lastDaemon);
        if (r.out === 0) {
          failed++;
          firstFailure ||= `exit ${r.code}: ${r.err.trim().split('\n').slice(0, 3).join(' | ')}`;
        }
      }
    }));
    const secs = (performance.now() - start) / 1000;
    process.stdout.write(`  vmmd_tls, ${clients} concurrent s_client loops: ${((clients * perClient) / secs).toFixed(0)} requests/s (${clients * perClient} requests, ${failed} without answer)\n`);
    if (failed > 0) process.stdout.write(`  first client without answer: ${firstFailure}\n`);
    const errors = readLog(lastDlog).split('\n').filter((l) => / error: /.test(l));
    if (errors.length > 0) process.stdout.write(`  vmmd_tls logged ${errors.length} errors, first: ${errors[0]}\n`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    for (const c of closers) c();
    await peer.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) void run();
