/**
 * vmmd_web's uploads are streamed, not held in memory: a 160 MB image and 160 MB of block data
 * go through an unlinked temporary file to the real vmmd, and vmmd_web's peak resident memory
 * (VmHWM) grows by far less than their size. A body without Content-Length is cut off at the
 * limit (413), nothing is left in the temporary directory, and a form's fields are bounded.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { type Stack, type WebProcess, call, multipart, startStack, startWeb } from './helpers/web.js';
import { solo5Image } from './helpers/image.js';
import { until } from './helpers/vmmd.js';
import { limits } from '../src/core/limits.js';

const MB = 1024 * 1024;
/**
 * Large enough that holding it would show beyond the garbage of the request's pieces, which
 * the collector takes back in its own time (about 40 MB here, whatever the size).
 */
const SIZE = 160 * MB;
let s: Stack;
let web: WebProcess;
let token: string;
let tmp: string;

const api = (method: string, p: string, o: Parameters<typeof call>[3] = {}) => call(web.url, method, `/api/v1${p}`, o);

/** Resets vmmd_web's peak resident memory to its current one (Linux: 5 to /proc/PID/clear_refs). */
function resetPeak(): void {
  fs.writeFileSync(`/proc/${web.proc.pid}/clear_refs`, '5');
}

/** Peak resident memory of vmmd_web since the last reset, in bytes (Linux: VmHWM of /proc/PID/status). */
function peakRss(): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${web.proc.pid}/status`, 'utf8'));
  assert.ok(m !== null, 'VmHWM in /proc/PID/status');
  return Number(m[1]) * 1024;
}

before(async () => {
  s = await startStack();
  tmp = path.join(s.d.root, 'webtmp');
  fs.mkdirSync(tmp);
  const state = path.join(s.d.root, 'web.json');
  // TMPDIR: where the temporary files go (os.tmpdir())
  process.env.TMPDIR = tmp;
  try {
    web = await startWeb(s.d.tmpdir, state);
  } finally {
    delete process.env.TMPDIR;
  }
  token = (await api('POST', '/tokens', { json: { user: 'admin', password: web.adminPassword } })).json.token;
  // warm: the code of the create and block paths is loaded before the peak is taken
  assert.equal((await api('POST', '/instances/local/unikernels/warm:up?arg=--solo5:quiet&arg=--sleep', { token, body: solo5Image() })).status, 201);
  assert.equal((await api('POST', '/instances/local/blocks/warm:disk?size=1', { token, body: Buffer.alloc(4096, 1) })).status, 201);
});

after(async () => {
  await web?.stop();
  await s?.stop();
});

test(`block data of ${SIZE / MB} MB is streamed to vmmd: vmmd_web's peak RSS grows by far less than its size`, async () => {
  assert.equal((await api('POST', '/instances/local/blocks/big:disk?size=192', { token })).status, 201);
  const data = Buffer.alloc(SIZE, 0xa5);
  data.write('the start', 0);
  resetPeak();
  const before = peakRss();
  const r = await api('PUT', '/instances/local/blocks/big:disk/data', { token, body: data, fresh: true });
  assert.equal(r.status, 200, r.body.toString());
  const grown = peakRss() - before;
  assert.ok(grown < SIZE / 3, `peak RSS grew by ${(grown / MB).toFixed(1)} MB for ${SIZE / MB} MB of block data`);
  const disk = fs.readFileSync(path.join(s.d.dbdir, 'block', 'big:disk'));
  assert.equal(disk.length, 192 * MB);
  assert.ok(disk.subarray(0, SIZE).equals(data), 'the device holds the data');
  assert.equal((await api('DELETE', '/instances/local/blocks/big:disk', { token })).status, 200);
});

test(`an image of ${SIZE / MB} MB (raw body and multipart form) is streamed to vmmd: vmmd_web's peak RSS grows by far less than its size`, async () => {
  const img = solo5Image();
  // a valid image with padding after its sections: the checks read only the headers and notes
  const big = Buffer.concat([Buffer.from(img), Buffer.alloc(SIZE - img.length, 0x5a)]);
  resetPeak();
  const before = peakRss();
  // run after the block test: each is measured on a vmmd_web that has not yet grown
  let r = await api('POST', '/instances/local/unikernels/big:raw?arg=--solo5:quiet&arg=--sleep', { token, body: big, fresh: true });
  assert.equal(r.status, 201, r.body.toString());
  const form = multipart([['arg', '--solo5:quiet'], ['arg', '--sleep']], { field: 'image', filename: 'big.spt', data: big });
  r = await api('POST', '/instances/local/unikernels/big:form', { token, body: form.body, headers: { 'content-type': form.type }, fresh: true });
  assert.equal(r.status, 201, r.body.toString());
  const grown = peakRss() - before;
  assert.ok(grown < SIZE / 3, `peak RSS grew by ${(grown / MB).toFixed(1)} MB for uploads of ${SIZE / MB} MB`);
  // what vmmd got is the image, octet for octet
  r = await api('GET', '/instances/local/unikernels/big:form', { token });
  assert.equal(r.json.digest, (await import('node:crypto')).createHash('sha256').update(big).digest('hex'));
  r = await api('GET', '/instances/local/unikernels/big:raw', { token });
  assert.equal(r.json.digest, (await import('node:crypto')).createHash('sha256').update(big).digest('hex'));
  for (const n of ['big:raw', 'big:form']) assert.equal((await api('DELETE', `/instances/local/unikernels/${n}`, { token })).status, 200);
});

test(`a body without Content-Length is cut off when it passes the limit (${limits.webMaxUploadBytes} bytes): 413; no temporary file is left`, async () => {
  const r = await new Promise<{ status: number; json: { error: string } }>((resolve, reject) => {
    const req = http.request(new URL('/api/v1/instances/local/blocks/warm:disk/data', web.url), {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
    }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(b) }));
    });
    req.on('error', () => undefined);
    const piece = Buffer.alloc(4 * MB, 1);
    let sent = 0;
    const more = (): void => {
      while (sent <= limits.webMaxUploadBytes) {
        sent += piece.length;
        if (!req.write(piece)) {
          req.once('drain', more);
          return;
        }
      }
      req.end();
    };
    more();
    setTimeout(() => reject(new Error('no answer')), 120_000).unref();
  });
  assert.equal(r.status, 413);
  assert.equal(r.json.error, `the block data is larger than the limit of ${limits.webMaxUploadBytes} bytes`);
  // the warm device is unchanged: an incomplete set is not applied
  const disk = fs.readFileSync(path.join(s.d.dbdir, 'block', 'warm:disk'));
  assert.equal(disk[0], 1);
  await until('temporary files gone', () => fs.readdirSync(tmp).length === 0);
  assert.deepEqual(fs.readdirSync(tmp), []);
});

test(`the fields of a multipart form are bounded in all (${limits.webMaxJsonBytes} bytes): 413`, async () => {
  const form = multipart([['arg', 'x'.repeat(limits.webMaxJsonBytes)], ['arg', '--sleep']], { field: 'image', filename: 'a.spt', data: solo5Image() });
  const r = await api('POST', '/instances/local/unikernels/big:fields', { token, body: form.body, headers: { 'content-type': form.type } });
  assert.deepEqual([r.status, r.json.error], [413, `the form's fields are larger than the limit of ${limits.webMaxJsonBytes} bytes`]);
});
