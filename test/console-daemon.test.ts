import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { command, encodeWire, type Wire } from '../src/core/wire/wire.js';
import { unwrap } from '../src/core/result.js';
import { parseName, nameToString } from '../src/core/name.js';
import { frame, FrameReader } from '../src/core/frame.js';
import { handlerBundle } from './helpers/tls-peer.js';
import { CLI_DIR, type Daemon, ask, connect, mkfifo, next, openWriter, payloadText, startDaemon, tempDir, waitFor } from './console-helpers.js';

const nm = (s: string) => unwrap(parseName(s));
let dir: string;
let daemon: Daemon;
let sock: string;

before(async () => {
  dir = tempDir('alb-console-');
  fs.mkdirSync(join(dir, 'fifo'));
  sock = join(dir, 'util', 'console.sock');
  daemon = await startDaemon('vmmd_console', ['--tmpdir', dir, '--max-subscribers', '2'], sock);
});
after(async () => {
  await daemon.stop();
  if (process.env.SHOW_STDERR) process.stderr.write(daemon.stderr());
  fs.rmSync(dir, { recursive: true, force: true });
});

const add = (name: string, n = 10n, seq = 1n): Wire => command(nm(name), { kind: 'console', value: { kind: 'add', value: n } }, seq);
const subscribe = (name: string, v: { kind: 'count'; value: number } | { kind: 'since'; value: number }): Wire =>
  command(nm(name), { kind: 'console', value: { kind: 'subscribe', value: v } });
const listInactive = (name: string): Wire => command(nm(name), { kind: 'console', value: { kind: 'list_inactive', value: null } });

function consoleLine(w: Wire): string {
  assert.equal(w.payload.kind, 'data');
  const d = w.payload.value as { kind: string; value: { line: string } };
  assert.equal(d.kind, 'console');
  return d.value.line;
}

test('console add, history by count, live lines, end of file makes the console inactive, re-add reuses the ring', async () => {
  mkfifo(join(dir, 'fifo', 'dept:web'));
  const vmmd = await connect(sock);
  assert.equal(payloadText(await ask(vmmd, add('dept:web', 10n, 1n))), 'reply empty');
  const w = openWriter(join(dir, 'fifo', 'dept:web'));
  fs.writeSync(w, `one\n\n${'x'.repeat(600)}\ntwo\nthr`);
  fs.writeSync(w, 'ee\n');
  // a second subscriber arrives after the lines: history then live
  await waitFor('lines buffered', async () => {
    const c = await connect(sock);
    const r = await ask(c, subscribe('dept:web', { kind: 'count', value: 10 }));
    assert.equal(payloadText(r), 'string subscribed');
    const lines: string[] = [];
    for (;;) {
      const m = await c.readMessage(200);
      if (m.kind !== 'message') break;
      lines.push(consoleLine(m.wire));
    }
    c.close();
    return lines.length === 4;
  });
  const c = await connect(sock);
  const r = await ask(c, subscribe('dept:web', { kind: 'count', value: 2 }));
  assert.equal(r.header.name.label, 'web');
  assert.deepEqual([consoleLine(await next(c)), consoleLine(await next(c))], ['two', 'three']);
  fs.writeSync(w, 'live\n');
  const live = await next(c);
  assert.equal(consoleLine(live), 'live');
  assert.equal(nameToString(live.header.name), 'dept:web');
  assert.equal(live.header.sequence, 0n);
  // since: an early date gives everything buffered, in order
  const c2 = await connect(sock);
  assert.equal(payloadText(await ask(c2, subscribe('dept:web', { kind: 'since', value: -62135596800000 }))), 'string subscribed');
  const all: string[] = [];
  for (let i = 0; i < 5; i++) all.push(consoleLine(await next(c2)));
  assert.deepEqual(all, ['one', `${'x'.repeat(512)} [truncated]`, 'two', 'three', 'live']);
  c2.close();
  fs.closeSync(w);
  // end of file: the console is listed as inactive, relative to the queried path
  await waitFor('inactive', async () => {
    const l = await connect(sock);
    const a = await ask(l, listInactive('dept:'));
    l.close();
    const v = a.payload.kind === 'reply' && a.payload.value.kind === 'consoles' ? a.payload.value.value : [];
    return v.map(nameToString).includes(':web');
  });
  // the subscriber stays subscribed; a re-add reads the FIFO again into the same ring
  assert.equal(payloadText(await ask(vmmd, add('dept:web', 10n, 2n))), 'reply empty');
  const w2 = openWriter(join(dir, 'fifo', 'dept:web'));
  fs.writeSync(w2, 'again\n');
  assert.equal(consoleLine(await next(c)), 'again');
  fs.closeSync(w2);
  c.close();
  vmmd.close();
});

