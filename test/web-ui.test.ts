/**
 * vmmd_web's web UI in headless Chromium (Debian's chromium, driven by playwright-core) against
 * the real local stack: log in, deploy with an uploaded image, console lines arriving live,
 * statistics chart, restart, destroy, block devices, policies, event log, a tenant that cannot
 * see another path, a user's path on one instance set by the administrator, CSRF, logout and
 * the login rate limit. Screenshots go to
 * build/test-output/web-ui/. Skipped, saying why, when chromium is not installed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Stack, type WebProcess, call, startStack, startWeb } from './helpers/web.js';
import { solo5Image } from './helpers/image.js';
import { repoRoot, until } from './helpers/vmmd.js';
import { limits } from '../src/core/limits.js';
import { REMOTE_CONNECT_TIMEOUT_MS } from '../src/web/remote.js';

const CHROMIUM = '/usr/bin/chromium';
const missing = fs.existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (Debian package chromium); the browser test is skipped`;
if (missing !== undefined) process.stderr.write(`web-ui.test: ${missing}\n`);

export const OUT = path.join(repoRoot, 'build', 'test-output', 'web-ui');

/* eslint-disable @typescript-eslint/no-explicit-any */
let s: Stack;
let web: WebProcess;
let admin: string;
let context: any;
let page: any;
let profile: string;
let tls: ChildProcess | undefined;
const alicePassword = 'alice-password-1';

const api = (method: string, p: string, o: Parameters<typeof call>[3] = {}) => call(web.url, method, `/api/v1${p}`, o);
const shot = async (name: string): Promise<void> => {
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
};

before(async () => {
  if (missing !== undefined) return;
  fs.mkdirSync(OUT, { recursive: true });
  s = await startStack();
  web = await startWeb(s.d.tmpdir, path.join(s.d.root, 'web.json'));
  admin = (await api('POST', '/tokens', { json: { user: 'admin', password: web.adminPassword } })).json.token;
  assert.equal((await api('POST', '/users', { token: admin, json: { name: 'alice', path: 'acme', password: alicePassword } })).status, 201);
  assert.equal((await api('POST', '/users', { token: admin, json: { name: 'bob', path: 'other', password: 'bob-password-1' } })).status, 201);
  const bob = (await api('POST', '/tokens', { json: { user: 'bob', password: 'bob-password-1' } })).json.token;
  assert.equal((await api('POST', '/instances/local/unikernels/other:secret?arg=--solo5:quiet&arg=--sleep', { token: bob, body: solo5Image() })).status, 201);
  assert.equal((await api('PUT', '/instances/local/policies/acme', { token: admin, json: { unikernels: 3, mem: 128, cpu: [0], size: 16 } })).status, 200);
  const { chromium } = await import('playwright-core');
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vmmd-web-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1200, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
});

after(async () => {
  tls?.kill();
  await context?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  await web?.stop();
  await s?.stop();
});

const t = (name: string, f: () => Promise<void>): void => {
  test(name, { skip: missing }, f);
};

t('log in: a session cookie that is HttpOnly and SameSite=Strict', async () => {
  await page.goto(new URL('/', web.url).href);
  assert.match(page.url(), /\/login$/, 'not logged in: the login page');
  await page.fill('#user', 'alice');
  await page.fill('#password', alicePassword);
  await shot('01-login');
  await page.click('button[type=submit]');
  await page.waitForSelector('#who:has-text("alice")');
  const cookie = (await context.cookies()).find((c: { name: string }) => c.name === 'vw_session');
  assert.ok(cookie !== undefined);
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
});

