/**
 * vmmc_remote and vmmc_bistro as processes against a TLS 1.3 peer on loopback that
 * verifies client chains like the endpoint (OpenSSL, one CA): what the server sees,
 * bulk uploads, and each failure mapped to upstream's exit code with one line.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import * as zlib from 'node:zlib';
import { X509Certificate } from 'node:crypto';
import { FramedConn } from '../src/transport/conn.js';
import { type Command, type Wire, decodeCertExtension, makeHeader, ALBATROSS_OID } from '../src/core/wire/wire.js';
import { certFacts } from '../src/core/x509.js';
import { unwrap } from '../src/core/result.js';
import { root } from '../src/core/name.js';

const CLI = path.join(__dirname, '..', 'src', 'cli');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmmc-remote-'));
const other = path.join(dir, 'other');

interface Out { code: number; stdout: string; stderr: string }
function run(bin: string, args: string[], cwd = dir): Promise<Out> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(CLI, `${bin}.js`), ...args], { cwd, timeout: 30_000, env: { ...process.env, TMPDIR: dir } }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
    });
  });
}
function sync(bin: string, args: string[], cwd = dir): void {
  const r = spawnSync(process.execPath, [path.join(CLI, `${bin}.js`), ...args], { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `${bin} ${args.join(' ')}: ${r.stderr}`);
}

/** What the peer saw of one connection. */
interface Seen { chain: X509Certificate[]; command?: Command; cn?: string; upload?: Buffer }
type Behaviour = (c: FramedConn, s: tls.TLSSocket, seen: Seen) => Promise<void>;

let server: tls.Server;
let port = 0;
let behaviour: Behaviour = async () => {};
const seen: Seen[] = [];

const reply = (text: string): Wire => ({ header: makeHeader(root), payload: { kind: 'reply', value: { kind: 'string', value: text } } });

function startServer(cwd: string, caFile: string): Promise<tls.Server> {
  const srv = tls.createServer({
    key: fs.readFileSync(path.join(cwd, 'server.key')), cert: fs.readFileSync(path.join(cwd, 'server.pem')),
    ca: fs.readFileSync(caFile), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3',
  }, (s) => {
    s.on('error', () => {});
    const chain: X509Certificate[] = [];
    let p = s.getPeerCertificate(true) as tls.DetailedPeerCertificate | undefined;
    while (p && p.raw && !chain.some((c) => c.raw.equals(p!.raw))) {
      chain.push(new X509Certificate(p.raw));
      p = p.issuerCertificate;
    }
    const facts = unwrap(certFacts(new Uint8Array(chain[0].raw)));
    const ext = facts.extensions.find((e) => e.oid === ALBATROSS_OID);
    const sn: Seen = { chain, cn: facts.subjectCN, command: ext ? unwrap(decodeCertExtension(ext.value)).command : undefined };
    seen.push(sn);
    void behaviour(new FramedConn(s), s, sn).then(() => s.end());
  });
  return new Promise((r) => srv.listen(0, '127.0.0.1', () => r(srv)));
}

before(async () => {
  sync('vmmp_ca', ['generate', 'ca', 'db']);
  sync('vmmp_request', ['add-policy', 'user', '4', '--mem', '512', '--cpu', '0', '--size', '64']);
  sync('vmmp_ca', ['sign', 'cacert.pem', 'db', 'ca.key', 'user.req']);
  sync('vmmp_request', ['info', '--name', 'hello']);
  sync('vmmp_ca', ['sign', 'user.pem', 'db', 'user.key', 'hello.req']);
  fs.writeFileSync(path.join(dir, 'disk.img'), Buffer.alloc(200_000, 'albatross'));
  sync('vmmp_request', ['set-block', 'disk']);
  sync('vmmp_ca', ['sign', 'user.pem', 'db', 'user.key', 'disk.req']);
  fs.mkdirSync(other);
  sync('vmmp_ca', ['generate', 'stranger', 'db'], other);
  server = await startServer(dir, path.join(dir, 'cacert.pem'));
  port = (server.address() as { port: number }).port;
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  fs.rmSync(dir, { recursive: true, force: true });
});

const remote = (args: string[]): Promise<Out> => run('vmmc_remote', [...args, '--server-ca', 'cacert.pem', '-d', `127.0.0.1:${port}`]);