test('console failures: path used instead of name, name used, opening; unknown names wait for the VM', async () => {
  const c = await connect(sock);
  assert.equal(payloadText(await ask(c, add('dept:'))), 'failure path used instead of name');
  assert.equal(payloadText(await ask(c, add(':nofifo'))), 'failure opening');
  fs.writeFileSync(join(dir, 'fifo', ':plain'), 'not a fifo');
  assert.equal(payloadText(await ask(c, add(':plain'))), 'failure opening');
  c.close();
  const s = await connect(sock);
  assert.equal(payloadText(await ask(s, subscribe('dept:', { kind: 'count', value: 1 }))), 'failure path used instead of name');
  s.close();
  const l = await connect(sock);
  assert.equal(payloadText(await ask(l, listInactive('dept:web'))), 'failure name used');
  l.close();
  // waiting for VM, then live lines once it starts
  const wsub = await connect(sock);
  const r = await ask(wsub, subscribe(':later', { kind: 'count', value: 5 }));
  assert.equal(payloadText(r), 'string waiting for VM');
  mkfifo(join(dir, 'fifo', ':later'));
  const v = await connect(sock);
  assert.equal(payloadText(await ask(v, add(':later'))), 'reply empty');
  const w = openWriter(join(dir, 'fifo', ':later'));
  fs.writeSync(w, 'booted\n');
  assert.equal(consoleLine(await next(wsub)), 'booted');
  fs.closeSync(w);
  wsub.close();
  v.close();
});

/** Gives the console of `name` one line and lets its tender "exit" (end of file): the console becomes inactive. */
async function inactiveConsole(name: string, line: string): Promise<void> {
  mkfifo(join(dir, 'fifo', name));
  const v = await connect(sock);
  assert.equal(payloadText(await ask(v, add(name))), 'reply empty');
  v.close();
  const w = openWriter(join(dir, 'fifo', name));
  fs.writeSync(w, `${line}\n`);
  fs.closeSync(w);
}

async function inactiveAt(path: string, via = sock): Promise<string[]> {
  const l = await connect(via);
  const a = await ask(l, listInactive(path));
  l.close();
  assert.ok(a.payload.kind === 'reply' && a.payload.value.kind === 'consoles', payloadText(a));
  return (a.payload.value.value as Parameters<typeof nameToString>[0][]).map(nameToString).sort();
}

