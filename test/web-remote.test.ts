/**
 * vmmd_web with remote instances: the real vmmd (fake tender) and vmmd_console behind the TLS
 * endpoint vmmd_tls, reached with one leaf certificate per command signed by a delegation CA
 * (vmmp_ca), next to the local instance and to hosts that are down.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { type RunDir, type VmmdProcess, makeRunDir, startVmmd, until } from './helpers/vmmd.js';
import { type WebProcess, call, startWeb } from './helpers/web.js';
import { solo5Image } from './helpers/image.js';
import { REMOTE_CONNECT_TIMEOUT_MS } from '../src/web/remote.js';

const CLI = path.join(__dirname, '..', 'src', 'cli');
let d: RunDir;
let pki: string;
let vmmd: VmmdProcess;
let web: WebProcess;
let admin: string;
let carol: string;
let alice: string;
const procs: ChildProcess[] = [];
let silent: net.Server;
const held: net.Socket[] = [];
let port = 0;

const sync = (bin: string, args: string[]): void => {
  const r = spawnSync(process.execPath, [path.join(CLI, `${bin}.js`), ...args], { cwd: pki, encoding: 'utf8' });
  assert.equal(r.status, 0, `${bin} ${args.join(' ')}: ${r.stderr}`);
};
const freePort = (): Promise<number> => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as net.AddressInfo).port;
    s.close(() => resolve(p));
  });
});
const api = (method: string, p: string, o: Parameters<typeof call>[3] = {}) => call(web.url, method, `/api/v1${p}`, o);

before(async () => {
  d = makeRunDir();
  pki = path.join(d.root, 'pki');
  fs.mkdirSync(pki);
  procs.push(spawn(process.execPath, [path.join(CLI, 'vmmd_console.js'), '--tmpdir', d.tmpdir], { stdio: 'ignore' }));
  await until('console.sock', () => fs.existsSync(path.join(d.tmpdir, 'util', 'console.sock')));
  vmmd = await startVmmd(d);
  sync('vmmp_ca', ['generate', 'ca', 'db']);
  sync('vmmp_request', ['add-policy', 'team', '2', '--mem', '128', '--cpu', '0', '--size', '8']);
  sync('vmmp_ca', ['sign', 'cacert.pem', 'db', 'ca.key', 'team.req']);
  port = await freePort();
  procs.push(spawn(process.execPath, [path.join(CLI, 'vmmd_tls.js'), 'cacert.pem', 'server.pem', 'server.key', '--ip', '127.0.0.1', '--port', String(port), '--tmpdir', d.tmpdir], { cwd: pki, stdio: 'ignore' }));
  await until('vmmd_tls listening', () => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  }));
  // a host that accepts connections and never answers: only the connect timeout ends a try
  silent = net.createServer((c) => held.push(c)).listen(0, '127.0.0.1');
  await new Promise((r) => silent.once('listening', r));
  web = await startWeb(d.tmpdir, path.join(d.root, 'web.json'));
  admin = (await api('POST', '/tokens', { json: { user: 'admin', password: web.adminPassword } })).json.token;
  for (const [name, p] of [['carol', 'team'], ['alice', 'acme']]) {
    assert.equal((await api('POST', '/users', { token: admin, json: { name, path: p, password: `${name}-password` } })).status, 201);
  }
  carol = (await api('POST', '/tokens', { json: { user: 'carol', password: 'carol-password' } })).json.token;
  alice = (await api('POST', '/tokens', { json: { user: 'alice', password: 'alice-password' } })).json.token;
});

after(async () => {
  await web?.stop();
  for (const c of held) c.destroy();
  silent?.close();
  for (const p of procs) p.kill();
  await vmmd?.stop();
  d?.remove();
});

const remote = (name: string, destination: string) => ({
  name, destination, ca: path.join(pki, 'team.pem'), caKey: path.join(pki, 'team.key'), serverCa: path.join(pki, 'cacert.pem'), path: 'team',
});

test('the administrator adds remote instances; malformed ones are refused with the field', async () => {
  let r = await api('POST', '/instances', { token: admin, json: remote('far', `127.0.0.1:${port}`) });
  assert.equal(r.status, 201, r.body.toString());
  assert.equal(r.json.where, `127.0.0.1:${port} (team)`);
  r = await api('POST', '/instances', { token: admin, json: remote('silent', `127.0.0.1:${(silent.address() as net.AddressInfo).port}`) });
  assert.equal(r.status, 201);
  r = await api('POST', '/instances', { token: admin, json: remote('closed', `127.0.0.1:${await freePort()}`) });
  assert.equal(r.status, 201);
  r = await api('POST', '/instances', { token: admin, json: { ...remote('bad', `127.0.0.1:${port}`), destination: 'host:99999' } });
  assert.deepEqual([r.status, r.json.field], [400, 'destination']);
  r = await api('POST', '/instances', { token: admin, json: { ...remote('bad', `127.0.0.1:${port}`), caKey: path.join(pki, 'nosuch.key') } });
  assert.equal(r.status, 409);
  assert.match(r.json.error, /cannot read the CA key .*nosuch\.key/);
  r = await api('POST', '/instances', { token: carol, json: remote('mine', `127.0.0.1:${port}`) });
  assert.equal(r.status, 403);
  const saved = JSON.parse(fs.readFileSync(path.join(d.root, 'web.json'), 'utf8')) as { instances: { name: string }[] };
  assert.deepEqual(saved.instances.map((i) => i.name), ['far', 'silent', 'closed']);
});

test('create, list, console and destroy on the remote instance, one signed leaf per command', async () => {
  let r = await api('POST', '/instances/far/unikernels/team:web?arg=--solo5:quiet&arg=--lines=2&arg=--sleep', { token: carol, body: solo5Image() });
  assert.equal(r.status, 201, r.body.toString());
  assert.equal(r.json.result, 'created unikernel');
  r = await api('GET', '/instances/far/unikernels', { token: carol });
  assert.equal(r.status, 200, r.body.toString());
  assert.deepEqual(r.json.map((u: { name: string; instance: string }) => [u.instance, u.name]), [['far', 'team:web']]);
  await until('remote console', async () => (await api('GET', '/instances/far/unikernels/team:web/console', { token: carol })).json.lines?.some((l: { line: string }) => l.line === 'line 2'));
  // the CA's policy is enforced by the host
  r = await api('POST', '/instances/far/unikernels/team:fat?mem=512', { token: carol, body: solo5Image() });
  assert.equal(r.status, 409, 'refused before connecting');
  assert.match(r.json.error, /^refused before connecting: the CA's policy does not allow it: .*maximum allowed memory \(128\) would be exceeded/);
  // someone at another path has nothing there
  r = await api('GET', '/instances/far/unikernels', { token: alice });
  assert.equal(r.status, 403);
  assert.equal(r.json.field, 'instance');
  r = await api('DELETE', '/instances/far/unikernels/team:web', { token: carol });
  assert.equal(r.status, 200, r.body.toString());
  r = await api('GET', '/instances/far/unikernels', { token: carol });
  assert.deepEqual(r.json, []);
});

test('a user bound to acme here and to team on far: each instance enforces the user\'s path there', async () => {
  let r = await api('POST', '/users', { token: admin, json: { name: 'dave', path: 'acme', paths: { far: 'team' }, password: 'dave-password' } });
  assert.equal(r.status, 201, r.body.toString());
  assert.deepEqual(r.json.paths, { far: 'team' });
  const dave = (await api('POST', '/tokens', { json: { user: 'dave', password: 'dave-password' } })).json.token;
  assert.deepEqual((await api('GET', '/whoami', { token: dave })).json, { user: 'dave', path: 'acme', paths: { far: 'team' }, admin: false });
  const paths = Object.fromEntries((await api('GET', '/instances', { token: dave })).json.map((i: { name: string; path: string }) => [i.name, i.path]));
  assert.equal(paths.local, 'acme');
  assert.equal(paths.far, 'team');
  r = await api('POST', '/instances/far/unikernels/team:dweb?arg=--solo5:quiet&arg=--sleep', { token: dave, body: solo5Image() });
  assert.equal(r.status, 201, r.body.toString());
  r = await api('GET', '/instances/far/unikernels', { token: dave });
  assert.deepEqual(r.json.map((u: { name: string }) => u.name), ['team:dweb']);
  // here dave is at acme: team is another tenant's
  r = await api('POST', '/instances/local/unikernels/team:x?arg=--sleep', { token: dave, body: solo5Image() });
  assert.deepEqual([r.status, r.json.error], [403, 'dave may act only on names whose path is acme or below; team:x is not']);
  // there dave is at team: acme is not his
  r = await api('DELETE', '/instances/far/unikernels/acme:x', { token: dave });
  assert.deepEqual([r.status, r.json.error], [403, 'dave may act only on names whose path is team or below; acme:x is not']);
  assert.equal((await api('GET', '/instances/local/unikernels', { token: dave })).status, 200);
  // only the administrator changes it; a malformed instance name or path names the field
  r = await api('PUT', '/users/dave', { token: dave, json: { paths: {} } });
  assert.deepEqual([r.status, r.json.error], [403, 'dave is not an administrator']);
  r = await api('PUT', '/users/dave', { token: admin, json: { paths: { 'Far!': 'team' } } });
  assert.deepEqual([r.status, r.json.field], [400, 'paths']);
  r = await api('PUT', '/users/dave', { token: admin, json: { paths: { far: 'bad path' } } });
  assert.deepEqual([r.status, r.json.field], [400, 'paths']);
  r = await api('PUT', '/users/dave', { token: admin, json: { paths: { far: 'acme' } } });
  assert.equal(r.status, 200, r.body.toString());
  r = await api('GET', '/instances/far/unikernels', { token: dave });
  assert.deepEqual([r.status, r.json.field], [403, 'instance'], 'at acme dave has nothing on far');
  r = await api('PUT', '/users/dave', { token: admin, json: { paths: {} } });
  assert.deepEqual(r.json.paths, {});
  const saved = JSON.parse(fs.readFileSync(path.join(d.root, 'web.json'), 'utf8')) as { users: { name: string; paths?: unknown }[] };
  assert.equal(saved.users.find((u) => u.name === 'dave')?.paths, undefined);
  assert.equal((await api('DELETE', '/instances/far/unikernels/team:dweb', { token: carol })).status, 200);
});

test('the event log of a remote instance: not available over the TLS endpoint (501), said so', async () => {
  for (const p of ['/instances/far/log', '/instances/far/log/events']) {
    const r = await api('GET', p, { token: carol });
    assert.deepEqual([r.status, r.json.error], [501, 'far: the event log is only available for local instances'], p);
  }
});

test('hosts that are down are shown as down, probed at once, without holding up the others', async () => {
  const started = Date.now();
  const r = await api('GET', '/instances?status=1', { token: admin });
  const took = Date.now() - started;
  assert.equal(r.status, 200);
  const by = Object.fromEntries(r.json.map((i: { name: string }) => [i.name, i]));
  assert.equal(by.local.up, true);
  assert.equal(by.far.up, true);
  assert.equal(by.silent.up, false);
  assert.match(by.silent.error, new RegExp(`no TLS handshake within ${REMOTE_CONNECT_TIMEOUT_MS / 1000} s`));
  assert.equal(by.closed.up, false);
  assert.match(by.closed.error, /refused/i);
  // one connect timeout, not one per host that is down (and never a second one)
  assert.ok(took < 2 * REMOTE_CONNECT_TIMEOUT_MS, `took ${took} ms`);
  // a local request is not held up while a remote one waits
  const slow = api('GET', '/instances/silent/unikernels', { token: admin });
  const quick = await api('GET', '/instances/local/unikernels', { token: admin });
  assert.equal(quick.status, 200);
  assert.equal((await slow).status, 502);
});

test('the administrator removes a remote instance', async () => {
  let r = await api('DELETE', '/instances/closed', { token: admin });
  assert.equal(r.status, 200);
  r = await api('DELETE', '/instances/local', { token: admin });
  assert.equal(r.status, 404);
  r = await api('GET', '/instances', { token: admin });
  assert.deepEqual(r.json.map((i: { name: string }) => i.name), ['local', 'far', 'silent']);
});
