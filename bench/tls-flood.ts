/**
 * Memory of the remote endpoint under the two loads that hold it longest:
 *
 * - upload: vmmd_tls (bin/vmmd_tls) while 6 authenticated clients each send 200 MB of a
 *   `create` image (empty image in the certificate, raw chunks after the handshake) and
 *   never send the end marker; RSS before, while the uploads are held, and 3 s after the
 *   clients went away.
 * - idle: the RSS of one handler process that relays a console subscription and is
 *   otherwise idle: bin/vmmd_tls_inetd (TLS, inetd nowait) and bin/vmmd_tls_inetd --local
 *   (a Unix connection), each spawned with the accepted socket as standard input.
 *
 * `node build/bench/tls-flood.js [upload|idle]` (both by default). BENCH_FLOOD_MB and
 * BENCH_FLOOD_CLIENTS change the upload's size and number of clients.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cmd, issue, policy, serverPki, writeClient } from '../test/helpers/pki.js';
import { DaemonPeer, readLog, root } from '../test/helpers/tls-peer.js';
import { frame } from '../src/core/frame.js';
import { command, encodeWire } from '../src/core/wire/wire.js';
import type { Command } from '../src/core/wire/wire.js';

const MB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** VmRSS of a process in MB. */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Private memory of a process in MB (Private_Clean + Private_Dirty): what each further process costs. */
function privateMb(pid: number): number {
  const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(t)?.[1] ?? NaN);
  return (kb('Private_Clean') + kb('Private_Dirty')) / 1024;
}

async function waitLog(file: string, re: RegExp, proc: ChildProcess): Promise<RegExpExecArray> {
  for (let i = 0; i < 500; i++) {
    const m = re.exec(readLog(file));
    if (m) return m;
    if (proc.exitCode !== null) break;
    await sleep(20);
  }
  throw new Error(`not found in ${file}: ${re}: ${readLog(file)}`);
}

const createCmd = (memory: number): Command => ({
  kind: 'unikernel',
  value: {
    kind: 'create',
    value: {
      typ: 'solo5', compressed: false, image: new Uint8Array(0), addName: true,
      failBehaviour: { kind: 'quit', value: null }, cpuids: [0], memory, blocks: [], bridges: [], cpus: 1,
    },
  },
} as Command);

/** Sends `mb` MB of raw 1 MB chunks and no end marker; resolves when all were written or the server closed. */
function upload(port: number, client: { cert: string; key: string }, ca: string, mb: number): Promise<{ sent: number; socket: tls.TLSSocket; closed: boolean }> {
  return new Promise((resolve) => {
    let sent = 0;
    let closed = false;
    const chunk = frame(new Uint8Array(MB).fill(0x41));
    const s = tls.connect({
      host: '127.0.0.1', port, cert: readFileSync(client.cert), key: readFileSync(client.key), ca: readFileSync(ca),
      minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', checkServerIdentity: () => undefined,
    }, () => {
      const more = (): void => {
        while (sent < mb && !closed) {
          sent++;
          if (sent === mb) {
            s.write(chunk, () => resolve({ sent, socket: s, closed }));
            return;
          }
          if (!s.write(chunk)) {
            s.once('drain', more);
            return;
          }
        }
      };
      more();
    });
    s.on('error', () => {});
    s.on('close', () => { closed = true; resolve({ sent, socket: s, closed }); });
  });
}

async function uploadFlood(dir: string): Promise<void> {
  const clients = Number(process.env.BENCH_FLOOD_CLIENTS ?? '6');
  const mb = Number(process.env.BENCH_FLOOD_MB ?? '200');
  const pki = await serverPki(dir);
  const peer = new DaemonPeer(dir);
  await peer.start(['vmmd']);
  const org = await issue(pki.root, { cn: 'org', ca: true, command: cmd.policyAdd(policy({ memory: 4096, unikernels: 10n })) });
  const files = writeClient(dir, 'up', [await issue(org, { cn: 'up', command: createCmd(1024) }), org]);
  const logfile = join(dir, 'vmmd_tls.log');
  const d = spawn(join(root, 'bin', 'vmmd_tls'), [pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile, '--workers', '1'], { stdio: 'ignore' });
  try {
    const port = Number((await waitLog(logfile, /listening on .*:(\d+)/, d))[1]);
    const pid = d.pid ?? 0;
    await sleep(500);
    const before = rssMb(pid);
    let peak = before;
    const poll = setInterval(() => { peak = Math.max(peak, rssMb(pid)); }, 100);
    const t0 = performance.now();
    const ups = await Promise.all(Array.from({ length: clients }, () => upload(port, files, pki.ca, mb)));
    await sleep(1000);
    const during = rssMb(pid);
    const held = ups.filter((u) => !u.closed && !u.socket.destroyed).length;
    const secs = (performance.now() - t0) / 1000;
    for (const u of ups) u.socket.destroy();
    await sleep(3000);
    clearInterval(poll);
    const after = rssMb(pid);
    console.log(`upload: vmmd_tls, ${clients} clients x ${mb} MB without the end marker (${secs.toFixed(1)} s; ${held} uploads still held open by the server)`);
    console.log(`  RSS before ${before.toFixed(0)} MB, during ${during.toFixed(0)} MB (peak ${peak.toFixed(0)} MB), 3 s after the clients left ${after.toFixed(0)} MB`);
    const refused = readLog(logfile).split('\n').filter((l) => /upload/.test(l)).slice(0, 3);
    for (const l of refused) console.log(`  log: ${l.replace(/^.*?\] ?/, '').slice(0, 200)}`);
  } finally {
    d.kill('SIGTERM');
    await peer.close();
  }
}