test('list-inactive at acme: leaves out the unikernel :acme (same trie key, root path); subscribe tells acme: from :acme', async () => {
  await inactiveConsole(':acme', 'root unikernel');
  await inactiveConsole('acme:db', 'acme unikernel');
  await inactiveConsole('acme:sub:x', 'deeper');
  await waitFor('the three inactive', async () => (await inactiveAt(':')).filter((n) => n.includes('acme')).length === 3);
  assert.deepEqual((await inactiveAt(':')).filter((n) => n.includes('acme')), [':acme', 'acme:db', 'acme:sub:x']);
  // relative to the queried path; `:acme` (upstream lists it as `:`) is not in acme:
  assert.deepEqual(await inactiveAt('acme:'), [':db', 'sub:x']);
  assert.deepEqual(await inactiveAt('acme:sub:'), [':x']);
  // a subscription is by name: the path acme: is refused, the unikernel :acme is its own console
  const p = await connect(sock);
  assert.equal(payloadText(await ask(p, subscribe('acme:', { kind: 'count', value: 5 }))), 'failure path used instead of name');
  p.close();
  const u = await connect(sock);
  const r = await ask(u, subscribe(':acme', { kind: 'count', value: 5 }));
  assert.equal(payloadText(r), 'string subscribed');
  const line = await next(u);
  assert.equal(nameToString(line.header.name), ':acme');
  assert.equal(consoleLine(line), 'root unikernel');
  const more = await u.readMessage(200);
  assert.equal(more.kind, 'error', 'only the one line of :acme (read timed out)');
  u.close();
});

test('vmmd_tls_inetd --local --path acme: list-inactive through the handler leaves out :acme', async () => {
  const local = join(dir, 'local.sock');
  const logfile = join(dir, 'local.log');
  const server = net.createServer({ pauseOnConnect: true }, (s) => {
    const child = spawn(process.execPath, [handlerBundle, '--local', '--path', 'acme', '--tmpdir', dir, '--logfile', logfile], { stdio: [s, s, 'ignore'] });
    child.on('exit', () => server.emit('handled'));
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(local, r));
  try {
    await waitFor('inactive', async () => (await inactiveAt(':')).includes('acme:db'));
    const handled = new Promise((r) => server.once('handled', r));
    assert.deepEqual(await inactiveAt('acme:', local), [':db', 'sub:x']);
    await handled;
  } finally {
    server.close();
  }
});

test('at most --max-subscribers subscribers per unikernel: the oldest is closed', async () => {
  const subs = [];
  for (let i = 0; i < 3; i++) {
    const c = await connect(sock);
    assert.equal(payloadText(await ask(c, subscribe(':crowd', { kind: 'count', value: 1 }))), 'string waiting for VM');
    subs.push(c);
  }
  const first = await subs[0].readMessage(5000);
  assert.equal(first.kind, 'end', 'the oldest subscriber was closed');
  const second = await subs[1].readMessage(200);
  assert.equal(second.kind, 'error', 'the second one is still open (read timed out)');
  for (const s of subs) s.close();
});

test('malformed requests close that connection only; the daemon keeps serving', async () => {
  const raw = await new Promise<net.Socket>((resolve) => {
    const s = net.createConnection({ path: sock }, () => resolve(s));
  });
  raw.write(frame(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x05])));
  await new Promise((resolve) => raw.once('close', resolve));
  const huge = await new Promise<net.Socket>((resolve) => {
    const s = net.createConnection({ path: sock }, () => resolve(s));
  });
  const len = Buffer.alloc(4);
  len.writeUInt32BE(100 * 1024 * 1024);
  huge.write(len);
  await new Promise((resolve) => huge.once('close', resolve));
  // a non-console command
  const c = await connect(sock);
  const r = await ask(c, command(nm(':x'), { kind: 'stats', value: { kind: 'subscribe', value: null } }));
  assert.equal(payloadText(r), 'failure unexpected command');
  c.close();
  const l = await connect(sock);
  assert.equal(await ask(l, listInactive(':')).then((m) => m.payload.kind), 'reply');
  l.close();
});

