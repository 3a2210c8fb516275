/**
 * vmmd_tls as a daemon (concurrent clients, the connection bound, systemd socket
 * activation) and vmmd_tls_inetd --wait (a listening socket as standard input).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nameToString } from '../src/core/name.js';
import { until } from './helpers/vmmd.js';
import { type Identity, type PkiFiles, cmd, issue, policy, serverPki, writeClient } from './helpers/pki.js';
import { DaemonPeer, handlerBundle, rawFrame, readLog, root, tlsRequest } from './helpers/tls-peer.js';
import { type Command, type Wire, decodeWire, encodeWire } from '../src/core/wire/wire.js';
import { frame, readFrames } from '../src/core/frame.js';

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

for (const workers of [1, 2]) {
  test(`vmmd_tls --workers ${workers}: 16 concurrent clients each get their answer`, async () => {
    const logfile = join(dir, `d1-${workers}.log`);
    const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile, '--workers', String(workers)], { logfile });
    try {
      const received = peer.received.length;
      const results = await Promise.all(Array.from({ length: 16 }, () => tlsRequest(d.port, infoClient, pki.ca)));
      for (const r of results) {
        assert.equal(r.messages.length, 1);
        assert.equal(nameToString(r.messages[0].header.name), 'org:hello');
        assert.equal(r.messages[0].payload.kind, 'reply');
      }
      // one counter per process, interleaved between workers: every message towards vmmd has its own sequence number
      const seqs = peer.received.slice(received).filter((x) => x.socket === 'vmmd').map((x) => x.wire.header.sequence);
      assert.equal(seqs.length, 32);
      assert.equal(new Set(seqs).size, seqs.length);
      // a logout is logged once the client has closed, after its answer
      await until('16 logouts logged', () => (readLog(logfile).match(/logout /g) ?? []).length === 16);
      if (workers > 1) assert.match(readLog(logfile), new RegExp(`listening on 127\\.0\\.0\\.1:${d.port} \\(protocol version 5, 0 CRLs, ${workers} workers, each at most 32 connections, 64 handshakes, 16 per address, 512 MB of uploads\\)`));
    } finally {
      await d.stop();
    }
  });
}

test('vmmd_tls: the policies and the command reach vmmd in one write, before any answer', async () => {
  // a vmmd stand-in of its own that answers nothing until it has seen what arrives
  const own = mkdtempSync(join(tmpdir(), 'albatross-pipe-'));
  mkdirSync(join(own, 'util'));
  let seen: Wire[] = [];
  const server = net.createServer((s) => {
    const chunks: Buffer[] = [];
    s.on('data', (b: Buffer) => chunks.push(b));
    s.on('error', () => {});
    setTimeout(() => {
      seen = readFrames(new Uint8Array(Buffer.concat(chunks))).frames.map((f) => decodeWire(f)).filter((w) => w.ok).map((w) => (w as { value: Wire }).value);
      // refuse the policy and close, as vmmd does
      s.end(Buffer.from(frame(encodeWire({ header: seen[0].header, payload: { kind: 'failure', value: 'policy refused' } }))));
    }, 300);
  });
  await new Promise<void>((r) => server.listen(join(own, 'util', 'vmmd.sock'), r));
  const logfile = join(own, 'd.log');
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', own, '--logfile', logfile, '--workers', '1'], { logfile });
  try {
    const r = await tlsRequest(d.port, infoClient, pki.ca);
    assert.deepEqual(seen.map((w) => (w.payload.kind === 'command' ? w.payload.value.kind : w.payload.kind)), ['policy', 'unikernel']);
    assert.deepEqual(r.messages.map((m) => m.payload), [{ kind: 'failure', value: 'expected success when adding policy, got: failure "policy refused"' }]);
  } finally {
    await d.stop();
    server.close();
    rmSync(own, { recursive: true, force: true });
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

test('vmmd_tls: connections beyond --max-connections are closed after their handshake', async () => {
  const logfile = join(dir, 'd2.log');
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile, '--max-connections', '1', '--workers', '1'], { logfile });
  try {
    // a subscription holds the one slot
    const held = tls.connect({ host: '127.0.0.1', port: d.port, cert: readFileSync(subClient.cert), key: readFileSync(subClient.key), ca: readFileSync(pki.ca), checkServerIdentity: () => undefined });
    held.on('error', () => {});
    await new Promise((r) => held.once('data', r));
    const second = await tlsRequest(d.port, infoClient, pki.ca);
    assert.deepEqual(second.messages, []);
    assert.match(readLog(logfile), /refused: 1 connections past the TLS handshake already \(limit 1\)/);
    held.destroy();
    // the slot is free again once the subscription is gone, and after each answered request
    await until('the subscription to end', () => /logout .*org:web console subscribe/.test(readLog(logfile)));
    for (let i = 0; i < 3; i++) assert.equal((await tlsRequest(d.port, infoClient, pki.ca)).messages.length, 1);
  } finally {
    await d.stop();
  }
});

test('vmmd_tls --workers 2: --max-connections is shared between the workers, and their sum is never exceeded', async () => {
  const logfile = join(dir, 'd2w.log');
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile, '--max-connections', '2', '--workers', '2'], { logfile });
  const subs: tls.TLSSocket[] = [];
  try {
    // 3 subscriptions for 2 workers with 1 slot each: at most 2 are served, one worker refuses one
    let served = 0;
    for (let i = 0; i < 3; i++) {
      const s = tls.connect({ host: '127.0.0.1', port: d.port, cert: readFileSync(subClient.cert), key: readFileSync(subClient.key), ca: readFileSync(pki.ca), checkServerIdentity: () => undefined });
      s.on('error', () => {});
      subs.push(s);
      const got = await new Promise<boolean>((r) => { s.once('data', () => r(true)); s.once('close', () => r(false)); });
      if (got) served++;
    }
    assert.ok(served <= 2, `${served} subscriptions served with --max-connections 2`);
    await until('a refusal at the share of one worker', () => /refused: 1 connections past the TLS handshake already \(limit 1\)/.test(readLog(logfile)));
    for (const s of subs) s.destroy();
    await until('the subscriptions to end', () => (readLog(logfile).match(/logout .*org:web console subscribe/g) ?? []).length === served);
    for (let i = 0; i < 4; i++) assert.equal((await tlsRequest(d.port, infoClient, pki.ca)).messages.length, 1);
  } finally {
    for (const s of subs) s.destroy();
    await d.stop();
  }
});

test('vmmd_tls --workers 2 with a cap below 2 runs one worker', async () => {
  const logfile = join(dir, 'd2one.log');
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile, '--max-connections', '1', '--workers', '2'], { logfile });
  try {
    assert.match(readLog(logfile), /--workers 2: 1 workers, as a cap smaller than 2 cannot be shared/);
    assert.equal((await tlsRequest(d.port, infoClient, pki.ca)).messages.length, 1);
  } finally {
    await d.stop();
  }
});

/**
 * Keeps `idle` connections that never start a handshake and `slow` ones that trickle a
 * ClientHello in (one byte every 200 ms) open from `from` to the port, reopening each
 * as soon as the server closes it, until stop() is called.
 */
