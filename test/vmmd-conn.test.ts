/**
 * vmmd's command socket under load: frames are admitted at their header (a command without an
 * image is small; large ones share one receive budget over all connections, and a refusal is
 * answered on the wire), a connection must send its first command soon, and at the connection
 * cap an idle connection makes room for a new one. Real vmmd, real sockets, real vmmc_local.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { limits } from '../src/core/limits.js';
import { frame } from '../src/core/frame.js';
import { type Wire, command, encodeWire } from '../src/core/wire/wire.js';
import { FramedConn } from '../src/transport/conn.js';
import { TEST_LIMITS_ENV, type ConnLimits } from '../src/vmmd/daemon.js';
import { RealConsole, ask, config, create, describe, destroy, info, makeRunDir, nm, startVmmd, until, type RunDir, type VmmdProcess } from './helpers/vmmd.js';

const CLIENT = path.join(__dirname, '..', 'src', 'cli', 'vmmc_local.js');

async function withVmmd(lim: Partial<ConnLimits>, f: (v: VmmdProcess, d: RunDir) => Promise<void>): Promise<void> {
  const d = makeRunDir();
  const cp = new RealConsole(d.tmpdir);
  await cp.start();
  const v = await startVmmd(d, [], { env: { [TEST_LIMITS_ENV]: JSON.stringify(lim) } });
  try {
    await f(v, d);
  } finally {
    await v.stop();
    await cp.stop();
    d.remove();
  }
}

function connect(sock: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(sock);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** What the daemon sends back until it closes the connection: its messages, or an error. */
function answers(s: net.Socket, timeoutMs = 30_000): Promise<Wire[]> {
  const c = new FramedConn(s);
  return (async () => {
    const out: Wire[] = [];
    for (;;) {
      const m = await c.readMessage(timeoutMs);
      if (m.kind === 'end') return out;
      if (m.kind === 'error') {
        if (/timed out/.test(m.error)) throw new Error(`no end of the connection: ${m.error}`);
        return out;
      }
      out.push(m.wire);
    }
  })();
}

/**
 * The start of a frame announcing `length` octets of body, whose first octets are `message`
 * (its own DER lengths are those of the short message: vmmd reads only the header and
 * command tags before admitting the frame), padded to `upTo` octets of body.
 */
function frameStart(length: number, message: Uint8Array, upTo: number): Uint8Array {
  const out = new Uint8Array(4 + upTo);
  new DataView(out.buffer).setUint32(0, length);
  out.set(message.subarray(0, upTo), 4);
  return out;
}

const write = (s: net.Socket, b: Uint8Array): Promise<void> => new Promise((r, j) => s.write(b, (e) => (e ? j(e) : r())));

test('a command without an image is refused at its header when longer than limits.vmmdCommandBytes, with a failure naming the limit', async () => {
  await withVmmd({}, async (v) => {
    const s = await connect(v.sock);
    const got = answers(s);
    // only the first 4096 octets of the announced body are ever sent
    await write(s, frameStart(limits.vmmdCommandBytes + 1, encodeWire(command(nm('big:x'), info)), 4096));
    const w = await got;
    assert.equal(w.length, 1);
    assert.equal(describe(w[0]), `fail: unikernel info message of ${limits.vmmdCommandBytes + 1} bytes exceeds the limit of ${limits.vmmdCommandBytes} bytes for a message without an image or block data`);
    assert.equal(w[0].header.name.label, 'x', 'answered with the request header');
    s.destroy();
    assert.match(v.stderr(), /unikernel info message of \d+ bytes exceeds the limit/);
    assert.equal(describe((await answersOf(v.sock, 'big:', info))[0]), 'reply unikernel_info');
  });
});

async function answersOf(sock: string, name: string, cmd: Parameters<typeof command>[1]): Promise<Wire[]> {
  const s = await connect(sock);
  const got = answers(s);
  await write(s, frame(encodeWire(command(nm(name), cmd))));
  return got;
}

