/**
 * vmmd_tls as a daemon (concurrent clients, the connection bound, systemd socket
 * activation) and vmmd_tls_inetd --wait (a listening socket as standard input).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nameToString } from '../src/core/name.js';
import { until } from './helpers/vmmd.js';
import { type Identity, type PkiFiles, cmd, issue, policy, serverPki, writeClient } from './helpers/pki.js';
import { DaemonPeer, handlerBundle, readLog, root, tlsRequest } from './helpers/tls-peer.js';

const daemonBundle = join(root, 'dist', 'vmmd_tls.js');
let dir: string;
let pki: PkiFiles;
let peer: DaemonPeer;
let org: Identity;
let infoClient: { cert: string; key: string };
let subClient: { cert: string; key: string };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'albatross-tlsd-'));
  pki = await serverPki(dir);
  peer = new DaemonPeer(dir);
  await peer.start();
  org = await issue(pki.root, { cn: 'org', ca: true, command: cmd.policyAdd(policy()) });
  infoClient = writeClient(dir, 'info', [await issue(org, { cn: 'hello', command: cmd.info() }), org]);
  subClient = writeClient(dir, 'sub', [await issue(org, { cn: 'web', command: cmd.consoleSubscribe() }), org]);
});

after(async () => {
  await peer.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Daemon { proc: ChildProcess; port: number; stop(): Promise<void> }

/** Starts a listener-style handler and waits for "listening on ...:PORT" in its log. */
async function startDaemon(argv: string[], opts: { stdio?: (number | 'ignore' | 'pipe')[]; env?: NodeJS.ProcessEnv; logfile: string; port?: number }): Promise<Daemon> {
  const proc = spawn(argv[0], argv.slice(1), { stdio: (opts.stdio ?? ['ignore', 'ignore', 'ignore']) as never, env: { ...process.env, ...opts.env } });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  let port = opts.port ?? 0;
  const end = Date.now() + 10_000;
  while (port === 0) {
    const m = /listening on .*:(\d+)/.exec(readLog(opts.logfile));
    if (m) port = Number(m[1]);
    else if (Date.now() > end || proc.exitCode !== null) throw new Error(`did not start: ${readLog(opts.logfile)}`);
    else await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, port, stop: async () => { if (proc.exitCode === null) proc.kill('SIGTERM'); await exited; } };
}

test('vmmd_tls: 16 concurrent clients each get their answer', async () => {
  const logfile = join(dir, 'd1.log');
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile], { logfile });
  try {
    const results = await Promise.all(Array.from({ length: 16 }, () => tlsRequest(d.port, infoClient, pki.ca)));
    for (const r of results) {
      assert.equal(r.messages.length, 1);
      assert.equal(nameToString(r.messages[0].header.name), 'org:hello');
      assert.equal(r.messages[0].payload.kind, 'reply');
    }
    // one process, one counter: every message towards vmmd has its own sequence number
    const seqs = peer.received.filter((x) => x.socket === 'vmmd').map((x) => x.wire.header.sequence);
    assert.equal(new Set(seqs).size, seqs.length);
    // a logout is logged once the client has closed, after its answer
    await until('16 logouts logged', () => (readLog(logfile).match(/logout /g) ?? []).length === 16);
  } finally {
    await d.stop();
  }
});

test('vmmd_tls: the default address :: accepts IPv4 clients', async () => {
  const logfile = join(dir, 'd4.log');
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--port', '0', '--tmpdir', dir, '--logfile', logfile], { logfile });
  try {
    const r = await tlsRequest(d.port, infoClient, pki.ca);
    assert.equal(r.messages.length, 1);
    assert.match(readLog(logfile), /login ::ffff:127\.0\.0\.1|login \[::ffff:127\.0\.0\.1\]/);
  } finally {
    await d.stop();
  }
});

test('vmmd_tls: connections beyond --max-connections are closed at once', async () => {
  const logfile = join(dir, 'd2.log');
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile, '--max-connections', '1'], { logfile });
  try {
    // a subscription holds the one slot
    const held = tls.connect({ host: '127.0.0.1', port: d.port, cert: readFileSync(subClient.cert), key: readFileSync(subClient.key), ca: readFileSync(pki.ca), checkServerIdentity: () => undefined });
    held.on('error', () => {});
    await new Promise((r) => held.once('data', r));
    const second = await tlsRequest(d.port, infoClient, pki.ca);
    assert.deepEqual(second.messages, []);
    assert.match(readLog(logfile), /dropped: 1 connections already/);
    held.destroy();
  } finally {
    await d.stop();
  }
});