function flood(port: number, from: string, idle: number, slow: number): { stop(): Promise<void>; opened(): number; connected(): number } {
  let running = true;
  let opened = 0;
  let connected = 0;
  const live = new Set<net.Socket>();
  // the start of a TLS record of a ClientHello: enough for the server to wait for more
  const hello = Buffer.from('16030100f4010000f00303' + '00'.repeat(64), 'hex');
  const open = (trickle: boolean): void => {
    if (!running) return;
    opened++;
    const s = net.connect({ host: '127.0.0.1', port, localAddress: from });
    s.once('connect', () => connected++);
    live.add(s);
    let timer: NodeJS.Timeout | undefined;
    if (trickle) {
      let i = 0;
      s.once('connect', () => {
        timer = setInterval(() => { if (i < hello.length) s.write(hello.subarray(i, ++i)); }, 200);
      });
    }
    s.on('error', () => {});
    s.on('close', () => {
      if (timer !== undefined) clearInterval(timer);
      live.delete(s);
      // refused connections come back at once: reopen after a breath, not in a busy loop
      setTimeout(() => open(trickle), 50);
    });
  };
  for (let i = 0; i < idle; i++) open(false);
  for (let i = 0; i < slow; i++) open(true);
  return {
    opened: () => opened,
    connected: () => connected,
    stop: async () => {
      running = false;
      for (const s of live) s.destroy();
      await new Promise((r) => setTimeout(r, 100));
    },
  };
}