test('vmmc_remote presents the signed chain; the reply is printed', async () => {
  behaviour = async (c) => {
    await c.writeMessage(reply('no unikernels here'));
  };
  seen.length = 0;
  const r = await remote(['hello.pem', 'hello.key']);
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, 'no unikernels here\n', '']);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].cn, 'hello');
  assert.deepEqual(seen[0].chain.map((c) => c.subject), ['CN=hello', 'CN=user', 'CN=ca']);
  assert.deepEqual(seen[0].command, { kind: 'unikernel', value: { kind: 'info', value: null } });
});

test('vmmc_remote --data streams a block device (zlib when the command says so)', async () => {
  behaviour = async (c, _s, sn) => {
    const parts: Buffer[] = [];
    for (;;) {
      const f = await c.read();
      if (f.kind !== 'frame') break;
      parts.push(Buffer.from(f.body));
    }
    sn.upload = Buffer.concat(parts);
    await c.writeMessage(reply('set block device'));
  };
  seen.length = 0;
  const r = await remote(['disk.pem', 'disk.key', '--data', 'disk.img']);
  assert.deepEqual([r.code, r.stdout], [0, 'set block device\n'], r.stderr);
  assert.deepEqual(seen[0].command, { kind: 'block', value: { kind: 'set', value: true } });
  assert.deepEqual(zlib.inflateSync(seen[0].upload!), fs.readFileSync(path.join(dir, 'disk.img')));
  const u = await remote(['disk.pem', 'disk.key']);
  assert.equal(u.code, 124);
  assert.match(u.stderr, /block set needs --data FILE/);
});

test('a failure reply exits 117; a malformed one or silence 121', async () => {
  behaviour = async (c) => {
    await c.writeMessage({ header: makeHeader(root), payload: { kind: 'failure', value: 'couldn\'t reach service' } });
  };
  let r = await remote(['hello.pem', 'hello.key']);
  assert.deepEqual([r.code, r.stderr], [117, "vmmc_remote: failure: couldn't reach service\n"]);
  behaviour = async (c) => {
    await c.write(new Uint8Array([1, 2, 3]));
  };
  r = await remote(['hello.pem', 'hello.key']);
  assert.equal(r.code, 121);
  assert.match(r.stderr, /^vmmc_remote: communication failure: .+\n$/);
  behaviour = async () => {};
  r = await remote(['hello.pem', 'hello.key']);
  assert.equal(r.code, 121);
  assert.match(r.stderr, /without an answer/);
});

test('vmmc_bistro: an endpoint that closes after the handshake without a reply is a communication failure (121)', async () => {
  behaviour = async () => {};
  const r = await run('vmmc_bistro', ['destroy', 'web', '--ca', 'user.pem', '--ca-key', 'user.key', '-d', `127.0.0.1:${port}`]);
  assert.equal(r.code, 121, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^vmmc_bistro: communication failure: the endpoint closed the connection without an answer/m);
});

test('local checks before connecting: key mismatch 123, chain not from --server-ca 116, unreadable file 123', async () => {
  let r = await remote(['hello.pem', 'user.key']);
  assert.equal(r.code, 123);
  assert.match(r.stderr, /^vmmc_remote: Public key of certificate doesn't match private key/);
  r = await run('vmmc_remote', ['hello.pem', 'hello.key', '--server-ca', 'other/cacert.pem', '-d', `127.0.0.1:${port}`]);
  assert.equal(r.code, 116);
  assert.match(r.stderr, /^vmmc_remote: TLS validation error of provided certificate chain: /);
  r = await remote(['missing.pem', 'hello.key']);
  assert.deepEqual([r.code, r.stderr], [123, 'vmmc_remote: cannot read certificate missing.pem: no such file\n']);
});

test('vmmc_remote: a broken certificate file is named as such, not the key file', async () => {
  const pem = fs.readFileSync(path.join(dir, 'hello.pem'), 'utf8').split('\n');
  // a base64 character replaced by one base64 does not have, and a line left out (valid base64, broken DER)
  fs.writeFileSync(path.join(dir, 'bad64.pem'), [...pem.slice(0, 2), `${pem[2].slice(0, 5)}!${pem[2].slice(6)}`, ...pem.slice(3)].join('\n'));
  fs.writeFileSync(path.join(dir, 'cut.pem'), [...pem.slice(0, 2), ...pem.slice(3)].join('\n'));
  let r = await remote(['bad64.pem', 'hello.key']);
  assert.deepEqual([r.code, r.stderr], [123, 'vmmc_remote: bad64.pem: invalid base64 in PEM block 1 (CERTIFICATE)\n']);
  r = await remote(['cut.pem', 'hello.key']);
  assert.equal(r.code, 123);
  assert.match(r.stderr, /^vmmc_remote: cut\.pem: [^\n]+\n$/);
  assert.doesNotMatch(r.stderr, /hello\.key/);
});

test("an OpenSSL alert from the server is reported on one line (OpenSSL's message ends in a newline)", async () => {
  // a server that answers the ClientHello with a fatal handshake_failure alert
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.end(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])));
  });
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const ap = (srv.address() as net.AddressInfo).port;
  const r = await run('vmmc_remote', ['hello.pem', 'hello.key', '--server-ca', 'cacert.pem', '-d', `127.0.0.1:${ap}`]);
  await new Promise<void>((res) => srv.close(() => res()));
  assert.equal(r.code, 119, r.stderr);
  assert.equal(r.stderr, 'vmmc_remote: the server refused our certificate (sslv3 alert handshake failure: SSL alert number 40)\n');
});