test('a subscriber that never reads is dropped; a reading subscriber gets every line of a flood', async () => {
  mkfifo(join(dir, 'fifo', ':flood'));
  const v = await connect(sock);
  assert.equal(payloadText(await ask(v, add(':flood'))), 'reply empty');
  // the stalled subscriber: a raw socket that is never read
  const stalled = net.createConnection({ path: sock });
  stalled.pause();
  stalled.write(frame(encodeWire(subscribe(':flood', { kind: 'count', value: 0 }))));
  const reader = await connect(sock);
  assert.equal(payloadText(await ask(reader, subscribe(':flood', { kind: 'count', value: 0 }))), 'string subscribed');
  // 20 MB of 100-byte lines from another process, as a unikernel would write them
  const lines = 200_000;
  const writer = spawn('sh', ['-c', `yes ${'y'.repeat(99)} | head -n ${lines} > "$1"`, 'sh', join(dir, 'fifo', ':flood')]);
  const writerDone = new Promise((resolve) => writer.once('exit', resolve));
  let got = 0;
  const fr = new FrameReader();
  const sockR = reader.stream;
  const stalledClosed = new Promise((resolve) => stalled.once('close', resolve));
  await new Promise<void>((resolve, reject) => {
    sockR.on('data', (d: Buffer) => {
      fr.push(d);
      for (let f = fr.next(); f.kind === 'frame'; f = fr.next()) got++;
      if (got >= lines) resolve();
    });
    sockR.on('close', () => reject(new Error(`reader closed after ${got} lines`)));
    sockR.resume();
  });
  assert.equal(got, lines);
  await waitFor('the stalled subscriber dropped', () => /dropping a subscriber of :flood/.test(daemon.stderr()));
  // the stalled client sees its connection closed once it reads again
  stalled.resume();
  await stalledClosed;
  assert.match(daemon.stderr(), /dropping a subscriber of :flood: it stopped reading/);
  assert.equal(daemon.stderr().match(/dropping a subscriber of :flood/g)?.length, 1, 'only the stalled subscriber was dropped');
  await writerDone;
  stalled.destroy();
  reader.close();
  v.close();
});

test('a 100 MB flood of over-long lines: every line cut at 512 bytes, memory bounded, the daemon keeps serving', async (t) => {
  mkfifo(join(dir, 'fifo', ':longflood'));
  const v = await connect(sock);
  assert.equal(payloadText(await ask(v, add(':longflood'))), 'reply empty');
  const reader = await connect(sock);
  assert.equal(payloadText(await ask(reader, subscribe(':longflood', { kind: 'count', value: 0 }))), 'string subscribed');
  // 100,000 lines of 1,000 bytes: each is cut, the rest discarded
  const lines = 100_000;
  const started = Date.now();
  const writer = spawn('sh', ['-c', `yes ${'z'.repeat(999)} | head -n ${lines} > "$1"`, 'sh', join(dir, 'fifo', ':longflood')]);
  const writerDone = new Promise((resolve) => writer.once('exit', resolve));
  let got = 0;
  let bad = 0;
  const fr = new FrameReader();
  const want = `${'z'.repeat(512)} [truncated]`;
  await new Promise<void>((resolve, reject) => {
    reader.stream.on('data', (d: Buffer) => {
      fr.push(d);
      for (let f = fr.next(); f.kind === 'frame'; f = fr.next()) {
        got++;
        // the line is the last UTF8String of the frame
        if (!Buffer.from(f.body.subarray(f.body.length - want.length)).equals(Buffer.from(want))) bad++;
      }
      if (got >= lines) resolve();
    });
    reader.stream.on('close', () => reject(new Error(`reader closed after ${got} lines`)));
    reader.stream.resume();
  });
  t.diagnostic(`100 MB of 1,000-byte lines through the FIFO in ${Date.now() - started} ms`);
  assert.equal(got, lines);
  assert.equal(bad, 0);
  await writerDone;
  const rss = Number(/^VmRSS:\s*(\d+) kB$/m.exec(fs.readFileSync(`/proc/${daemon.proc.pid}/status`, 'utf8'))?.[1]);
  t.diagnostic(`daemon RSS after the flood: ${Math.round(rss / 1024)} MB`);
  assert.ok(rss < 400 * 1024, `daemon RSS ${rss} kB`);
  const l = await connect(sock);
  assert.equal((await ask(l, listInactive(':'))).payload.kind, 'reply');
  l.close();
  reader.close();
  v.close();
});