for (const workers of [1, 2]) test(`vmmd_tls --workers ${workers}: a flood of idle and slowly handshaking connections from one address does not keep authenticated clients out`, async () => {
  const logfile = join(dir, `flood-${workers}.log`);
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile, '--handshake-timeout', '2', '--workers', String(workers)], { logfile });
  // each worker admits the whole cap of 16 handshakes per address (perWorker)
  const perAddress = 16;
  // 70 idle (more than the 64 connections of --max-connections) and 10 trickling a handshake, from 127.0.0.2
  const f = flood(d.port, '127.0.0.2', 70, 10);
  try {
    await until('the flood to connect', () => f.connected() >= 80);
    // real clients from 127.0.0.1, one after another while the flood goes on, past the handshake deadline
    const start = Date.now();
    let served = 0;
    while (served < 8 || Date.now() - start < 3000) {
      const r = await tlsRequest(d.port, infoClient, pki.ca, { timeoutMs: 10_000 });
      assert.equal(r.messages.length, 1, `request ${served + 1} during the flood: ${r.error ?? 'no answer'}`);
      assert.equal(r.messages[0].payload.kind, 'reply');
      served++;
    }
    assert.ok(f.opened() > 80, 'the flood reopened its connections');
    assert.match(readLog(logfile), new RegExp(`127\\.0\\.0\\.2:\\d+: refused: ${perAddress} connections from 127\\.0\\.0\\.2 already in the TLS handshake \\(limit ${perAddress}\\)`));
    // one line per worker, then one sum every 10 s, not a line per refused connection
    const lines = (readLog(logfile).match(new RegExp(`refused: ${perAddress} connections from`, 'g')) ?? []).length;
    assert.ok(lines * 10 < f.opened() - 80, `${lines} log lines for ${f.opened() - 80} reopened connections`);
    // the slow ones were cut off at the handshake deadline although they kept sending
    assert.match(readLog(logfile), /127\.0\.0\.2:\d+: TLS handshake failed: no TLS handshake within 2000 ms/);
  } finally {
    await f.stop();
    await d.stop();
  }
});

test('vmmd_tls: with --max-handshakes reached, a newcomer closes the oldest handshake of the busiest address', async () => {
  const logfile = join(dir, 'evict.log');
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile,
    '--max-handshakes', '4', '--max-handshakes-per-address', '3', '--workers', '1'], { logfile });
  const idle: net.Socket[] = [];
  try {
    for (const [from, n] of [['127.0.0.2', 3], ['127.0.0.3', 1]] as const) {
      for (let i = 0; i < n; i++) {
        const s = net.connect({ host: '127.0.0.1', port: d.port, localAddress: from });
        s.on('error', () => {});
        await new Promise((r) => s.once('connect', r));
        idle.push(s);
      }
    }
    // all 4 handshake slots are taken; a client from a third address takes the oldest of 127.0.0.2 (which has the most)
    const r = await tlsRequest(d.port, infoClient, pki.ca);
    assert.equal(r.messages.length, 1, r.error);
    assert.match(readLog(logfile), /127\.0\.0\.2:\d+: closed during the TLS handshake to make room: .*\(limit 4\)/);
    // 127.0.0.2 holds 2 now: one more fits (3 of 3), the next is refused by the per-address cap
    const more: net.Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const s = net.connect({ host: '127.0.0.1', port: d.port, localAddress: '127.0.0.2' });
      s.on('error', () => {});
      more.push(s);
      await new Promise((r) => s.once('connect', r));
    }
    idle.push(...more);
    await until('the per-address cap', () => /127\.0\.0\.2:\d+: refused: 3 connections from 127\.0\.0\.2 already in the TLS handshake \(limit 3\)/.test(readLog(logfile)));
  } finally {
    for (const s of idle) s.destroy();
    await d.stop();
  }
});

/** A client whose leaf says `create` with an empty image of `memory` MB: the image follows the handshake. */
async function uploadClient(label: string, memory: number): Promise<{ cert: string; key: string }> {
  const create = { kind: 'unikernel', value: { kind: 'create', value: {
    typ: 'solo5', compressed: false, image: new Uint8Array(0), addName: true,
    failBehaviour: { kind: 'quit', value: null }, cpuids: [0], memory, blocks: [], bridges: [], cpus: 1,
  } } } as Command;
  return writeClient(dir, label, [await issue(org, { cn: label, command: create }), org]);
}

