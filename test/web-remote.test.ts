/**
 * vmmd_web with remote instances: the real vmmd (fake tender), vmmd_console and vmmd_log behind
 * the TLS endpoint vmmd_tls, reached with one leaf certificate per command signed by a delegation
 * CA (vmmp_ca), next to the local instance, to hosts that are down and to an endpoint that
 * relays upstream's commands only.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { type RunDir, type VmmdProcess, makeRunDir, startVmmd, until } from './helpers/vmmd.js';
import { type WebProcess, call, startWeb } from './helpers/web.js';
import { solo5Image } from './helpers/image.js';
import { REMOTE_CONNECT_TIMEOUT_MS } from '../src/web/remote.js';
import { readEvents } from './helpers/web.js';
import { request } from './helpers/vmmd.js';
import { certFacts } from '../src/core/x509.js';
import { ALBATROSS_OID, decodeCertExtension, encodeWire, failure } from '../src/core/wire/wire.js';
import { WIRE_VERSION } from '../src/core/wire/common.js';
import { frame } from '../src/core/frame.js';

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
/**
 * An endpoint as upstream's (or ours before the status and log leaves): commands of upstream's
 * grammar run at vmmd (at `team:` + the CN), any other certificate is closed without an answer,
 * or, with `oldRefusal`, refused as an albatross-ts endpoint without them refuses it.
 */
let older: tls.Server;
let oldRefusal = false;
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
  procs.push(spawn(process.execPath, [path.join(CLI, 'vmmd_log.js'), '--tmpdir', d.tmpdir, '--logfile', path.join(d.root, 'albatross.log')], { stdio: 'ignore' }));
  await until('log.sock', () => fs.existsSync(path.join(d.tmpdir, 'util', 'log.sock')));
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
  older = tls.createServer({
    cert: fs.readFileSync(path.join(pki, 'server.pem')), key: fs.readFileSync(path.join(pki, 'server.key')), ca: fs.readFileSync(path.join(pki, 'cacert.pem')),
    requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3',
  }, (s) => {
    s.on('error', () => {});
    const leaf = certFacts(new Uint8Array(s.getPeerCertificate().raw));
    const ext = leaf.ok ? leaf.value.extensions.find((e) => e.oid === ALBATROSS_OID) : undefined;
    const c = ext === undefined ? undefined : decodeCertExtension(ext.value);
    if (c === undefined || !c.ok) {
      if (oldRefusal) s.end(Buffer.from(frame(encodeWire(failure({ version: WIRE_VERSION, sequence: 0n, name: { path: [] } }, `refused: ${c?.ok === false ? c.error : 'no extension'}`)))));
      else s.end();
      return;
    }
    const cn = leaf.ok ? leaf.value.subjectCN : undefined;
    void request(path.join(d.tmpdir, 'util', 'vmmd.sock'), cn === undefined || cn === '.' ? 'team:' : `team:${cn}`, c.value.command).then((ws) => s.end(Buffer.from(frame(encodeWire(ws[0])))));
  }).listen(0, '127.0.0.1');
  await new Promise((r) => older.once('listening', r));
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
  older?.close();
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
  // someone at another path has nothing there, and does not see the instance at all: not in
  // the list, and as unknown as one that does not exist (its address and path are carol's business)
  r = await api('GET', '/instances/far/unikernels', { token: alice });
  assert.deepEqual([r.status, r.json.field, r.json.error], [404, 'instance', 'no instance "far" (see GET /api/v1/instances)']);
  assert.ok(!(await api('GET', '/instances', { token: alice })).json.some((i: { name: string }) => i.name === 'far'), 'far is not listed for alice');
  assert.ok((await api('GET', '/instances', { token: admin })).json.some((i: { name: string }) => i.name === 'far'), 'the administrator sees every instance');
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
  assert.deepEqual([r.status, r.json.field], [404, 'instance'], 'at acme dave has nothing on far, which he no longer sees');
  r = await api('PUT', '/users/dave', { token: admin, json: { paths: {} } });
  assert.deepEqual(r.json.paths, {});
  const saved = JSON.parse(fs.readFileSync(path.join(d.root, 'web.json'), 'utf8')) as { users: { name: string; paths?: unknown }[] };
  assert.equal(saved.users.find((u) => u.name === 'dave')?.paths, undefined);
  assert.equal((await api('DELETE', '/instances/far/unikernels/team:dweb', { token: carol })).status, 200);
});

