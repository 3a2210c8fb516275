/**
 * vmmd_web's web UI in headless Chromium (Debian's chromium, driven by playwright-core) against
 * the real local stack: log in, deploy with an uploaded image, console lines arriving live,
 * statistics chart, restart, destroy, block devices, policies, event log, a tenant that cannot
 * see another path, CSRF, logout and the login rate limit. Screenshots go to
 * build/test-output/web-ui/. Skipped, saying why, when chromium is not installed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Stack, type WebProcess, call, startStack, startWeb } from './helpers/web.js';
import { solo5Image } from './helpers/image.js';
import { repoRoot } from './helpers/vmmd.js';
import { limits } from '../src/core/limits.js';

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