/** A TLS connection with a client chain, open until destroyed. */
async function openTls(port: number, client: { cert: string; key: string }): Promise<tls.TLSSocket> {
  const s = tls.connect({ host: '127.0.0.1', port, cert: readFileSync(client.cert), key: readFileSync(client.key), ca: readFileSync(pki.ca), checkServerIdentity: () => undefined });
  s.on('error', () => {});
  await new Promise((r) => s.once('secureConnect', r));
  return s;
}

const rssKb = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

test('vmmd_tls: an uploaded image reaches vmmd intact, and an upload in progress is not held in memory', async () => {
  const logfile = join(dir, 'up1.log');
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile, '--workers', '1'], { logfile });
  try {
    const client = await uploadClient('img', 512);
    // 3 MB in uneven chunks: the lengths around the image in the command grow to 3 octets
    const image = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => i % 251);
    const chunks = [image.subarray(0, 1000), image.subarray(1000, 2_000_000), image.subarray(2_000_000)].map(rawFrame);
    const received = peer.received.length;
    const r = await tlsRequest(d.port, client, pki.ca, { send: [...chunks, new Uint8Array(4)] });
    assert.equal(r.messages.length, 1, r.error);
    assert.equal(r.messages[0].payload.kind, 'reply');
    const sent = peer.received.slice(received).find((x) => x.wire.payload.kind === 'command' && x.wire.payload.value.kind === 'unikernel');
    const cmd = sent?.wire.payload.kind === 'command' ? sent.wire.payload.value : undefined;
    assert.ok(cmd?.kind === 'unikernel' && cmd.value.kind === 'create');
    assert.deepEqual((cmd.value.value as { image: Uint8Array }).image, image);

    // 160 MB without the end marker: vmmd_tls must not grow by the upload
    const pid = d.proc.pid ?? 0;
    const before = rssKb(pid);
    const s = await openTls(d.port, client);
    const mb = rawFrame(new Uint8Array(1024 * 1024).fill(7));
    for (let i = 0; i < 160; i++) if (!s.write(mb)) await new Promise((res) => s.once('drain', res));
    await new Promise<void>((res) => s.write(new Uint8Array(0), () => res()));
    await new Promise((res) => setTimeout(res, 1000));
    const grown = (rssKb(pid) - before) / 1024;
    s.destroy();
    assert.ok(grown < 80, `vmmd_tls grew by ${grown.toFixed(0)} MB during a 160 MB upload`);
  } finally {
    await d.stop();
  }
});

test('vmmd_tls: an upload larger than the unikernel\'s memory is refused on its announced length, before its body', async () => {
  const logfile = join(dir, 'up2.log');
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile], { logfile });
  try {
    const client = await uploadClient('small', 1);
    // a chunk announcing 2 MiB of which only 10 octets are sent
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 2 * 1024 * 1024);
    const r = await tlsRequest(d.port, client, pki.ca, { send: [header, new Uint8Array(10)], timeoutMs: 10_000 });
    assert.equal(r.messages.length, 1, r.error);
    const p = r.messages[0].payload;
    assert.equal(p.kind, 'failure');
    assert.equal(p.value, 'image upload refused: image upload of more than 2097152 bytes exceeds the 1 MB of memory the unikernel may have');
    // a client that goes on sending its upload still reads the refusal (no reset before it)
    const rest = rawFrame(new Uint8Array(1024 * 1024));
    const r2 = await tlsRequest(d.port, client, pki.ca, { send: [rawFrame(new Uint8Array(2 * 1024 * 1024)), ...Array<Uint8Array>(16).fill(rest)], timeoutMs: 10_000 });
    assert.equal(r2.messages.length, 1, r2.error);
    assert.equal(r2.messages[0].payload.kind, 'failure');
  } finally {
    await d.stop();
  }
});