type U = { name: string; state: { kind: string; failures?: number; nextStart?: string; pid?: number; since?: string } | null; stateError?: string; type?: string };

test('a remote instance shows the unikernel state (status leaf) and the event log (log leaf) through vmmd_tls, confined to its path', async () => {
  // beside team, names a team leaf must never see: the root-level :team, teamx:web, other:web
  for (const n of [':team', 'teamx:web', 'other:web']) {
    const r = await api('POST', `/instances/local/unikernels/${n}?arg=--solo5:quiet&arg=--sleep`, { token: admin, body: solo5Image() });
    assert.equal(r.status, 201, `${n}: ${r.body.toString()}`);
  }
  let r = await api('POST', '/instances/far/unikernels/team:up?arg=--solo5:quiet&arg=--sleep', { token: carol, body: solo5Image() });
  assert.equal(r.status, 201, r.body.toString());
  r = await api('POST', '/instances/far/unikernels/team:loop?arg=--solo5:quiet&arg=--exit=3&restart-on-fail=true&exit-code=3', { token: carol, body: solo5Image() });
  assert.equal(r.status, 201, r.body.toString());
  let list: U[] = [];
  await until('team:loop restarting on far', async () => {
    list = (await api('GET', '/instances/far/unikernels', { token: carol })).json;
    return list.find((u) => u.name === 'team:loop')?.state?.kind === 'restarting';
  }, 20_000);
  assert.deepEqual(list.map((u) => u.name), ['team:loop', 'team:up']);
  const loop = list[0];
  assert.ok((loop.state?.failures as number) >= 1, JSON.stringify(loop));
  assert.match(loop.state?.nextStart as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const up = list[1];
  assert.equal(up.state?.kind, 'running');
  assert.equal(typeof up.state?.pid, 'number');
  assert.match(up.state?.since as string, /^\d{4}-\d\d-\d\dT/);
  assert.equal(up.stateError, undefined);
  // one unikernel's page: its own status leaf (CN = its label)
  r = await api('GET', '/instances/far/unikernels/team:up', { token: carol });
  assert.equal(r.status, 200, r.body.toString());
  assert.equal(r.json.state.kind, 'running');
  assert.equal(r.json.state.pid, up.state?.pid);
  // the administrator (root) sees them all here, so the names exist: far shows team's only
  const all = (await api('GET', '/instances/local/unikernels', { token: admin })).json.map((u: U) => u.name);
  for (const n of [':team', 'teamx:web', 'other:web', 'team:up']) assert.ok(all.includes(n), n);

  // the event log of far: team's entries only, history and live
  r = await api('GET', '/instances/far/log?count=200', { token: carol });
  assert.equal(r.status, 200, r.body.toString());
  const events = r.json.events as { event: string; name: string | null; text: string }[];
  const names = new Set(events.map((e) => e.name));
  assert.ok(names.has('team:up') && names.has('team:loop'), JSON.stringify([...names]));
  for (const n of names) assert.match(String(n), /^team:/, `far's log shows ${String(n)}`);
  assert.ok(events.some((e) => e.name === 'team:loop' && e.event === 'unikernel_stop'), 'the crash loop is in the log');
  const live = await readEvents(web.url, '/api/v1/instances/far/log/events?count=3&name=team:up', carol, (e) => e.some((x) => x.event === 'event'));
  assert.equal(live[0].event, 'subscribed');
  assert.ok(live.filter((x) => x.event === 'event').every((x) => x.data.name === 'team:up'), JSON.stringify(live));

  for (const n of ['team:up', 'team:loop']) assert.equal((await api('DELETE', `/instances/far/unikernels/${n}`, { token: carol })).status, 200);
  for (const n of [':team', 'teamx:web', 'other:web']) assert.equal((await api('DELETE', `/instances/local/unikernels/${n}`, { token: admin })).status, 200);
});

test('an endpoint without the status and log leaves (upstream\'s, or ours before them): the page says so instead of failing', async () => {
  const port2 = (older.address() as net.AddressInfo).port;
  let r = await api('POST', '/instances', { token: admin, json: remote('old', `127.0.0.1:${port2}`) });
  assert.equal(r.status, 201, r.body.toString());
  r = await api('POST', '/instances/far/unikernels/team:web?arg=--solo5:quiet&arg=--sleep', { token: carol, body: solo5Image() });
  assert.equal(r.status, 201, r.body.toString());
  try {
    for (const refusal of [false, true]) {
      oldRefusal = refusal;
      const why = refusal ? /^the endpoint does not relay the status query \(refused: .*unknown Command \[16\]\)$/ : /^the endpoint does not relay the status query \(it closed the connection without an answer/;
      r = await api('GET', '/instances/old/unikernels', { token: carol });
      assert.equal(r.status, 200, r.body.toString());
      assert.deepEqual(r.json.map((u: U) => [u.name, u.state]), [['team:web', null]]);
      assert.match(r.json[0].stateError, why);
      r = await api('GET', '/instances/old/log', { token: carol });
      assert.equal(r.status, 501, r.body.toString());
      assert.match(r.json.error, refusal ? /^old: the endpoint does not relay the event log \(refused: .*unknown Command \[17\]\)$/ : /^old: the endpoint does not relay the event log \(it closed the connection without an answer/);
      const live = await readEvents(web.url, '/api/v1/instances/old/log/events', carol, (e) => e.some((x) => x.event === 'error' || x.event === 'end'));
      assert.match(live.find((x) => x.event === 'error')?.data.error, /^old: the endpoint does not relay the event log/);
    }
  } finally {
    oldRefusal = false;
    assert.equal((await api('DELETE', '/instances/far/unikernels/team:web', { token: carol })).status, 200);
    assert.equal((await api('DELETE', '/instances/old', { token: admin })).status, 200);
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

test('one instance\'s status on its own (GET /instances/NAME?status=1): the list\'s entry, refused for an unknown instance', async () => {
  const list = async (token: string) => Object.fromEntries((await api('GET', '/instances?status=1', { token })).json.map((i: { name: string }) => [i.name, i]));
  const one = async (token: string, name: string, query = '?status=1') => {
    const r = await api('GET', `/instances/${name}${query}`, { token });
    assert.equal(r.status, 200, r.body.toString());
    return r.json;
  };
  // the same entry as the list's, for each user's own path there
  for (const token of [admin, carol]) {
    const all = await list(token);
    for (const name of ['local', 'far']) assert.deepEqual(await one(token, name), all[name]);
  }
  assert.deepEqual(Object.keys(await one(carol, 'far')), ['name', 'kind', 'where', 'path', 'up', 'unikernels']);
  // a tenant with nothing there sees neither the instance in the list nor on its own
  assert.equal((await list(alice)).far, undefined);
  const far = await api('GET', '/instances/far?status=1', { token: alice });
  assert.deepEqual([far.status, far.json.field], [404, 'instance']);
  // hosts that are down: only their own connect timeout or refusal
  const silent = await one(admin, 'silent');
  assert.equal(silent.up, false);
  assert.match(silent.error, new RegExp(`^silent: .*no TLS handshake within ${REMOTE_CONNECT_TIMEOUT_MS / 1000} s`));
  const closed = await one(admin, 'closed');
  assert.equal(closed.up, false);
  assert.match(closed.error, /refused/i);
  // without status: the entry alone, no connection made
  assert.deepEqual(await one(carol, 'silent', ''), { name: 'silent', kind: 'remote', where: silent.where, path: 'team' });
  // refused: an unknown instance, no credentials
  let r = await api('GET', '/instances/nosuch?status=1', { token: carol });
  assert.deepEqual([r.status, r.json.field, r.json.error], [404, 'instance', 'no instance "nosuch" (see GET /api/v1/instances)']);
  r = await api('GET', '/instances/far?status=1');
  assert.equal(r.status, 401);
});

test('the administrator removes a remote instance', async () => {
  let r = await api('DELETE', '/instances/closed', { token: admin });
  assert.equal(r.status, 200);
  r = await api('DELETE', '/instances/local', { token: admin });
  assert.equal(r.status, 404);
  r = await api('GET', '/instances', { token: admin });
  assert.deepEqual(r.json.map((i: { name: string }) => i.name), ['local', 'far', 'silent']);
});
