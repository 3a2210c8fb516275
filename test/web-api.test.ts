/**
 * vmmd_web's REST API against the real local stack (vmmd with the fake tender, vmmd_console,
 * vmmd_log, vmmd_stats): users bound to paths, tokens, every unikernel and block device
 * action, console, statistics and the event log, and the refusals (401, 403, 400 with the
 * field, 413 before the body is read).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { type Reply, type Stack, type WebProcess, call, multipart, readEvents, startStack, startWeb } from './helpers/web.js';
import { solo5Image } from './helpers/image.js';
import { until } from './helpers/vmmd.js';
import { limits } from '../src/core/limits.js';

let s: Stack;
let web: WebProcess;
let state: string;
let adminToken: string;
let alice: string;
let bob: string;
const image = solo5Image();
const ARGS = 'arg=--solo5:quiet&arg=--lines=3&arg=--sleep';

const api = (method: string, p: string, o: Parameters<typeof call>[3] = {}) => call(web.url, method, `/api/v1${p}`, o);
const L = '/instances/local';

before(async () => {
  s = await startStack();
  state = path.join(s.d.root, 'web', 'state.json');
  fs.mkdirSync(path.dirname(state));
  web = await startWeb(s.d.tmpdir, state, ['--max-upload', '1']);
});

after(async () => {
  await web?.stop();
  await s?.stop();
});

test('first start, standard output not a terminal: the generated password is not printed but written to a file of mode 0600 that lets the administrator log in; the state file is 0600 and keeps only hashes', async () => {
  const pwFile = path.join(path.dirname(state), 'state.admin-password');
  assert.equal(web.adminPasswordFile, pwFile, web.stdout());
  assert.ok(web.adminPassword !== undefined && web.adminPassword.length >= 16, web.stdout());
  const first = web.adminPassword;
  assert.ok(!web.stdout().includes(web.adminPassword) && !web.stderr().includes(web.adminPassword), 'the password is not on stdout or stderr');
  assert.match(web.stdout(), /created .*state\.json with the administrator "admin"; its password is in .*state\.admin-password \(mode 0600, deleted once the password is changed\)/);
  assert.equal(fs.statSync(pwFile).mode & 0o777, 0o600);
  assert.equal(fs.statSync(state).mode & 0o777, 0o600);
  const r = await api('POST', '/tokens', { json: { user: 'admin', password: web.adminPassword, label: 'tests' } });
  assert.equal(r.status, 201, r.body.toString());
  adminToken = r.json.token;
  const text = fs.readFileSync(state, 'utf8');
  assert.ok(!text.includes(web.adminPassword as string), 'the password is not stored');
  assert.ok(!text.includes(adminToken), 'the token is not stored');
  assert.ok(text.includes(crypto.createHash('sha256').update(adminToken).digest('hex')), 'its SHA-256 is');
  assert.match(text, /"password": "scrypt\$16384\$8\$1\$/);
  assert.equal(fs.statSync(state).mode & 0o777, 0o600);
  // a restart does not print a password again and keeps the users
  await web.stop();
  web = await startWeb(s.d.tmpdir, state, ['--max-upload', '1']);
  assert.equal(web.adminPassword, undefined);
  assert.equal((await api('GET', '/whoami', { token: adminToken })).json.user, 'admin');
  assert.match(web.stderr(), /state\.admin-password still holds the administrator's first password: log in as admin and change it \(the file is then deleted\)/);
  // the administrator changes its password: the file goes
  const c = await api('PUT', '/users/admin/password', { token: adminToken, json: { current: first, password: 'admin-password-2' } });
  assert.equal(c.status, 200, c.body.toString());
  assert.ok(!fs.existsSync(pwFile), 'the password file is deleted');
  assert.equal((await api('POST', '/tokens', { json: { user: 'admin', password: 'admin-password-2' } })).status, 201);
});

test('the administrator creates users bound to paths; each gets a token from its password', async () => {
  let r = await api('POST', '/users', { token: adminToken, json: { name: 'alice', path: 'acme' } });
  assert.equal(r.status, 201, r.body.toString());
  assert.equal(typeof r.json.password, 'string');
  r = await api('POST', '/tokens', { json: { user: 'alice', password: r.json.password } });
  assert.equal(r.status, 201);
  alice = r.json.token;
  r = await api('POST', '/users', { token: adminToken, json: { name: 'bob', path: 'other', password: 'bob-password-1' } });
  assert.equal(r.status, 201);
  bob = (await api('POST', '/tokens', { json: { user: 'bob', password: 'bob-password-1' } })).json.token;
  assert.deepEqual((await api('GET', '/whoami', { token: alice })).json, { user: 'alice', path: 'acme', admin: false });
  // only the administrator manages users
  r = await api('POST', '/users', { token: alice, json: { name: 'eve', path: '' } });
  assert.deepEqual([r.status, r.json.error], [403, 'alice is not an administrator']);
  r = await api('POST', '/users', { token: adminToken, json: { name: 'eve', path: 'bad path!' } });
  assert.deepEqual([r.status, r.json.field], [400, 'path']);
  r = await api('POST', '/users', { token: adminToken, json: { name: 'Eve', path: 'x' } });
  assert.deepEqual([r.status, r.json.field], [400, 'name']);
});

test('refused: no token and a wrong token (401), a wrong password (401)', async () => {
  let r = await api('GET', `${L}/unikernels`);
  assert.equal(r.status, 401);
  assert.match(r.json.error, /no credentials/);
  r = await api('GET', `${L}/unikernels`, { token: 'vw_not-a-token' });
  assert.deepEqual([r.status, r.json.error], [401, 'unknown or revoked token']);
  assert.equal(r.headers['www-authenticate'], 'Bearer realm="vmmd_web"');
  r = await api('POST', '/tokens', { json: { user: 'alice', password: 'wrong-password' } });
  assert.deepEqual([r.status, r.json.error], [401, 'wrong user name or password']);
  r = await api('GET', '/instances/nosuch/unikernels', { token: alice });
  assert.deepEqual([r.status, r.json.field], [404, 'instance']);
});

test('refused: another tenant\'s path and the root-level label of the same name (403)', async () => {
  let r = await api('POST', `${L}/unikernels/other:web?${ARGS}`, { token: alice, body: image });
  assert.equal(r.status, 403);
  assert.equal(r.json.error, 'alice may act only on names whose path is acme or below; other:web is not');
  // `:acme` is a label at the root, not below the path acme
  r = await api('DELETE', `${L}/unikernels/:acme`, { token: alice });
  assert.equal(r.status, 403);
  r = await api('GET', `${L}/unikernels/${encodeURIComponent('acme:')}/console`, { token: alice });
  assert.deepEqual([r.status, r.json.field], [400, 'name'], 'a path is not a unikernel name');
  r = await api('PUT', `${L}/policies/acme`, { token: alice, json: { unikernels: 9 } });
  assert.equal(r.status, 403, 'a tenant cannot raise its own policy');
});

test('refused: malformed fields name the field (400)', async () => {
  const cases: [string, string][] = [
    [`acme:we_b?${ARGS}`, 'name'],
    [`acme:web?mem=lots`, 'mem'],
    [`acme:web?mem=-1`, 'mem'],
    [`acme:web?cpu=x`, 'cpu'],
    [`acme:web?block=${encodeURIComponent('a@100')}`, 'block'],
    [`acme:web?net=${encodeURIComponent('service:br0@zz')}`, 'net'],
    [`acme:web?colour=red`, 'colour'],
    [`acme:web?force=maybe`, 'force'],
    [`acme:web?compression-level=12`, 'compression-level'],
    [`acme:web?typ=xen`, 'typ'],
    [`acme:web?mem=1&mem=2`, 'mem'],
  ];
  for (const [p, field] of cases) {
    const r = await api('POST', `${L}/unikernels/${p}`, { token: alice, body: image });
    assert.equal(r.status, 400, `${p}: ${r.body}`);
    assert.equal(r.json.field, field, `${p}: ${r.json.error}`);
    assert.ok(r.json.error.startsWith(`${field}: `), r.json.error);
  }
  let r = await api('POST', `${L}/unikernels/acme:web`, { token: alice, body: Buffer.from('not an ELF image') });
  assert.deepEqual([r.status, r.json.field], [400, 'image']);
  r = await api('POST', `${L}/unikernels/acme:web`, { token: alice });
  assert.deepEqual([r.status, r.json.field], [400, 'image']);
  r = await api('GET', `${L}/unikernels/acme:web/console?count=many`, { token: alice });
  assert.deepEqual([r.status, r.json.field], [400, 'count']);
  r = await api('GET', `${L}/log?since=yesterday`, { token: alice });
  assert.deepEqual([r.status, r.json.field], [400, 'since']);
  r = await api('POST', `${L}/blocks/acme:vol`, { token: alice, json: { size: 'big' } });
  assert.deepEqual([r.status, r.json.field], [400, 'size']);
  r = await api('POST', '/users', { token: adminToken, body: '{not json', headers: { 'content-type': 'application/json' } });
  assert.deepEqual([r.status, r.json.field], [400, 'body']);
});

test('refused: an upload over --max-upload by its Content-Length, before the body is sent (413)', async () => {
  const declared = 2 * 1024 * 1024;
  const r = await new Promise<{ status: number; json: { error: string; field: string } }>((resolve, reject) => {
    const req = http.request(new URL(`/api/v1${L}/unikernels/acme:big`, web.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/octet-stream', 'content-length': String(declared) },
    }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(b) }));
    });
    req.on('error', reject);
    // the headers only: the answer comes without one octet of the body
    req.flushHeaders();
  });
  assert.equal(r.status, 413);
  assert.equal(r.json.field, 'Content-Length');
  assert.equal(r.json.error, `the image of ${declared} bytes is larger than the limit of ${1024 * 1024} bytes`);
});

test('create (raw body and multipart), list, get the image; each tenant sees only its path', async () => {
  let r = await api('POST', `${L}/unikernels/acme:web?${ARGS}&mem=32&cpu=0&restart-on-fail=true&exit-code=3`, { token: alice, body: image });
  assert.equal(r.status, 201, r.body.toString());
  assert.equal(r.json.result, 'created unikernel');
  const form = multipart([['arg', '--solo5:quiet'], ['arg', '--sleep'], ['mem', '32'], ['add-name', 'false']], { field: 'image', filename: 'db.spt', data: image });
  r = await api('POST', `${L}/unikernels/acme:team:db`, { token: alice, body: form.body, headers: { 'content-type': form.type } });
  assert.equal(r.status, 201, r.body.toString());
  r = await api('POST', `${L}/unikernels/:acme?arg=--solo5:quiet&arg=--sleep`, { token: adminToken, body: image });
  assert.equal(r.status, 201, r.body.toString());
  r = await api('POST', `${L}/unikernels/other:web?arg=--solo5:quiet&arg=--sleep`, { token: bob, body: image });
  assert.equal(r.status, 201, r.body.toString());

  r = await api('GET', `${L}/unikernels`, { token: alice });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.map((u: { name: string }) => u.name).sort(), ['acme:team:db', 'acme:web']);
  const web1 = r.json.find((u: { name: string }) => u.name === 'acme:web');
  assert.deepEqual(
    { ...web1, started: typeof web1.started, state: { ...web1.state, pid: typeof web1.state.pid, since: typeof web1.state.since } },
    {
      instance: 'local', name: 'acme:web', type: 'solo5', cpuids: [0], memory: 32, cpus: 1, startup: 50,
      failBehaviour: { kind: 'restart', exitCodes: [3] }, digest: crypto.createHash('sha256').update(image).digest('hex'),
      blocks: [], bridges: [], arguments: ['--solo5:quiet', '--lines=3', '--sleep'], started: 'string',
      state: { kind: 'running', pid: 'number', failures: 0, since: 'string' },
    },
  );
  r = await api('GET', `${L}/unikernels`, { token: bob });
  assert.deepEqual(r.json.map((u: { name: string }) => u.name), ['other:web']);
  r = await api('GET', `${L}/unikernels`, { token: adminToken });
  assert.deepEqual(r.json.map((u: { name: string }) => u.name).sort(), [':acme', 'acme:team:db', 'acme:web', 'other:web']);
  r = await api('GET', `${L}/unikernels/acme:web`, { token: alice });
  assert.equal(r.json.name, 'acme:web');
  r = await api('GET', `${L}/unikernels/other:web`, { token: alice });
  assert.equal(r.status, 403);
  r = await api('GET', `${L}/unikernels/acme:web/image`, { token: alice });
  assert.equal(r.status, 200);
  assert.deepEqual(new Uint8Array(r.body), image);
  // a failure of vmmd is a 409 with its message
  r = await api('POST', `${L}/unikernels/acme:web?${ARGS}`, { token: alice, body: image });
  assert.equal(r.status, 409);
  assert.equal(r.json.error, 'Unikernel with same name is already running');
});

test('console: recent lines, and live lines as server-sent events across a restart', async () => {
  await until('console lines', async () => (await api('GET', `${L}/unikernels/acme:web/console`, { token: alice })).json.lines?.some((l: { line: string }) => l.line === 'line 3'));
  const r = await api('GET', `${L}/unikernels/acme:web/console?count=2`, { token: alice });
  assert.deepEqual(r.json.lines.map((l: { line: string }) => l.line), ['line 2', 'line 3']);
  // the restart is sent once the stream is subscribed: its lines arrive live
  let restarted: Promise<Reply> | undefined;
  const evs = await readEvents(web.url, `/api/v1${L}/unikernels/acme:web/console/events?count=0`, alice, (e) => {
    if (restarted === undefined && e.some((x) => x.event === 'subscribed')) restarted = api('POST', `${L}/unikernels/acme:web/restart`, { token: alice });
    return e.some((x) => x.event === 'line' && x.data.line === 'line 3');
  });
  const rs = await (restarted as Promise<Reply>);
  assert.equal(rs.status, 200, rs.body.toString());
  const lines = evs.filter((e) => e.event === 'line').map((e) => e.data.line);
  assert.deepEqual(lines, ['args: --name=web --solo5:quiet --lines=3 --sleep', 'line 1', 'line 2', 'line 3'], 'the lines of the new run, none of the history (count=0)');
  // restart with new arguments: the same fields as create
  const r2 = await api('POST', `${L}/unikernels/acme:web/restart`, { token: alice, json: { 'replace-arguments': true, arg: ['--solo5:quiet', '--lines=5', '--sleep'], mem: 'x' } });
  assert.deepEqual([r2.status, r2.json.field], [400, 'mem']);
  const r3 = await api('POST', `${L}/unikernels/acme:web/restart`, { token: bob });
  assert.equal(r3.status, 403);
});

test('statistics: live samples of a unikernel as server-sent events', async () => {
  const evs = await readEvents(web.url, `/api/v1${L}/unikernels/acme:web/stats/events`, alice, (e) => e.filter((x) => x.event === 'stats').length >= 2);
  const st = evs.filter((e) => e.event === 'stats');
  assert.equal(st[0].data.name, 'acme:web');
  assert.equal(typeof st[0].data.utime, 'number');
  assert.equal(typeof st[0].data.rssPages, 'number');
  assert.ok(Array.isArray(st[0].data.net));
});

test('event log: filtered by the user\'s path, and by one unikernel', async () => {
  let r = await api('GET', `${L}/log`, { token: alice });
  assert.equal(r.status, 200, r.body.toString());
  const names = new Set(r.json.events.map((e: { name: string }) => e.name));
  assert.ok(names.has('acme:web'), JSON.stringify(r.json.events));
  assert.ok(!names.has(':acme') && !names.has('other:web') && !names.has(null), JSON.stringify([...names]));
  r = await api('GET', `${L}/log?name=acme:team:db`, { token: alice });
  assert.ok(r.json.events.length > 0);
  assert.ok(r.json.events.every((e: { name: string }) => e.name === 'acme:team:db'), JSON.stringify(r.json.events));
  r = await api('GET', `${L}/log?name=other:web`, { token: alice });
  assert.equal(r.status, 403);
  r = await api('GET', `${L}/log`, { token: adminToken });
  assert.ok(r.json.events.some((e: { name: string }) => e.name === ':acme'));
});

test('block devices: create with data, list, dump, set, destroy', async () => {
  const data = Buffer.from('hello block device\n');
  let r = await api('POST', `${L}/blocks/acme:vol?size=1`, { token: alice, body: data });
  assert.equal(r.status, 201, r.body.toString());
  r = await api('GET', `${L}/blocks`, { token: alice });
  assert.deepEqual(r.json, [{ instance: 'local', name: 'acme:vol', sizeMb: 1, active: false }]);
  r = await api('GET', `${L}/blocks`, { token: bob });
  assert.deepEqual(r.json, []);
  r = await api('GET', `${L}/blocks/acme:vol/data`, { token: alice });
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 1024 * 1024);
  assert.deepEqual(r.body.subarray(0, data.length), data);
  r = await api('PUT', `${L}/blocks/acme:vol/data`, { token: alice, body: Buffer.from('second') });
  assert.equal(r.status, 200, r.body.toString());
  r = await api('GET', `${L}/blocks/acme:vol/data`, { token: alice });
  assert.deepEqual(r.body.subarray(0, 6), Buffer.from('second'));
  r = await api('DELETE', `${L}/blocks/acme:vol`, { token: bob });
  assert.equal(r.status, 403);
  r = await api('DELETE', `${L}/blocks/acme:vol`, { token: alice });
  assert.equal(r.status, 200);
  r = await api('GET', `${L}/blocks`, { token: alice });
  assert.deepEqual(r.json, []);
});

test('policies: set by the administrator, shown to the tenant with what is used', async () => {
  let r = await api('PUT', `${L}/policies/acme`, { token: adminToken, json: { unikernels: 4, mem: 256, cpu: [0, 1], size: 10, bridge: [] } });
  assert.equal(r.status, 200, r.body.toString());
  r = await api('PUT', `${L}/policies/acme`, { token: adminToken, json: { unikernels: 'four' } });
  assert.deepEqual([r.status, r.json.field], [400, 'unikernels']);
  r = await api('GET', `${L}/policies`, { token: alice });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, [{
    instance: 'local', path: 'acme', policy: { unikernels: 4, cpuids: [0, 1], memory: 256, block: 10, bridges: [] },
    used: { unikernels: 2, memory: 64, block: 0, cpuids: [0], bridges: [] },
  }]);
  r = await api('GET', `${L}/policies`, { token: bob });
  assert.deepEqual(r.json, []);
  // a tenant may set policies below its own path, within its own
  r = await api('PUT', `${L}/policies/acme:team`, { token: alice, json: { unikernels: 1, mem: 64, cpu: [0] } });
  assert.equal(r.status, 200, r.body.toString());
  r = await api('DELETE', `${L}/policies/acme:team`, { token: alice });
  assert.equal(r.status, 200, r.body.toString());
});

test(`live streams: at most ${limits.webMaxStreamsPerUser} per user; one more is refused (429), other users are not affected`, async () => {
  const open: http.ClientRequest[] = [];
  const start = (token: string): Promise<number> => new Promise((resolve) => {
    const req = http.get(new URL(`/api/v1${L}/log/events?count=0`, web.url), { headers: { authorization: `Bearer ${token}` } }, (res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    req.on('error', () => undefined);
    open.push(req);
  });
  try {
    for (let i = 0; i < limits.webMaxStreamsPerUser; i++) assert.equal(await start(alice), 200);
    const r = await api('GET', `${L}/log/events`, { token: alice });
    assert.equal(r.status, 429);
    assert.equal(r.json.error, `at most ${limits.webMaxStreamsPerUser} live streams per user; close one first`);
    assert.equal(await start(bob), 200);
  } finally {
    for (const q of open) q.destroy();
  }
  // closed streams are counted off
  await until('a stream again once the others are closed', async () => (await start(alice)) === 200);
  for (const q of open) q.destroy();
});

test('a crash-looping unikernel is listed as restarting with its failures and next start (vmmd\'s status); running ones with pid', async () => {
  let r = await api('POST', `${L}/unikernels/crash:loop?arg=--solo5:quiet&arg=--exit=3&restart-on-fail=true&exit-code=3`, { token: adminToken, body: image });
  assert.equal(r.status, 201, r.body.toString());
  type U = { name: string; state: { kind: string; failures?: number; nextStart?: string; pid?: number }; type?: string };
  let loop: U | undefined;
  let list: U[] = [];
  await until('crash:loop restarting', async () => {
    list = (await api('GET', `${L}/unikernels`, { token: adminToken })).json;
    loop = list.find((u) => u.name === 'crash:loop');
    return loop?.state.kind === 'restarting';
  }, 20_000);
  assert.ok(loop !== undefined);
  assert.ok((loop.state.failures as number) >= 1, JSON.stringify(loop));
  assert.match(loop.state.nextStart as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(loop.type, undefined, 'waiting to restart: not in info, only its name and state');
  const web1 = list.find((u) => u.name === 'acme:web');
  assert.equal(web1?.state.kind, 'running');
  assert.equal(typeof web1?.state.pid, 'number');
  // its own page, and another tenant does not see it
  await until('crash:loop detail restarting', async () => {
    r = await api('GET', `${L}/unikernels/crash:loop`, { token: adminToken });
    return r.status === 200 && r.json.state.kind === 'restarting';
  }, 20_000);
  assert.ok(!(await api('GET', `${L}/unikernels`, { token: alice })).json.some((u: U) => u.name === 'crash:loop'));
  r = await api('DELETE', `${L}/unikernels/crash:loop`, { token: adminToken });
  assert.equal(r.status, 200, r.body.toString());
  await until('crash:loop gone', async () => !(await api('GET', `${L}/unikernels`, { token: adminToken })).json.some((u: U) => u.name === 'crash:loop'));
});

test('destroy; every action is logged with the user and address', async () => {
  for (const [t, n] of [[alice, 'acme:web'], [alice, 'acme:team:db'], [adminToken, ':acme'], [bob, 'other:web']] as const) {
    const r = await api('DELETE', `${L}/unikernels/${n}`, { token: t });
    assert.equal(r.status, 200, r.body.toString());
  }
  const r = await api('GET', `${L}/unikernels`, { token: adminToken });
  assert.deepEqual(r.json, []);
  const log = web.stderr();
  assert.match(log, /vmmd_web: info: alice@127\.0\.0\.1: create acme:web on local: done/);
  assert.match(log, /vmmd_web: info: alice@127\.0\.0\.1: restart acme:web on local: done/);
  assert.match(log, /vmmd_web: info: alice@127\.0\.0\.1: destroy acme:web on local: done/);
  assert.match(log, /vmmd_web: info: -@127\.0\.0\.1: refused GET \/api\/v1\/instances\/local\/unikernels: unknown token/);
  assert.match(log, /vmmd_web: info: alice@127\.0\.0\.1: login failed: wrong user name or password/);
  assert.match(log, /vmmd_web: info: admin@127\.0\.0\.1: created user alice at acme/);
});