test('vmmd_tls: uploads in progress together hold at most --max-uploads-held', async () => {
  const logfile = join(dir, 'up3.log');
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile, '--max-uploads-held', '3', '--workers', '1'], { logfile });
  try {
    const client = await uploadClient('budget', 64);
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 2 * 1024 * 1024);
    // the first upload announces 2 MiB and stops after 10 octets
    const first = await openTls(d.port, client);
    first.write(header);
    first.write(new Uint8Array(10));
    await until('the first upload to start', () => /login .*org:budget/.test(readLog(logfile)));
    await new Promise((r) => setTimeout(r, 300));
    const second = await tlsRequest(d.port, client, pki.ca, { send: [header, new Uint8Array(10)], timeoutMs: 10_000 });
    assert.equal(second.messages.length, 1, second.error);
    assert.equal(second.messages[0].payload.value, 'image upload refused: the image uploads in progress hold 2097152 bytes, 2097152 more would exceed the limit of 3145728 bytes');
    // once the first is gone, its share is free again
    first.destroy();
    await until('the first upload to end', () => /aborted: connection closed before the end of the image upload/.test(readLog(logfile)));
    const third = await tlsRequest(d.port, client, pki.ca, { send: [rawFrame(new Uint8Array(2 * 1024 * 1024)), new Uint8Array(4)] });
    assert.equal(third.messages.length, 1, third.error);
    assert.equal(third.messages[0].payload.kind, 'reply');
  } finally {
    await d.stop();
  }
});

test('vmmd_tls --workers 2: each worker holds its share of --max-uploads-held', async () => {
  const logfile = join(dir, 'up4.log');
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile, '--max-uploads-held', '2', '--workers', '2'], { logfile });
  try {
    const client = await uploadClient('share', 64);
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 1024 * 1024 + 1);
    // whichever worker takes it: 1 MiB and one octet do not fit its 1 MiB
    for (let i = 0; i < 2; i++) {
      const r = await tlsRequest(d.port, client, pki.ca, { send: [header, new Uint8Array(10)], timeoutMs: 10_000 });
      assert.equal(r.messages.length, 1, r.error);
      assert.equal(r.messages[0].payload.value, 'image upload refused: the image uploads in progress hold 0 bytes, 1048577 more would exceed the limit of 1048576 bytes');
    }
  } finally {
    await d.stop();
  }
});

const childrenOf = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

test('vmmd_tls --workers 2: a worker that dies is replaced, logged, and SIGTERM stops every worker', async () => {
  const logfile = join(dir, 'replace.log');
  const d = await startDaemon([process.execPath, daemonBundle, pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', dir, '--logfile', logfile, '--workers', '2'], { logfile });
  const pid = d.proc.pid ?? 0;
  let workers: number[] = [];
  try {
    const first = childrenOf(pid);
    assert.equal(first.length, 2);
    // both workers die one after the other: the ones that serve now are replacements
    for (const w of first) {
      process.kill(w, 'SIGKILL');
      await until('the replacement to be logged', () => new RegExp(`error: worker ${w} killed by SIGKILL; starting another`).test(readLog(logfile)));
      await until('a replacement that accepts', () => /worker \d+ replaces one that died, and accepts connections/.test(readLog(logfile).split(`worker ${w} killed`)[1] ?? ''));
    }
    workers = childrenOf(pid);
    assert.ok(workers.every((w) => !first.includes(w)));
    const results = await Promise.all(Array.from({ length: 8 }, () => tlsRequest(d.port, infoClient, pki.ca)));
    for (const r of results) assert.equal(r.messages.length, 1, r.error);
    for (const w of workers) assert.match(readLog(logfile), new RegExp(`vmmd_tls\\[${w}\\] info: login`));
  } finally {
    await d.stop();
  }
  for (const w of workers) assert.equal(existsSync(`/proc/${w}/status`) && !/State:\s+Z/.test(readFileSync(`/proc/${w}/status`, 'utf8')), false, `worker ${w} outlived the supervisor`);
});

for (const workers of [1, 2]) test(`vmmd_tls --workers ${workers}: systemd socket activation (fd 3)`, async () => {
  const logfile = join(dir, `d3-${workers}.log`);
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as net.AddressInfo).port;
  const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
  // LISTEN_PID must be the daemon's pid: sh sets it to its own, then execs
  const d = await startDaemon(['/bin/sh', '-c', `LISTEN_PID=$$ LISTEN_FDS=1 exec "${process.execPath}" "${daemonBundle}" "$@"`, 'sh', pki.ca, pki.cert, pki.key, '--systemd-socket-activation', '--tmpdir', dir, '--logfile', logfile, '--workers', String(workers)],
    { stdio: ['ignore', 'ignore', 'ignore', fd], logfile });
  listener.close();
  try {
    assert.match(readLog(logfile), /listening on /);
    for (let i = 0; i < 4; i++) assert.equal((await tlsRequest(port, infoClient, pki.ca)).messages.length, 1);
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