test('large frames share limits.vmmdBufferBytes: of three 256 MiB creates being received one is refused on the wire, small commands are served, a closed connection frees its share', async () => {
  // the budget at its real size (reserved at the announced length, never touched); a short idle
  // deadline ends the admitted uploads, which never send their image
  assert.ok(2 * limits.maxFrameBytes <= limits.vmmdBufferBytes && 3 * limits.maxFrameBytes > limits.vmmdBufferBytes);
  await withVmmd({ vmmdIdleMs: 1500 }, async (v) => {
    const start = frameStart(limits.maxFrameBytes, encodeWire(command(nm('flood:u'), create(config([])))), 4096);
    for (let round = 0; round < 2; round++) {
      const socks = await Promise.all([0, 1, 2].map(() => connect(v.sock)));
      const got = socks.map((s) => answers(s));
      for (const s of socks) await write(s, start);
      // while two uploads hold the budget, commands still get answers
      const inf = await answersOf(v.sock, 'flood:', info);
      assert.equal(describe(inf[0]), 'reply unikernel_info');
      const outcomes = (await Promise.all(got)).map((w) => w.map(describe).join(', '));
      const refused = outcomes.filter((o) => o.startsWith('fail: unikernel create message of 268435456 bytes refused: vmmd is receiving 536870912 bytes on other connections'));
      assert.equal(refused.length, 1, `round ${round}: ${outcomes.join(' | ')}`);
      assert.equal(outcomes.filter((o) => o === '').length, 2, 'the two admitted ones are closed at their deadline, unanswered');
      for (const s of socks) s.destroy();
    }
    assert.match(v.stderr(), /did not send the rest of its 268435456-byte unikernel create message within 1500 ms/);
    assert.match(v.stderr(), /refused: vmmd is receiving 536870912 bytes on other connections and buffers at most 536870912/);
    // and a create with its image still works
    assert.equal(await ask(v.sock, 'flood:u', create(config(['--sleep']))), 'ok: created unikernel');
    assert.equal(await ask(v.sock, 'flood:u', destroy), 'ok: destroyed unikernel');
  });
});

function vmmcLocal(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLIENT, ...args], { env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
    });
  });
}

test('limits.vmmdConnections idle connections do not lock out vmmc_local info: the one waiting longest for its first command makes room', async () => {
  // first-command deadline long, so that only the cap is at work
  await withVmmd({ vmmdFirstFrameMs: 600_000 }, async (v, d) => {
    const idle: net.Socket[] = [];
    const closedByVmmd = new Set<number>();
    for (let i = 0; i < limits.vmmdConnections; i++) {
      const s = await connect(v.sock);
      s.on('error', () => {});
      s.on('close', () => closedByVmmd.add(i));
      idle.push(s);
    }
    const r = await vmmcLocal(['info', '--tmpdir', d.tmpdir]);
    assert.equal(r.code, 0, r.stderr);
    await until('the oldest idle connection is closed', () => closedByVmmd.has(0));
    assert.match(v.stderr(), /connection \d+: closed to make room for a new one \(256 connections open; it sent no complete command in \d+ ms\)/);
    for (const s of idle) s.destroy();
  });
});

test('a connection that sends no command within limits.vmmdFirstFrameMs is closed; one receiving an image keeps the longer deadline', async () => {
  await withVmmd({ vmmdFirstFrameMs: 300 }, async (v) => {
    // an image upload (above limits.vmmdCommandBytes) whose first octets arrive at once and the rest later
    const c = config(['--sleep']);
    const image = new Uint8Array(c.image.length + limits.vmmdCommandBytes);
    image.set(c.image);
    const f = frame(encodeWire(command(nm('slow:u'), create({ ...c, image }))));
    const up = await connect(v.sock);
    const upGot = answers(up);
    await write(up, f.subarray(0, 4 + 4096));
    // an idle connection opened after it is closed at its deadline
    const idle = await connect(v.sock);
    const idleGot = answers(idle);
    assert.deepEqual(await idleGot, []);
    assert.match(v.stderr(), /closed, it sent no command within 300 ms/);
    await write(up, f.subarray(4 + 4096));
    assert.deepEqual((await upGot).map(describe), ['ok: created unikernel']);
    assert.equal(await ask(v.sock, 'slow:u', destroy), 'ok: destroyed unikernel');
  });
});