test('vmmd_tls: systemd socket activation (fd 3)', async () => {
  const logfile = join(dir, 'd3.log');
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as net.AddressInfo).port;
  const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
  // LISTEN_PID must be the daemon's pid: sh sets it to its own, then execs
  const d = await startDaemon(['/bin/sh', '-c', `LISTEN_PID=$$ LISTEN_FDS=1 exec "${process.execPath}" "${daemonBundle}" "$@"`, 'sh', pki.ca, pki.cert, pki.key, '--systemd-socket-activation', '--tmpdir', dir, '--logfile', logfile],
    { stdio: ['ignore', 'ignore', 'ignore', fd], logfile });
  listener.close();
  try {
    assert.match(readLog(logfile), /listening on /);
    const r = await tlsRequest(port, infoClient, pki.ca);
    assert.equal(r.messages.length, 1);
  } finally {
    await d.stop();
  }
});

test('vmmd_tls_inetd --wait: a listening socket as standard input, connections one after another, exit when idle', async () => {
  const logfile = join(dir, 'w.log');
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as net.AddressInfo).port;
  const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
  const proc = spawn(process.execPath, [handlerBundle, pki.ca, pki.cert, pki.key, '--wait', '--linger', '1', '--tmpdir', dir, '--logfile', logfile], { stdio: [fd, 'ignore', 'ignore'] });
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  listener.close();
  for (let i = 0; i < 3; i++) {
    const r = await tlsRequest(port, infoClient, pki.ca);
    assert.equal(r.messages.length, 1);
  }
  assert.equal(await exited, 0);
  assert.equal((readLog(logfile).match(/logout /g) ?? []).length, 3);
  assert.match(readLog(logfile), /no connection for 1 s, exiting/);
});