t('deploy with an uploaded image; the console shows its lines', async () => {
  const img = path.join(s.d.root, 'hello.spt');
  fs.writeFileSync(img, solo5Image());
  await page.goto(new URL('/#/deploy', web.url).href);
  await page.fill('#f-name', 'acme:hello');
  await page.setInputFiles('#f-image', img);
  await page.fill('#f-arg', '--solo5:quiet\n--lines=3\n--sleep');
  // every form carries the CSRF token
  assert.equal(await page.inputValue('#deploy input[name=csrf]'), (await page.evaluate('fetch("/session").then((r) => r.json())')).csrf);
  await shot('02-deploy');
  await page.click('#deploy-button');
  await page.waitForURL(/#\/u\/local\/acme%3Ahello$/);
  await page.waitForSelector('#console:has-text("line 3")');
});

t('a malformed field is refused and marked in the form', async () => {
  const img = path.join(s.d.root, 'hello.spt');
  await page.goto(new URL('/#/deploy', web.url).href);
  await page.fill('#f-name', 'acme:bad');
  await page.setInputFiles('#f-image', img);
  await page.fill('#f-block', 'disk@100');
  await page.click('#deploy-button');
  await page.waitForSelector('#deploy-status .error');
  assert.match(await page.textContent('#deploy-status'), /^block: /);
  assert.equal(await page.getAttribute('#f-block', 'class'), 'invalid');
});

t('the form\'s more options: every create option of vmmc_local; a bad one opens the group and is marked', async () => {
  const img = path.join(s.d.root, 'hello.spt');
  // a new form (the previous test left one filled in on this page)
  await page.goto(new URL('/#/', web.url).href);
  await page.goto(new URL('/#/deploy', web.url).href);
  assert.equal(await page.getAttribute('#f-more', 'open'), null, 'the group starts closed');
  // the form's fields are the API's create fields, one for one
  const names: string[] = await page.evaluate(() => [...(globalThis as any).document.querySelectorAll('#deploy [name]')].map((e: any) => e.name));
  for (const f of ['mem', 'cpu', 'block', 'net', 'arg', 'startup', 'add-name', 'restart-on-fail', 'exit-code', 'cpus', 'linux-boot', 'typ', 'force', 'compression-level']) {
    assert.ok(names.includes(f), `the deploy form has ${f}: ${names.join(' ')}`);
  }
  await page.fill('#f-name', 'acme:plain');
  await page.setInputFiles('#f-image', img);
  await page.fill('#f-arg', '--solo5:quiet\n--sleep');
  await page.fill('#f-startup', '7');
  await page.click('#f-more summary');
  await page.uncheck('#f-add-name');
  await page.fill('#f-compression', '12');
  await page.click('#f-more summary');
  await page.click('#deploy-button');
  await page.waitForSelector('#deploy-status .error');
  assert.equal(await page.textContent('#deploy-status'), 'compression-level: must be between 0 and 9, got 12');
  assert.equal(await page.getAttribute('#f-compression', 'class'), 'invalid');
  assert.notEqual(await page.getAttribute('#f-more', 'open'), null, 'the group with the bad field is opened');
  await page.fill('#f-compression', '9');
  await shot('02b-deploy-more');
  // submitted with Enter in the field (a click right after a full-page screenshot of a page
  // taller than the window can miss in headless Chromium)
  await page.press('#f-compression', 'Enter');
  await page.waitForURL(/#\/u\/local\/acme%3Aplain$/);
  // without --name=plain (add-name off), with the start priority given
  await page.waitForSelector('#console:has-text("args: --solo5:quiet --sleep")');
  assert.doesNotMatch(await page.textContent('#console'), /--name=/);
  assert.match(await page.textContent('#main'), /Start priority\s*7/);
  const hello = await page.evaluate(() => fetch('/api/v1/instances/local/unikernels/acme:plain').then((r) => r.json()));
  assert.equal(hello.startup, 7);
  const alice = (await api('POST', '/tokens', { json: { user: 'alice', password: alicePassword } })).json.token;
  assert.equal((await api('DELETE', '/instances/local/unikernels/acme:plain', { token: alice })).status, 200);
});

t('unikernel page: console lines arrive live on restart, the statistics chart fills', async () => {
  await page.goto(new URL('/#/u/local/acme%3Ahello', web.url).href);
  await page.waitForSelector('#console:has-text("line 3")');
  await page.waitForSelector('#console-state:has-text("live")');
  const runs = async (): Promise<number> => ((await page.textContent('#console')) as string).split('args: ').length - 1;
  const before = await runs();
  await page.click('#restart-button');
  await page.waitForSelector('#action-status:has-text("Restart")');
  await page.waitForFunction((n: number) => (globalThis as any).document.getElementById('console').textContent.split('args: ').length - 1 > n, before);
  // two samples or more: a line in every chart
  await page.waitForFunction(() => /^([2-9]|\d{2,}) samples/.test((globalThis as any).document.getElementById('stats-state').textContent));
  const pts = await page.getAttribute('[data-chart="Memory"] polyline', 'points');
  assert.ok(pts.split(' ').length >= 2, pts);
  await shot('03-unikernel');
});

t('block devices, policies with usage bars, and the event log', async () => {
  await page.goto(new URL('/#/blocks', web.url).href);
  await page.fill('#block-create input[name=name]', 'acme:data');
  await page.fill('#block-create input[name=size]', '4');
  await page.click('#block-create button[type=submit]');
  await page.waitForSelector('td:has-text("acme:data")');
  await shot('04-blocks');
  await page.goto(new URL('/#/policies', web.url).href);
  await page.waitForSelector('[data-path="acme"] .bar');
  assert.match(await page.textContent('[data-path="acme"]'), /1 of 3/);
  assert.match(await page.textContent('[data-path="acme"]'), /4 of 16 MB/);
  await shot('05-policies');
  await page.goto(new URL('/#/log', web.url).href);
  await page.waitForSelector('#log-rows td:has-text("acme:hello")');
  await shot('06-log');
});

t('a tenant does not see another path, and cannot open it', async () => {
  await page.goto(new URL('/#/', web.url).href);
  await page.waitForSelector('#unikernels-local');
  const list = await page.textContent('#unikernels-local');
  assert.match(list, /acme:hello/);
  assert.doesNotMatch(list, /other:secret/);
  await shot('07-list');
  await page.goto(new URL('/#/u/local/other%3Asecret', web.url).href);
  await page.waitForSelector('main .error');
  assert.equal(await page.textContent('main .error'), 'alice may act only on names whose path is acme or below; other:secret is not');
});

t('a crash-looping unikernel: the list and its page show its failures and the next start', async () => {
  const alice = (await api('POST', '/tokens', { json: { user: 'alice', password: alicePassword } })).json.token;
  const r = await api('POST', '/instances/local/unikernels/acme:crash?arg=--solo5:quiet&arg=--exit=3&restart-on-fail=true&exit-code=3&mem=16', { token: alice, body: solo5Image() });
  assert.equal(r.status, 201, r.body.toString());
  await page.goto(new URL('/#/', web.url).href);
  // it restarts after a growing back-off: the page is reloaded until it catches it waiting
  await until('the list shows acme:crash restarting', async () => {
    await page.reload();
    await page.waitForSelector('#unikernels-local');
    return (await page.$('tr.restarting[data-name="acme:crash"]')) !== null;
  }, 30_000);
  assert.match(await page.textContent('tr[data-name="acme:crash"]'), /crash loop: restarting after \d+ failures?, next start \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(in \d+ s\)/);
  assert.match(await page.textContent('tr[data-name="acme:hello"]'), /running \(pid \d+\) since /);
  await shot('08-crash-loop-list');
  await page.goto(new URL('/#/u/local/acme%3Acrash', web.url).href);
  await until('its page shows it restarting', async () => {
    await page.reload();
    await page.waitForSelector('#state');
    return /crash loop/.test(await page.textContent('#state'));
  }, 30_000);
  await shot('09-crash-loop');
  assert.equal((await api('DELETE', '/instances/local/unikernels/acme:crash', { token: alice })).status, 200);
});

t('account: one changes one\'s own password, giving the current one', async () => {
  await page.goto(new URL('/#/account', web.url).href);
  await page.fill('#a-current', 'not-the-password');
  await page.fill('#a-password', 'alice-password-2');
  await page.fill('#a-repeat', 'alice-password-2');
  await page.click('#password-change button[type=submit]');
  await page.waitForSelector('#account-status .error');
  assert.equal(await page.textContent('#account-status'), 'wrong current password');
  assert.equal(await page.getAttribute('#a-current', 'class'), 'invalid');
  await page.fill('#a-current', alicePassword);
  await page.fill('#a-password', 'alice-password-2');
  await page.fill('#a-repeat', 'alice-password-2');
  await page.click('#password-change button[type=submit]');
  await page.waitForSelector('#account-status .ok');
  await shot('10-account');
  assert.equal((await api('POST', '/tokens', { json: { user: 'alice', password: 'alice-password-2' } })).status, 201);
  const t2 = (await api('POST', '/tokens', { json: { user: 'alice', password: 'alice-password-2' } })).json.token;
  // back, through the API, for the tests below
  const r = await api('PUT', '/users/alice/password', { token: t2, json: { current: 'alice-password-2', password: alicePassword } });
  assert.equal(r.status, 200, r.body.toString());
});

t('a changing request with the session but without the CSRF token is refused', async () => {
  const r = await page.evaluate('fetch("/api/v1/instances/local/unikernels/acme:hello", { method: "DELETE" }).then(async (r) => [r.status, await r.json()])');
  assert.equal(r[0], 403);
  assert.equal(r[1].field, 'X-CSRF-Token');
});

t('destroy, then log out', async () => {
  await page.goto(new URL('/#/u/local/acme%3Ahello', web.url).href);
  await page.waitForSelector('#destroy-button');
  page.once('dialog', (d: { accept: () => Promise<void> }) => void d.accept());
  await page.click('#destroy-button');
  await page.waitForURL(/#\/$/);
  await page.waitForSelector('main h1:has-text("Unikernels")');
  assert.doesNotMatch(await page.textContent('main'), /acme:hello/);
  await page.click('#logout button');
  await page.waitForURL(/\/login$/);
  const st = await page.evaluate('fetch("/session").then((r) => r.status)');
  assert.equal(st, 401);
});

t('administrator: add remote instances with the connection test shown, reset a user\'s password, remove an instance', async () => {
  // a TLS endpoint (vmmd_tls) in front of the same daemons, and a delegation CA for `team`
  const pki = path.join(s.d.root, 'pki');
  fs.mkdirSync(pki);
  const cli = (bin: string): string => path.join(repoRoot, 'build', 'src', 'cli', `${bin}.js`);
  for (const args of [['vmmp_ca', 'generate', 'ca', 'db'], ['vmmp_request', 'add-policy', 'team', '2', '--mem', '64', '--cpu', '0'], ['vmmp_ca', 'sign', 'cacert.pem', 'db', 'ca.key', 'team.req']]) {
    const r = spawnSync(process.execPath, [cli(args[0]), ...args.slice(1)], { cwd: pki, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
  const freePort = (): Promise<number> => new Promise((resolve) => {
    const l = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (l.address() as net.AddressInfo).port;
      l.close(() => resolve(p));
    });
  });
  const port = await freePort();
  const closed = await freePort();
  tls = spawn(process.execPath, [cli('vmmd_tls'), 'cacert.pem', 'server.pem', 'server.key', '--ip', '127.0.0.1', '--port', String(port), '--tmpdir', s.d.tmpdir], { cwd: pki, stdio: 'ignore' });
  await until('vmmd_tls listening', () => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  }));
  await page.goto(new URL('/login', web.url).href);
  await page.fill('#user', 'admin');
  await page.fill('#password', web.adminPassword as string);
  await page.click('button[type=submit]');
  await page.waitForSelector('#who:has-text("admin")');
  const add = async (name: string, destination: string): Promise<string> => {
    await page.goto(new URL('/#/instances', web.url).href);
    await page.waitForSelector('#instance-add');
    for (const [k, v] of [['name', name], ['destination', destination], ['ca', path.join(pki, 'team.pem')], ['caKey', path.join(pki, 'team.key')], ['serverCa', path.join(pki, 'cacert.pem')], ['path', 'team']]) {
      await page.fill(`#i-${k}`, v);
    }
    // the connection test is the POST's: the list shows its result, it does not ask again
    const asked: string[] = [];
    const onRequest = (r: { url(): string }): void => {
      const u = new URL(r.url());
      if (u.pathname === `/api/v1/instances/${name}` && u.searchParams.has('status')) asked.push(u.href);
    };
    page.on('request', onRequest);
    await page.click('#instance-add-button');
    await page.waitForSelector('#instance-test');
    await page.waitForSelector(`tr[data-instance="${name}"] td.status:not(.loading)`);
    page.off('request', onRequest);
    assert.deepEqual(asked, [], `${name}: the connection test ran once`);
    return page.textContent('#instance-test');
  };
  assert.match(await add('far', `127.0.0.1:${port}`), new RegExp(`^Added far \\(127\\.0\\.0\\.1:${port} \\(team\\)\\)\\. Connection test: connected, 0 unikernels there$`));
  assert.match(await add('gone', `127.0.0.1:${closed}`), /^Added gone .*Connection test: failed: gone: .*refused/i);
  // each row's status is filled in when its answer comes
  await page.waitForSelector('tr[data-instance="far"] .ok');
  await page.waitForSelector('tr[data-instance="gone"] .down');
  assert.match(await page.textContent('tr[data-instance="far"]'), /up, 0 unikernels/);
  assert.match(await page.textContent('tr[data-instance="gone"]'), /down: /);
  await shot('11-instances');
  // a malformed destination is refused and marked
  await page.fill('#i-name', 'bad');
  await page.fill('#i-destination', 'host:99999');
  await page.click('#instance-add-button');
  await page.waitForSelector('#instance-status .error');
  assert.equal(await page.getAttribute('#i-destination', 'class'), 'invalid');
  // the event log: remote instances may be chosen too (through their endpoint)
  await page.goto(new URL('/#/log', web.url).href);
  await page.waitForSelector('#log-instance option[value="far"]', { state: 'attached' });
  assert.equal(await page.getAttribute('#log-instance option[value="far"]', 'disabled'), null);
  assert.equal(await page.inputValue('#log-instance'), 'local');
  // remove one
  await page.goto(new URL('/#/instances', web.url).href);
  await page.waitForSelector('tr[data-instance="gone"]');
  page.once('dialog', (d: { accept: () => Promise<void> }) => void d.accept());
  await page.click('tr[data-instance="gone"] button.danger');
  await page.waitForSelector('tr[data-instance="gone"]', { state: 'detached' });
  assert.deepEqual((await api('GET', '/instances', { token: admin })).json.map((i: { name: string }) => i.name), ['local', 'far']);

  // reset bob's password: a generated one, shown once, that works
  await page.goto(new URL('/#/users', web.url).href);
  page.once('dialog', (d: { accept: () => Promise<void> }) => void d.accept());
  await page.click('tr[data-user="bob"] button.reset');
  await page.waitForSelector('#reset-password');
  const pw = (await page.textContent('#reset-password')) as string;
  await shot('12-users');
  // the old one fails, the new one works (and, a success, clears the failure for the rate limit below)
  assert.equal((await api('POST', '/tokens', { json: { user: 'bob', password: 'bob-password-1' } })).status, 401);
  assert.equal((await api('POST', '/tokens', { json: { user: 'bob', password: pw } })).status, 201);
  await page.click('#logout button');
  await page.waitForURL(/\/login$/);
});

const login = async (user: string, password: string): Promise<void> => {
  await page.goto(new URL('/login', web.url).href);
  await page.fill('#user', user);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForSelector(`#who:has-text("${user}")`);
};

t('administrator: a user\'s path on one instance is shown, set and cleared on the users page; the tenant then sees only the new path', async () => {
  // a unikernel at alice's own path, which she must no longer see once bound to `other` on local
  let r = await api('POST', '/instances/local/unikernels/acme:keep?arg=--solo5:quiet&arg=--sleep', { token: admin, body: solo5Image() });
  assert.equal(r.status, 201, r.body.toString());
  await login('admin', web.adminPassword as string);
  await page.goto(new URL('/#/users', web.url).href);
  const cell = '#user-paths tr[data-user="alice"] td[data-instance="local"]';
  await page.waitForSelector(cell);
  assert.equal(await page.textContent(cell), 'acme (default)');
  assert.equal(await page.textContent('#user-paths tr[data-user="alice"] td[data-instance="far"]'), 'acme (default)');
  // the form carries the CSRF token; a malformed path is refused by the API's check (src/core/name.ts), shown and marked
  assert.equal(await page.inputValue('#user-path input[name=csrf]'), (await page.evaluate('fetch("/session").then((r) => r.json())')).csrf);
  await page.selectOption('#p-user', 'alice');
  await page.selectOption('#p-instance', 'local');
  await page.fill('#p-path', 'other:no space');
  await page.click('#user-path-set');
  await page.waitForSelector('#user-path-status .error');
  assert.equal(await page.textContent('#user-path-status'), 'paths: local: invalid path: invalid label (only [a-zA-Z0-9-.] allowed, 1 to 63 chars)');
  assert.equal(await page.getAttribute('#p-path', 'class'), 'invalid');
  assert.deepEqual((await api('GET', '/users', { token: admin })).json.find((u: { name: string }) => u.name === 'alice').paths, {});
  await page.fill('#p-path', 'other');
  await page.click('#user-path-set');
  await page.waitForSelector('#user-path-status .ok');
  assert.equal(await page.textContent('#user-path-status'), 'alice is at other on local.');
  assert.equal(await page.textContent(cell), 'other');
  await shot('13-user-paths');
  assert.deepEqual((await api('GET', '/users', { token: admin })).json.find((u: { name: string }) => u.name === 'alice').paths, { local: 'other' });
  await page.click('#logout button');
  await page.waitForURL(/\/login$/);

  // alice now sees other:secret on local, and not acme:keep, which she cannot open either
  await login('alice', alicePassword);
  await page.goto(new URL('/#/', web.url).href);
  await page.waitForSelector('#unikernels-local');
  const list = await page.textContent('#unikernels-local');
  assert.match(list, /other:secret/);
  assert.doesNotMatch(list, /acme:keep/);
  await page.goto(new URL('/#/u/local/acme%3Akeep', web.url).href);
  await page.waitForSelector('main .error');
  assert.equal(await page.textContent('main .error'), 'alice may act only on names whose path is other or below; acme:keep is not');
  await page.click('#logout button');
  await page.waitForURL(/\/login$/);

  // cleared: the default path again
  await login('admin', web.adminPassword as string);
  await page.goto(new URL('/#/users', web.url).href);
  await page.waitForSelector('#user-path');
  await page.selectOption('#p-user', 'alice');
  await page.selectOption('#p-instance', 'local');
  await page.click('#user-path-clear');
  await page.waitForSelector('#user-path-status .ok');
  assert.equal(await page.textContent('#user-path-status'), 'alice is at acme on local again.');
  assert.equal(await page.textContent(cell), 'acme (default)');
  assert.deepEqual((await api('GET', '/users', { token: admin })).json.find((u: { name: string }) => u.name === 'alice').paths, {});
  await page.click('#logout button');
  await page.waitForURL(/\/login$/);
  r = await api('DELETE', '/instances/local/unikernels/acme:keep', { token: admin });
  assert.equal(r.status, 200, r.body.toString());
});

t('unikernels and instances pages: a host that is down is shown as down without holding up the rows of the others', async () => {
  // a host that accepts connections and never answers: only the connect timeout ends a try
  const held: net.Socket[] = [];
  const silent = net.createServer((c) => held.push(c)).listen(0, '127.0.0.1');
  await new Promise((resolve) => silent.once('listening', resolve));
  const pki = path.join(s.d.root, 'pki');
  const r = await api('POST', '/instances', { token: admin, json: {
    name: 'silent', destination: `127.0.0.1:${(silent.address() as net.AddressInfo).port}`,
    ca: path.join(pki, 'team.pem'), caKey: path.join(pki, 'team.key'), serverCa: path.join(pki, 'cacert.pem'), path: 'team',
  } });
  assert.equal(r.status, 201, r.body.toString());
  try {
    await login('admin', web.adminPassword as string);
    await page.goto(new URL('/#/', web.url).href);
    await page.waitForSelector('#unikernels-local');
    // the local rows are shown while the silent host is still being tried
    assert.match(await page.textContent('#unikernels-local'), /other:secret/);
    assert.equal(await page.getAttribute('section[data-instance="silent"]', 'class'), 'loading');
    assert.match(await page.textContent('section[data-instance="silent"]'), /^silent loading…$/);
    await page.waitForSelector('section[data-instance="silent"] .down', { timeout: 3 * REMOTE_CONNECT_TIMEOUT_MS });
    assert.equal(await page.textContent('section[data-instance="silent"] .down'), 'down');
    assert.match(await page.textContent('section[data-instance="silent"] .error'), new RegExp(`^silent: .*no TLS handshake within ${REMOTE_CONNECT_TIMEOUT_MS / 1000} s`));
    // the Instances page: listed at once, the local status shown while the silent host is still tried, then down
    await page.goto(new URL('/#/instances', web.url).href);
    await page.waitForSelector('tr[data-instance="local"] .ok', { timeout: 3 * REMOTE_CONNECT_TIMEOUT_MS });
    assert.match(await page.textContent('tr[data-instance="local"] .ok'), /^up, \d+ unikernels?$/);
    assert.match(await page.textContent('tr[data-instance="silent"]'), /loading…/);
    assert.equal(await page.getAttribute('tr[data-instance="silent"] td.status', 'class'), 'status loading');
    await page.waitForSelector('tr[data-instance="silent"] .down', { timeout: 3 * REMOTE_CONNECT_TIMEOUT_MS });
    assert.equal(await page.getAttribute('tr[data-instance="silent"] td.status', 'class'), 'status');
    assert.match(await page.textContent('tr[data-instance="silent"] .down'), new RegExp(`^down: silent: .*no TLS handshake within ${REMOTE_CONNECT_TIMEOUT_MS / 1000} s`));
    await page.click('#logout button');
    await page.waitForURL(/\/login$/);
  } finally {
    assert.equal((await api('DELETE', '/instances/silent', { token: admin })).status, 200);
    for (const c of held) c.destroy();
    silent.close();
  }
});

t(`the login rate limit: after ${limits.webLoginFailures} failures from one address, even the right password waits`, async () => {
  for (let i = 0; i < limits.webLoginFailures; i++) {
    await page.goto(new URL('/login', web.url).href);
    await page.fill('#user', 'alice');
    await page.fill('#password', 'wrong-password');
    await page.click('button[type=submit]');
    await page.waitForSelector('.error:has-text("Wrong user name or password")');
  }
  await page.fill('#user', 'alice');
  await page.fill('#password', alicePassword);
  await page.click('button[type=submit]');
  await page.waitForSelector('.error');
  assert.match(await page.textContent('.error'), /too many failed logins from 127\.0\.0\.1; try again in \d+ s/);
  assert.match(web.stderr(), /alice@127\.0\.0\.1: login refused: too many failed logins/);
});
