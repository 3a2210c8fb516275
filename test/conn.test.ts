import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FramedConn, connectUnix } from '../src/transport/conn.js';
import { frame } from '../src/core/frame.js';

test('FramedConn reads frames split arbitrarily, then end of stream', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conn-'));
  const path = join(dir, 's.sock');
  const server = net.createServer((s) => {
    const all = Buffer.concat([frame(new Uint8Array([1, 2, 3])), frame(new Uint8Array(70000).fill(7)), new Uint8Array(4), frame(new Uint8Array([9]))]);
    let i = 0;
    const step = (): void => {
      if (i >= all.length) { s.end(); return; }
      s.write(all.subarray(i, i + 1000), step);
      i += 1000;
    };
    step();
  });
  await new Promise<void>((r) => server.listen(path, r));
  const c = await connectUnix(path);
  assert.ok(c.ok);
  const conn = c.value;
  const a = await conn.read();
  assert.deepEqual(a, { kind: 'frame', body: new Uint8Array([1, 2, 3]) });
  const b = await conn.read();
  assert.equal(b.kind, 'frame');
  assert.equal((b as { body: Uint8Array }).body.length, 70000);
  assert.deepEqual(await conn.read(), { kind: 'end', marker: true }); // the raw-chunk end marker
  assert.deepEqual(await conn.read(), { kind: 'frame', body: new Uint8Array([9]) });
  assert.deepEqual(await conn.read(), { kind: 'end' }); // EOF
  conn.close();
  server.close();
});

test('a read times out with an error value; an oversized frame is an error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conn-'));
  const path = join(dir, 's.sock');
  const server = net.createServer((s) => { s.write(Buffer.from([0, 0, 0x10, 0])); });
  await new Promise<void>((r) => server.listen(path, r));
  const c = await connectUnix(path, 1024);
  assert.ok(c.ok);
  const r = await c.value.read(2000);
  assert.equal(r.kind, 'error');
  c.value.close();
  const c2 = await connectUnix(path);
  assert.ok(c2.ok);
  assert.deepEqual(await c2.value.read(50), { kind: 'error', error: 'timed out after 50 ms' });
  c2.value.close();
  server.close();
});

test('connect errors name the socket and the daemon', async () => {
  const r = await connectUnix('/nonexistent/dir/vmmd.sock');
  assert.deepEqual(r, { ok: false, error: 'no socket at /nonexistent/dir/vmmd.sock: is vmmd running?' });
  const dir = mkdtempSync(join(tmpdir(), 'conn-'));
  const s = net.createServer();
  const p = join(dir, 'console.sock');
  await new Promise<void>((res) => s.listen(p, res));
  s.close();
  const r2 = await connectUnix(p);
  assert.equal(r2.ok, false);
  assert.match((r2 as { error: string }).error, /console\.sock: is vmmd_console running\?/);
  void FramedConn;
});