test('1,000 unikernels coming and going: rings stay bounded per path and in total', async () => {
  const v = await connect(sock);
  const names = Array.from({ length: 1000 }, (_, i) => `t${i % 10}:u${i}`);
  execFileSync('mkfifo', names.map((n) => join(dir, 'fifo', n)));
  for (let i = 0; i < 1000; i++) {
    const n = names[i];
    assert.equal(payloadText(await ask(v, add(n, 3n, BigInt(i + 10)))), 'reply empty');
    const w = openWriter(join(dir, 'fifo', n));
    fs.writeSync(w, `hello from ${n}\n`);
    fs.closeSync(w);
  }
  v.close();
  await waitFor('all inactive', async () => {
    const l = await connect(sock);
    const a = await ask(l, listInactive(':'));
    l.close();
    const names = a.payload.kind === 'reply' && a.payload.value.kind === 'consoles' ? a.payload.value.value : [];
    const ofT = names.filter((x) => x.path[0]?.startsWith('t'));
    if (ofT.length !== 30) return false;
    // three per path: each path t0..t9 keeps its n = 3 rings
    for (let p = 0; p < 10; p++) assert.equal(ofT.filter((x) => x.path[0] === `t${p}`).length, 3);
    return true;
  }, 20000);
});

test('--systemd-socket-activation: serves on the socket passed as fd 3', async () => {
  const sdir = tempDir('alb-console-sd-');
  const path = join(sdir, 'passed.sock');
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(path, r));
  const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
  const proc = spawn('/bin/sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=1 exec "${process.execPath}" "$@"`, 'sh',
    join(CLI_DIR, 'vmmd_console.js'), '--systemd-socket-activation', '--tmpdir', sdir], { stdio: ['ignore', 'ignore', 'pipe', fd] });
  let errText = '';
  proc.stderr?.on('data', (b: Buffer) => (errText += b.toString()));
  const exited = new Promise((r) => proc.once('exit', r));
  try {
    await waitFor('listening', () => /listening on systemd socket/.test(errText));
    // closing our listener unlinks its path: a second name for the same socket stays
    fs.linkSync(path, join(sdir, 'alias.sock'));
    listener.close();
    const c = await connect(join(sdir, 'alias.sock'));
    assert.equal(payloadText(await ask(c, listInactive(':'))), 'reply consoles');
    c.close();
    assert.ok(!fs.existsSync(join(sdir, 'util', 'console.sock')), 'no socket of its own');
  } finally {
    proc.kill('SIGTERM');
    await exited;
    fs.rmSync(sdir, { recursive: true, force: true });
  }
});

test('--max-connections: connections beyond the limit are closed at once and logged', async () => {
  const cdir = tempDir('alb-console-cap-');
  const csock = join(cdir, 'util', 'console.sock');
  const c = await startDaemon('vmmd_console', ['--tmpdir', cdir, '--max-connections', '2'], csock);
  try {
    const held = [await connect(csock), await connect(csock)];
    for (const h of held) assert.equal(payloadText(await ask(h, subscribe(':x', { kind: 'count', value: 1 }))), 'string waiting for VM');
    const third = await connect(csock);
    await third.writeMessage(listInactive(':')).catch(() => undefined);
    const r = await third.readMessage(5000);
    assert.notEqual(r.kind, 'message', 'no answer beyond the limit');
    await waitFor('logged', () => /connection refused: 2 connections already open/.test(c.stderr()));
    held[0].close();
    await waitFor('served again', async () => {
      const again = await connect(csock);
      const a = await again.writeMessage(listInactive(':')).then(() => again.readMessage(1000), () => ({ kind: 'end' as const }));
      again.close();
      return a.kind === 'message';
    });
    held[1].close();
  } finally {
    await c.stop();
    fs.rmSync(cdir, { recursive: true, force: true });
  }
});
