/**
 * vmmd on the wire: hostile input while the daemon keeps serving, the recorded upstream 2.7.2
 * requests replayed (answers compared in kind and message), taps on a bridge (in a network
 * namespace of the test's own when root), and the inverted stats connection.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import fc from 'fast-check';
import { connectUnix } from '../src/transport/conn.js';
import { decodeWire, encodeWire, command, type Wire } from '../src/core/wire/wire.js';
import { frame } from '../src/core/frame.js';
import { nameToString } from '../src/core/name.js';
import {
  RealConsole, ask, config, create, describe, destroy, info, livePids, makeRunDir, netnsAvailable, nm, request, startVmmd, until,
} from './helpers/vmmd.js';

/** Sends raw bytes, then waits for the daemon to close; returns what it sent back. */
function raw(sock: string, bytes: Uint8Array, o: { end?: boolean } = {}): Promise<Buffer> {
  return new Promise((resolve) => {
    const s = net.createConnection(sock);
    const got: Buffer[] = [];
    s.on('data', (b) => got.push(b));
    s.on('error', () => {});
    s.on('close', () => resolve(Buffer.concat(got)));
    s.write(bytes, () => {
      if (o.end !== false) s.end();
    });
  });
}

test('hostile input: random frames, a huge length, a slow writer, 100 concurrent clients; vmmd keeps serving', async () => {
  const d = makeRunDir();
  const cp = new RealConsole(d.tmpdir);
  await cp.start();
  const v = await startVmmd(d);
  try {
    assert.equal(await ask(v.sock, 'h:keep', create(config(['--sleep']))), 'ok: created unikernel');
    // random bodies and mutated valid messages: closed without an answer
    const valid = encodeWire(command(nm('h:keep'), info));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })).map(([i, b]) => {
          const m = new Uint8Array(valid);
          m[i] ^= b || 1;
          return m;
        })),
        async (body) => {
          const back = await raw(v.sock, frame(body));
          if (decodeWire(body).ok) return; // a mutation may still be a valid command
          assert.equal(back.length, 0, 'no answer to an undecodable message');
        },
      ),
      { numRuns: 60 },
    );
    // a length beyond the frame limit, a negative length, a truncated frame
    assert.equal((await raw(v.sock, Uint8Array.of(0x7f, 0xff, 0xff, 0xff, 1, 2, 3))).length, 0);
    assert.equal((await raw(v.sock, Uint8Array.of(0xff, 0xff, 0xff, 0xff))).length, 0);
    assert.equal((await raw(v.sock, Uint8Array.of(0, 0, 0, 50, 0x30, 0x10))).length, 0);

    // a slow writer holding a half-sent frame does not block others
    const slow = net.createConnection(v.sock);
    slow.on('error', () => {});
    slow.write(Uint8Array.of(0, 0x10, 0, 0, 0x30));
    // 100 clients at once
    const answers = await Promise.all(Array.from({ length: 100 }, () => request(v.sock, 'h:', info)));
    for (const a of answers) {
      assert.equal(a.length, 1);
      const p = a[0].payload;
      assert.ok(p.kind === 'reply' && p.value.kind === 'unikernel_info');
      assert.deepEqual(p.value.value.map((e) => nameToString(e.name)), [':keep']);
    }
    slow.destroy();
    assert.equal(await ask(v.sock, 'h:keep', destroy), 'ok: destroyed unikernel');
    assert.equal(v.proc.exitCode, null, 'still running');
  } finally {
    await v.stop();
    await cp.stop();
    d.remove();
  }
});

