/**
 * vmmd_web's command line: plain HTTP only on loopback, HTTPS with its own certificate and key
 * (the login cookie is then Secure), usage errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { until } from './helpers/vmmd.js';

const WEB = path.join(__dirname, '..', 'src', 'cli', 'vmmd_web.js');

test('plain HTTP on an address that is not loopback is refused (124); so are --http with --cert and an unreadable key', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmmd-web-'));
  try {
    let r = spawnSync(process.execPath, [WEB, '--http', '0.0.0.0:8080', '--state', path.join(dir, 's.json')], { encoding: 'utf8' });
    assert.equal(r.status, 124);
    assert.match(r.stderr, /--http: 0\.0\.0\.0 is not a loopback address; plain HTTP would carry passwords and tokens in the clear \(use --https\)/);
    r = spawnSync(process.execPath, [WEB, '--http', '[::]:8080', '--state', path.join(dir, 's.json')], { encoding: 'utf8' });
    assert.equal(r.status, 124);
    r = spawnSync(process.execPath, [WEB, '--http', '127.0.0.1:8080', '--cert', 'x.pem', '--state', path.join(dir, 's.json')], { encoding: 'utf8' });
    assert.equal(r.status, 124);
    r = spawnSync(process.execPath, [WEB, '--https', '127.0.0.1:0', '--cert', path.join(dir, 'none.pem'), '--key', 'k', '--state', path.join(dir, 's.json')], { encoding: 'utf8' });
    assert.equal(r.status, 124);
    assert.match(r.stderr, /cannot read --cert .*none\.pem: no such file/);
    assert.ok(!fs.existsSync(path.join(dir, 's.json')), 'nothing written on a usage error');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('HTTPS with the given certificate and key; the login form\'s cookie is Secure', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmmd-web-'));
  const cert = path.join(dir, 'web.pem');
  const key = path.join(dir, 'web.key');
  const o = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert], { encoding: 'utf8' });
  assert.equal(o.status, 0, o.stderr);
  const p = spawn(process.execPath, [WEB, '--https', '127.0.0.1:0', '--cert', cert, '--key', key, '--state', path.join(dir, 's.json'), '--tmpdir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (b: Buffer) => (out += b.toString()));
  try {
    await until('url', () => /url: https:\/\/127\.0\.0\.1:\d+\//.test(out));
    const url = (/url: (\S+)/.exec(out) as RegExpExecArray)[1];
    const get = (u: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> => new Promise((resolve, reject) => {
      https.get(new URL(u, url), { ca: fs.readFileSync(cert), checkServerIdentity: () => undefined, agent: false }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
      }).on('error', reject);
    });
    const r = await get('/api/v1/whoami');
    assert.equal(r.status, 401);
    assert.equal(JSON.parse(r.body).error, 'no credentials: send "Authorization: Bearer TOKEN"');
    assert.equal(r.headers['strict-transport-security'], 'max-age=31536000');
    const l = await get('/login');
    assert.equal(l.status, 200);
    assert.match(String(l.headers['set-cookie']), /^vw_login=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=600; Secure$/);
  } finally {
    p.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('first start on a terminal, and with --print-admin-password (npm start): the password is printed and no password file is left', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmmd-web-'));
  const started = (p: ReturnType<typeof spawn>, out: () => string): Promise<void> => until('url', () => {
    if (p.exitCode !== null) throw new Error(`vmmd_web exited: ${out()}`);
    return /url: http:\/\//.test(out());
  });
  try {
    // a stale file of an earlier state is removed
    fs.writeFileSync(path.join(dir, 's.admin-password'), 'old\n', { mode: 0o600 });
    const p = spawn(process.execPath, [WEB, '--http', '127.0.0.1:0', '--state', path.join(dir, 's.json'), '--tmpdir', dir, '--print-admin-password'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    try {
      await started(p, () => out);
    } finally {
      p.kill();
    }
    assert.match(out, /created .*s\.json with the administrator "admin", password: \S{16,}\n/);
    assert.ok(!fs.existsSync(path.join(dir, 's.admin-password')));
    // standard output a terminal (script(1) gives it a pseudo-terminal)
    const script = spawnSync('script', ['--version'], { encoding: 'utf8' });
    if (script.status !== 0) return;
    const cmd = [process.execPath, WEB, '--http', '127.0.0.1:0', '--state', path.join(dir, 't.json'), '--tmpdir', dir].map((a) => `'${a}'`).join(' ');
    const t = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let tout = '';
    t.stdout?.on('data', (b: Buffer) => (tout += b.toString()));
    try {
      await started(t, () => tout);
    } finally {
      process.kill(-(t.pid as number), 'SIGTERM');
    }
    assert.match(tout, /created .*t\.json with the administrator "admin", password: \S{16,}\r?\n/);
    assert.ok(!fs.existsSync(path.join(dir, 't.admin-password')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