async function idleHandlers(dir: string): Promise<void> {
  const pki = await serverPki(dir);
  const peer = new DaemonPeer(dir);
  await peer.start(['vmmd', 'console']);
  const org = await issue(pki.root, { cn: 'org', ca: true, command: cmd.policyAdd(policy()) });
  const files = writeClient(dir, 'sub', [await issue(org, { cn: 'web', command: cmd.consoleSubscribe() }), org]);
  const launcher = join(root, 'bin', 'vmmd_tls_inetd');
  // BENCH_NODE_FLAGS="--flag ...": run the launcher with these node flags instead of its shebang's
  const flags = process.env.BENCH_NODE_FLAGS;
  const exe = flags === undefined ? launcher : process.execPath;
  const pre = flags === undefined ? [] : [...flags.split(' ').filter((f) => f !== ''), launcher];
  // BENCH_NODE_ENV="VAR=value ...": more environment for the handler
  const extraEnv = Object.fromEntries((process.env.BENCH_NODE_ENV ?? '').split(' ').filter((v) => v.includes('=')).map((v) => v.split('=', 2)));
  const rounds = 5;
  const tlsRss: number[] = [];
  const localRss: number[] = [];
  const tlsPriv: number[] = [];
  const localPriv: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // TLS
    const srv = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    let child: ChildProcess | undefined;
    srv.on('connection', (sock) => { child = spawn(exe, [...pre, pki.ca, pki.cert, pki.key, '--quiet', '--tmpdir', dir], { stdio: [sock, sock, 'ignore'], env: { ...process.env, ...extraEnv } }); sock.destroy(); });
    const c = tls.connect({ host: '127.0.0.1', port, cert: readFileSync(files.cert), key: readFileSync(files.key), ca: readFileSync(pki.ca), checkServerIdentity: () => undefined });
    c.on('error', () => {});
    await new Promise((r) => c.once('data', r));
    srv.close();
    await sleep(1500);
    tlsRss.push(rssMb(child?.pid ?? 0));
    tlsPriv.push(privateMb(child?.pid ?? 0));
    c.destroy();
    // local
    const path = join(dir, `local${i}.sock`);
    const lsrv = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((r) => lsrv.listen(path, r));
    let lchild: ChildProcess | undefined;
    lsrv.on('connection', (sock) => { lchild = spawn(exe, [...pre, '--local', '--quiet', '--tmpdir', dir], { stdio: [sock, sock, 'ignore'], env: { ...process.env, ...extraEnv } }); sock.destroy(); });
    const l = net.connect(path);
    l.on('error', () => {});
    l.write(frame(encodeWire(command({ path: ['org'], label: 'web' }, cmd.consoleSubscribe()))));
    await new Promise((r) => l.once('data', r));
    lsrv.close();
    await sleep(1500);
    localRss.push(rssMb(lchild?.pid ?? 0));
    localPriv.push(privateMb(lchild?.pid ?? 0));
    l.destroy();
    await sleep(300);
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`idle: one handler relaying a console subscription, median RSS of ${rounds} (bin/vmmd_tls_inetd, node flags: ${flags ?? readFileSync(launcher, 'utf8').split('\n')[0]})`);
  console.log(`  TLS (nowait) RSS ${med(tlsRss).toFixed(1)} MB, private ${med(tlsPriv).toFixed(1)} MB [${tlsPriv.map((x) => x.toFixed(1)).join(' ')}]`);
  console.log(`  --local      RSS ${med(localRss).toFixed(1)} MB, private ${med(localPriv).toFixed(1)} MB [${localPriv.map((x) => x.toFixed(1)).join(' ')}]`);
  const bare = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)'], { stdio: 'ignore' });
  await sleep(1000);
  console.log(`  bare node -e: RSS ${rssMb(bare.pid ?? 0).toFixed(1)} MB, private ${privateMb(bare.pid ?? 0).toFixed(1)} MB (the rest of RSS is node's own code, shared by all its processes)`);
  bare.kill();
  await peer.close();
}

async function main(): Promise<void> {
  const what = process.argv[2];
  const dir = mkdtempSync(join(tmpdir(), 'albatross-flood-'));
  try {
    if (what === undefined || what === 'idle') await idleHandlers(join(dir));
    if (what === undefined || what === 'upload') {
      const d2 = mkdtempSync(join(dir, 'up-'));
      await uploadFlood(d2);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main().then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