test('stats initial: vmmd answers, then reports running unikernels and later starts and stops over that connection', async () => {
  const d = makeRunDir();
  const cp = new RealConsole(d.tmpdir);
  await cp.start();
  const v = await startVmmd(d);
  try {
    assert.equal(await ask(v.sock, 's:first', create(config(['--sleep']))), 'ok: created unikernel');
    const c = await connectUnix(v.sock);
    assert.ok(c.ok);
    await c.value.writeMessage(command(nm(':'), { kind: 'stats', value: { kind: 'initial', value: null } }, 41n));
    const next = async (): Promise<Wire> => {
      const m = await c.value.readMessage(10_000);
      assert.equal(m.kind, 'message');
      return (m as { wire: Wire }).wire;
    };
    const first = await next();
    assert.equal(describe(first), 'reply empty');
    assert.equal(first.header.sequence, 41n);
    const add1 = await next();
    assert.ok(add1.payload.kind === 'command' && add1.payload.value.kind === 'stats' && add1.payload.value.value.kind === 'add');
    assert.equal(nameToString(add1.header.name), 's:first');
    assert.equal(add1.header.sequence, 42n);
    const pid = add1.payload.value.value.value.pid;
    await until('the tender pid', () => livePids(d).includes(pid));
    await c.value.writeMessage({ header: add1.header, payload: { kind: 'reply', value: { kind: 'string', value: 'added' } } });
    assert.equal(await ask(v.sock, 's:second', create(config(['--exit=0']))), 'ok: created unikernel');
    const add2 = await next();
    assert.equal(nameToString(add2.header.name), 's:second');
    assert.equal(add2.header.sequence, 43n);
    const rm = await next();
    assert.ok(rm.payload.kind === 'command' && rm.payload.value.kind === 'stats' && rm.payload.value.value.kind === 'remove');
    assert.equal(nameToString(rm.header.name), 's:second');
    c.value.close();
    assert.equal(await ask(v.sock, 's:first', destroy), 'ok: destroyed unikernel');
  } finally {
    await v.stop();
    await cp.stop();
    d.remove();
  }
});

const fixtures = path.join(__dirname, '..', '..', 'test', 'fixtures', 'upstream-2.7.2', 'run1');
const netns = netnsAvailable();

test('the recorded upstream 2.7.2 requests get answers of the same kind and message (taps on br0 in a private network namespace)', { skip: netns === undefined ? false : `needs root and network namespaces: ${netns}` }, async () => {
  const d = makeRunDir();
  const cp = new RealConsole(d.tmpdir);
  await cp.start();
  const v = await startVmmd(d, [], { netnsBridges: ['br0'] });
  try {
    for (let i = 1; i <= 21; i++) {
      const req = fs.readFileSync(path.join(fixtures, `vmmd.${i}.000.req.der`));
      const rep = decodeWire(fs.readFileSync(path.join(fixtures, `vmmd.${i}.000.rep.der`)));
      assert.ok(rep.ok);
      const c = await connectUnix(v.sock);
      assert.ok(c.ok);
      await c.value.write(req);
      const m = await c.value.readMessage(20_000);
      c.value.close();
      assert.equal(m.kind, 'message', `request ${i}`);
      const got = (m as { wire: Wire }).wire;
      assert.equal(describe(got), describe(rep.value), `request ${i}`);
      assert.deepEqual(got.header, rep.value.header, `request ${i}: header echoed`);
      if (i === 11) {
        // dept:net has a tap on br0 while it runs (the fake tender prints its devices)
        const line = await cp.waitFor('dept:net', (l) => l.startsWith('net: service0 '));
        assert.match(line, /^net: service0 vmmtap\d+ 00:80:41:[0-9a-f:]{8}$/);
        // upstream's test_net had exited (it refuses --name=) before the next request; ours exits at once
        await until('dept:net stopped', async () => {
          const ws = await request(v.sock, 'dept:net', info);
          const p = ws[0].payload;
          return p.kind === 'reply' && p.value.kind === 'unikernel_info' && p.value.value.length === 0;
        });
        const taps = spawnSync('nsenter', ['-t', String(v.proc.pid), '-n', '-m', 'ip', 'tuntap', 'show'], { encoding: 'utf8' });
        assert.equal(taps.status, 0, taps.stderr);
        assert.doesNotMatch(taps.stdout, /vmmtap/, 'the tap is destroyed when the unikernel stops');
      }
      if (i === 13) {
        // upstream's unikernels had exited before the destroys that follow; ours exit at once too
        await until('blk stopped', async () => {
          const ws = await request(v.sock, ':blk', info);
          const p = ws[0].payload;
          return p.kind === 'reply' && p.value.kind === 'unikernel_info' && p.value.value.length === 0;
        });
      }
    }
  } finally {
    await v.stop();
    await cp.stop();
    d.remove();
  }
});