test('TLS failures: server not trusted 120, our certificate refused 121 with the likely reason, nothing listening 122', async () => {
  // a server whose certificate comes from another CA
  const stranger = await startServer(other, path.join(dir, 'cacert.pem'));
  const sp = (stranger.address() as { port: number }).port;
  let r = await run('vmmc_remote', ['hello.pem', 'hello.key', '--server-ca', 'cacert.pem', '-d', `127.0.0.1:${sp}`]);
  await new Promise<void>((res) => stranger.close(() => res()));
  assert.equal(r.code, 120, r.stderr);
  assert.match(r.stderr, /^vmmc_remote: the certificate of 127.0.0.1:\d+ is not trusted by --server-ca/);
  // a server that trusts another CA for clients: with TLS 1.3 the refusal comes after our
  // handshake completed, and node reports no alert, only the end of the connection
  const picky = await startServer(dir, path.join(other, 'cacert.pem'));
  const pp = (picky.address() as { port: number }).port;
  r = await run('vmmc_remote', ['hello.pem', 'hello.key', '--server-ca', 'cacert.pem', '-d', `127.0.0.1:${pp}`]);
  await new Promise<void>((res) => picky.close(() => res()));
  assert.equal(r.code, 121, r.stderr);
  assert.match(r.stderr, /^vmmc_remote: communication failure: the endpoint closed the connection without an answer \(it refused the certificate chain/);
  r = await run('vmmc_remote', ['hello.pem', 'hello.key', '--server-ca', 'cacert.pem', '-d', `127.0.0.1:${pp}`]);
  assert.deepEqual([r.code, r.stderr], [122, `vmmc_remote: connection refused at 127.0.0.1:${pp}\n`]);
});

test('vmmc_bistro: a 5-minute leaf under --ca, checked against its policy; - prints the chain', async () => {
  behaviour = async (c) => {
    await c.writeMessage(reply('ok'));
  };
  seen.length = 0;
  let r = await run('vmmc_bistro', ['destroy', 'web', '--ca', 'user.pem', '--ca-key', 'user.key', '-d', `127.0.0.1:${port}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'ok\n');
  assert.match(r.stderr, /warning: the CA key user.key is on this machine/);
  const leaf = seen[0].chain[0];
  assert.equal(leaf.subject, 'CN=web');
  assert.equal((new Date(leaf.validTo).getTime() - new Date(leaf.validFrom).getTime()) / 1000, 310);
  assert.deepEqual(seen[0].command, { kind: 'unikernel', value: { kind: 'destroy', value: null } });
  assert.deepEqual(seen[0].chain.map((c) => c.subject), ['CN=web', 'CN=user', 'CN=ca']);

  r = await run('vmmc_bistro', ['add-policy', 'sub', '8', '--ca', 'user.pem', '--ca-key', 'user.key', '-d', `127.0.0.1:${port}`]);
  assert.equal(r.code, 123);
  assert.match(r.stderr, /couldn't generate certificate chain: policy above allows 4 unikernels, which is fewer than 8\n$/);

  r = await run('vmmc_bistro', ['console', 'web', '--ca', 'user.pem', '--ca-key', 'user.key', '-d', '-']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.match(/BEGIN CERTIFICATE/g)?.length, 2);
  fs.writeFileSync(path.join(dir, 'printed.pem'), r.stdout);
  const v = spawnSync('openssl', ['verify', '-CAfile', 'cacert.pem', '-untrusted', 'user.pem', 'printed.pem'], { cwd: dir, encoding: 'utf8' });
  assert.match(v.stdout, /printed.pem: OK/);

  r = await run('vmmc_bistro', ['info', '--ca', 'user.pem', '--ca-key', 'hello.key', '-d', `127.0.0.1:${port}`]);
  assert.equal(r.code, 123);
  assert.match(r.stderr, /Public key of certificate doesn't match private key/);
});

function runEnv(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<Out> {
  return new Promise((resolve) => {
    const e: NodeJS.ProcessEnv = { ...process.env, TMPDIR: dir };
    delete e.ALBATROSS_TMPDIR;
    Object.assign(e, env);
    execFile(process.execPath, [path.join(CLI, `${bin}.js`), ...args], { cwd: os.tmpdir(), timeout: 30_000, env: e }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

test('named remotes: vmmc_remote --remote and vmmc_bistro --remote take destination, server CA, certificate and keys from the config file', async () => {
  behaviour = async (c) => {
    await c.writeMessage(reply('answered'));
  };
  const cfgDir = path.join(dir, 'cfg');
  fs.mkdirSync(cfgDir, { recursive: true });
  const cfg = path.join(cfgDir, 'remotes');
  // relative paths are relative to the config file's directory
  fs.writeFileSync(cfg, [
    '# remotes of the tests',
    'tmpdir = /nonexistent-albatross-run',
    '',
    '[test]',
    `destination = 127.0.0.1:${port}`,
    'server-ca = ../cacert.pem   ; the root',
    'cert = ../hello.pem',
    'key = ../hello.key',
    'ca = ../user.pem',
    'ca-key = ../user.key',
    '[other]',
    'destination = 192.0.2.1',
    '',
  ].join('\n'), { mode: 0o600 });
  fs.chmodSync(cfg, 0o600);
  const env = { ALBATROSS_CONFIG: cfg };
  seen.length = 0;
  let r = await runEnv('vmmc_remote', ['--remote', 'test'], env);
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, 'answered\n', ''], 'run from another directory: no repeated flags');
  assert.equal(seen[0].cn, 'hello');
  r = await runEnv('vmmc_bistro', ['info', '-n', 'web', '--remote', 'test'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'answered\n');
  assert.deepEqual(seen[1].chain.map((c) => c.subject), ['CN=web', 'CN=user', 'CN=ca'], 'signed with the ca and ca-key of the remote');
  r = await runEnv('vmmc_remote', ['--remote', 'nosuch'], env);
  assert.deepEqual([r.code, r.stderr], [123, `vmmc_remote: --remote nosuch: no remote of that name in ${cfg} (there: test, other)\n`]);
  r = await runEnv('vmmc_local', ['info'], env);
  assert.equal(r.code, 122);
  assert.match(r.stderr, /\/nonexistent-albatross-run\/util\/vmmd\.sock/, "vmmc_local's tmpdir comes from the config file");
  r = await runEnv('vmmc_local', ['info'], { ...env, ALBATROSS_TMPDIR: '/nonexistent-env' });
  assert.match(r.stderr, /\/nonexistent-env\/util\/vmmd\.sock/, 'ALBATROSS_TMPDIR wins over the config file');

  // refused: a config file others may write, inline PEM, a key file others may read
  fs.chmodSync(cfg, 0o666);
  r = await runEnv('vmmc_remote', ['--remote', 'test'], env);
  assert.deepEqual([r.code, r.stderr], [123, `vmmc_remote: the config file ${cfg} may be written by anyone (mode 0666): it chooses keys and trusted servers; chmod go-w ${cfg}\n`]);
  fs.chmodSync(cfg, 0o620);
  r = await runEnv('vmmc_bistro', ['info', '--remote', 'test'], env);
  assert.match(r.stderr, /may be written by its group \(mode 0620\)/);
  fs.chmodSync(cfg, 0o600);
  const key = path.join(dir, 'hello.key');
  fs.chmodSync(key, 0o644);
  r = await runEnv('vmmc_remote', ['--remote', 'test'], env);
  assert.deepEqual([r.code, r.stderr], [123, `vmmc_remote: the key ${key} (from ${cfg}) is readable by anyone (mode 0644): chmod 600 ${key}\n`]);
  fs.chmodSync(key, 0o600);
  fs.appendFileSync(cfg, '[inline]\nkey = -----BEGIN PRIVATE KEY-----\n');
  r = await runEnv('vmmc_remote', ['--remote', 'test'], env);
  assert.equal(r.code, 123);
  assert.match(r.stderr, /line 14: PEM text \(a key or a certificate\): the file names files only; put it in a file/);
  r = await runEnv('vmmc_remote', ['--remote', 'test'], { ALBATROSS_CONFIG: path.join(dir, 'absent') });
  assert.deepEqual([r.code, r.stderr], [123, `vmmc_remote: cannot read the config file ${path.join(dir, 'absent')}: no such file\n`]);
});