test('vmmd_tls_inetd under systemd Accept=yes: the connection is descriptor 3', async () => {
  const logfile = join(dir, 'sy.log');
  const server = net.createServer({ pauseOnConnect: true }, (sock) => {
    const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
    sock.on('error', () => {});
    const child = spawn('/bin/sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=1 exec "${process.execPath}" "${handlerBundle}" "$@"`, 'sh', pki.ca, pki.cert, pki.key, '--tmpdir', dir, '--logfile', logfile],
      { stdio: ['ignore', 'ignore', 'ignore', fd] });
    child.on('exit', () => server.emit('handled'));
    child.on('error', () => server.emit('handled'));
    sock.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const handled = new Promise((r) => server.once('handled', r));
  const r = await tlsRequest((server.address() as net.AddressInfo).port, infoClient, pki.ca);
  await handled;
  server.close();
  assert.equal(r.messages.length, 1);
  assert.match(readLog(logfile), /logout .*org:hello unikernel info/);
});

test('vmmd_tls_inetd --wait under systemd Accept=no: the listening socket is descriptor 3', async () => {
  const logfile = join(dir, 'sw.log');
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as net.AddressInfo).port;
  const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
  const proc = spawn('/bin/sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=1 exec "${process.execPath}" "${handlerBundle}" "$@"`, 'sh', pki.ca, pki.cert, pki.key, '--wait', '--linger', '1', '--tmpdir', dir, '--logfile', logfile],
    { stdio: ['ignore', 'ignore', 'ignore', fd] });
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  listener.close();
  const r = await tlsRequest(port, infoClient, pki.ca);
  assert.equal(r.messages.length, 1);
  assert.equal(await exited, 0);
});

test('a key that does not belong to the certificate: one log line naming both files, exit 2', () => {
  // infoClient's key is a valid key, but not the server certificate's
  for (const [bundle, extra] of [[daemonBundle, ['--ip', '127.0.0.1', '--port', '0']], [join(root, 'dist', 'vmmd_tls_inetd.js'), []]] as const) {
    const logfile = join(dir, `badkey-${bundle.endsWith('inetd.js') ? 'inetd' : 'daemon'}.log`);
    const r = spawnSync(process.execPath, [bundle, pki.ca, pki.cert, infoClient.key, ...extra, '--tmpdir', dir, '--logfile', logfile], { stdio: 'ignore', timeout: 10_000 });
    assert.equal(r.status, 2, bundle);
    assert.match(readLog(logfile), new RegExp(`cannot use ${pki.cert} / ${infoClient.key}: .*(key values mismatch|KEY_VALUES_MISMATCH)`, 'i'));
  }
});

test('vmmd_tls_inetd started on a terminal or file instead of a socket says so and exits 2', () => {
  for (const args of [[pki.ca, pki.cert, pki.key], ['--local']]) {
    const logfile = join(dir, `nosock-${args.length}.log`);
    const r = spawnSync(process.execPath, [join(root, 'dist', 'vmmd_tls_inetd.js'), ...args, '--tmpdir', dir, '--logfile', logfile], { stdio: 'ignore', timeout: 10_000 });
    assert.equal(r.status, 2);
    assert.match(readLog(logfile), /descriptor 0 is not a socket: run from inetd/);
  }
});

test('an empty CERT or KEY, or a CA file with invalid base64: exit 2 at start-up with one line naming the file, also with -q', () => {
  const empty = join(dir, 'empty.pem');
  writeFileSync(empty, '');
  // one character of the CA's base64 replaced by one base64 does not have
  const lines = pki.root.pem.split('\n');
  lines[2] = `${lines[2].slice(0, 10)}!${lines[2].slice(11)}`;
  const badCa = join(dir, 'bad-base64-ca.pem');
  writeFileSync(badCa, lines.join('\n'));
  const cases = [
    { files: [pki.ca, empty, pki.key], reason: `certificate ${empty}: no PEM certificate (the file is empty)` },
    { files: [pki.ca, pki.cert, empty], reason: `private key ${empty}: no PEM private key (the file is empty)` },
    { files: [badCa, pki.cert, pki.key], reason: `CA certificate ${badCa}: invalid base64 in PEM block 1 (CERTIFICATE)` },
  ];
  for (const c of cases) {
    for (const [bundle, extra] of [[daemonBundle, ['--ip', '127.0.0.1', '--port', '0']], [handlerBundle, []]] as const) {
      const which = bundle === daemonBundle ? 'vmmd_tls' : 'vmmd_tls_inetd';
      const logfile = join(dir, `badfile-${which}.log`);
      rmSync(logfile, { force: true });
      // the old vmmd_tls listened and would run until killed
      const r = spawnSync(process.execPath, [bundle, ...c.files, ...extra, '--tmpdir', dir, '--logfile', logfile], { stdio: 'ignore', timeout: 5_000 });
      assert.equal(r.status, 2, `${which} ${c.reason}`);
      const log = readLog(logfile).trim().split('\n');
      assert.equal(log.length, 1, log.join('\n'));
      assert.ok(log[0].endsWith(c.reason), `${log[0]} should end with ${c.reason}`);
      // quiet: the reason still reaches an operator's standard error (a file here: under
      // inetd standard error is the client's socket and nothing is written there)
      const errFile = join(dir, `badfile-${which}.stderr`);
      const fd = openSync(errFile, 'w');
      const q = spawnSync(process.execPath, [bundle, ...c.files, ...extra, '--tmpdir', dir, bundle === daemonBundle ? '-q' : '--quiet'], { stdio: ['ignore', 'ignore', fd], timeout: 5_000 });
      closeSync(fd);
      assert.equal(q.status, 2, `${which} --quiet ${c.reason}`);
      assert.equal(readLog(errFile), `${which}: error: ${c.reason}\n`);
    }
  }
});

test('vmmd_tls --port 99999 is a usage error (124), not an internal error', () => {
  const r = spawnSync(process.execPath, [daemonBundle, pki.ca, pki.cert, pki.key, '--port', '99999', '-q'], { encoding: 'utf8', timeout: 5_000 });
  assert.equal(r.status, 124, r.stderr);
  assert.equal(r.stderr, 'vmmd_tls: --port: 99999 is not a TCP port (0 to 65535) (see vmmd_tls --help)\n');
});

test('a log line stays one line when the message holds newlines (OpenSSL error texts end in one)', async () => {
  const { fileLogger } = await import('../src/inetd/log.js');
  const logfile = join(dir, 'oneline.log');
  const log = fileLogger('vmmd_tls', logfile);
  log.error('refused: error:0A000412:SSL routines::sslv3 alert bad certificate:SSL alert number 42\n');
  log.info('two\nlines');
  const lines = readLog(logfile).split('\n');
  assert.equal(lines.length, 3);
  assert.match(lines[0], / error: refused: .*SSL alert number 42$/);
  assert.match(lines[1], / info: two lines$/);
});
