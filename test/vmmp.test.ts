/**
 * vmmp_request and vmmp_ca as processes in a temp directory, cross-checked with the
 * openssl command line: requests verify, signed chains verify, CRLs list what was revoked,
 * requests made by openssl are signed, and bad input gives one line and a non-zero exit.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { csrFacts, certFacts, pemBlocks } from '../src/core/x509.js';
import { ALBATROSS_OID, decodeCertExtension, encodeCertExtension } from '../src/core/wire/wire.js';
import { unwrap } from '../src/core/result.js';
import { solo5Image } from './helpers/image.js';

const CLI = join(__dirname, '..', 'src', 'cli');
const dir = mkdtempSync(join(tmpdir(), 'vmmp-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(bin: string, args: string[], cwd = dir): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(CLI, `${bin}.js`), ...args], { cwd, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
function ok(bin: string, args: string[], cwd = dir): string {
  const r = run(bin, args, cwd);
  assert.equal(r.code, 0, `${bin} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const openssl = (args: string[], cwd = dir): string => execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const certsIn = (file: string) => pemBlocks(readFileSync(join(dir, file), 'utf8')).map((b) => unwrap(certFacts(b.der)));
function extensionCommand(exts: { oid: string; value: Uint8Array }[]) {
  const e = exts.find((x) => x.oid === ALBATROSS_OID);
  assert.ok(e, 'albatross extension present');
  return unwrap(decodeCertExtension(e.value)).command;
}

test('generate: a self-signed CA and a server certificate that openssl verifies; keys are private', () => {
  ok('vmmp_ca', ['generate', 'ca', 'db']);
  assert.equal(statSync(join(dir, 'ca.key')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'server.key')).mode & 0o777, 0o600);
  assert.match(openssl(['verify', '-CAfile', 'cacert.pem', 'server.pem']), /server.pem: OK/);
  const ca = openssl(['x509', '-in', 'cacert.pem', '-noout', '-text']);
  assert.match(ca, /CA:TRUE/);
  assert.match(ca, /Certificate Sign, CRL Sign/);
  assert.doesNotMatch(ca, /Subject Key Identifier/);
  const server = openssl(['x509', '-in', 'server.pem', '-noout', '-text']);
  assert.match(server, /TLS Web Server Authentication/);
  assert.match(server, /Subject Key Identifier/);
  assert.match(readFileSync(join(dir, 'db'), 'utf8'), /^[0-9a-f]+ server\n$/);
});

test('request + sign: a delegation CA and a leaf from it form a chain openssl verifies', () => {
  ok('vmmp_request', ['add-policy', 'user', '16', '--mem', '1024', '--cpu', '0', '--cpu', '1', '--bridge', 'service']);
  const v = spawnSync('openssl', ['req', '-verify', '-in', 'user.req', '-noout'], { cwd: dir, encoding: 'utf8' });
  assert.equal(v.status, 0);
  assert.match(v.stdout + v.stderr, /verify OK/);
  const csr = unwrap(csrFacts(pemBlocks(readFileSync(join(dir, 'user.req'), 'utf8'))[0].der));
  assert.equal(csr.subjectCN, 'user');
  assert.equal(csr.extensions.length, 1);
  assert.equal(csr.extensions[0].critical, false);
  const cmd = extensionCommand(csr.extensions);
  assert.deepEqual(cmd, { kind: 'policy', value: { kind: 'add', value: { cpuids: [0, 1], unikernels: 16n, memory: 1024, bridges: ['service'] } } });

  ok('vmmp_ca', ['sign', 'cacert.pem', 'db', 'ca.key', 'user.req']);
  const [user] = certsIn('user.pem');
  assert.equal(certsIn('user.pem').length, 1, 'signed by the self-signed root: no chain appended');
  assert.equal(user.isCA, true);
  assert.deepEqual(extensionCommand(user.extensions), cmd);
  assert.ok(user.notAfter! - user.notBefore! >= 365 * 86400_000);

  writeFileSync(join(dir, 'hello.hvt'), solo5Image({ nets: ['service'] }));
  ok('vmmp_request', ['create', 'hello', 'hello.hvt', '--net', 'service', '--mem', '64']);
  ok('vmmp_ca', ['sign', 'user.pem', 'db', 'user.key', 'hello.req']);
  const chain = certsIn('hello.pem');
  assert.equal(chain.length, 2, 'the intermediate follows the leaf');
  assert.equal(chain[0].subjectCN, 'hello');
  assert.equal(chain[0].isCA, false);
  assert.equal(chain[1].subjectCN, 'user');
  const leafCmd = extensionCommand(chain[0].extensions);
  assert.equal(leafCmd.kind === 'unikernel' && leafCmd.value.kind === 'create' && leafCmd.value.value.compressed, true);
  assert.ok(chain[0].notAfter! - chain[0].notBefore! <= 86400_000 + 10_000);
  writeFileSync(join(dir, 'hello-leaf.pem'), readFileSync(join(dir, 'hello.pem'), 'utf8').split(/(?<=-----END CERTIFICATE-----\n)/)[0]);
  assert.match(openssl(['verify', '-CAfile', 'cacert.pem', '-untrusted', 'user.pem', 'hello-leaf.pem']), /OK/);
  const text = openssl(['x509', '-in', 'hello-leaf.pem', '-noout', '-text']);
  assert.match(text, /TLS Web Client Authentication/);
  assert.match(text, /Authority Key Identifier/);
  const lines = readFileSync(join(dir, 'db'), 'utf8').trim().split('\n');
  assert.deepEqual(lines.map((l) => l.split(' ')[1]), ['server', 'user', 'hello']);
});

test('sign checks the request against the policy of the signing CA', () => {
  ok('vmmp_request', ['add-policy', 'greedy', '16', '--mem', '4096']);
  let r = run('vmmp_ca', ['sign', 'user.pem', 'db', 'user.key', 'greedy.req']);
  assert.equal(r.code, 123);
  assert.equal(r.stderr, 'vmmp_ca: error while signing: policy above allows 1024 MB memory, which is fewer than 4096 MB\n');
  writeFileSync(join(dir, 'big.hvt'), solo5Image());
  ok('vmmp_request', ['create', 'big', 'big.hvt', '--mem', '2048']);
  r = run('vmmp_ca', ['sign', 'user.pem', 'db', 'user.key', 'big.req']);
  assert.equal(r.code, 123);
  assert.match(r.stderr, /^vmmp_ca: error while signing: maximum allowed memory \(1024\) would be exceeded \(requesting 2048\)\n$/);
  assert.ok(!existsSync(join(dir, 'big.pem')));
});

test('an existing key is reused; --new-key replaces it', () => {
  ok('vmmp_request', ['destroy', 'again']);
  const k1 = readFileSync(join(dir, 'again.key'), 'utf8');
  assert.match(ok('vmmp_request', ['destroy', 'again']), /^reused again.key/);
  assert.equal(readFileSync(join(dir, 'again.key'), 'utf8'), k1);
  ok('vmmp_request', ['destroy', 'again', '--new-key', '--key-type', 'p256']);
  assert.notEqual(readFileSync(join(dir, 'again.key'), 'utf8'), k1);
  assert.match(openssl(['pkey', '-in', 'again.key', '-noout', '-text']), /P-256|prime256v1/);
});

test('RSA and P-256 keys sign and verify', () => {
  const d = mkdtempSync(join(dir, 'rsa-'));
  ok('vmmp_ca', ['generate', 'root', 'db', '--key-type', 'rsa2048'], d);
  ok('vmmp_request', ['info', '--key-type', 'p256', '--name', 'x'], d);
  ok('vmmp_ca', ['sign', 'cacert.pem', 'db', 'root.key', 'x.req'], d);
  assert.match(openssl(['verify', '-CAfile', 'cacert.pem', 'x.pem'], d), /x.pem: OK/);
  assert.match(openssl(['x509', '-in', 'x.pem', '-noout', '-text'], d), /sha256WithRSAEncryption/);
});

test('a request made by openssl with the albatross extension is signed as a leaf; without it as a server', () => {
  const ext = Buffer.from(encodeCertExtension({ kind: 'console', value: { kind: 'subscribe', value: { kind: 'count', value: 20 } } })).toString('hex').toUpperCase();
  openssl(['req', '-new', '-newkey', 'ed25519', '-nodes', '-keyout', 'ossl.key', '-subj', '/CN=ossl', '-addext', `1.3.6.1.4.1.49836.42=DER:${ext}`, '-out', 'ossl.req']);
  ok('vmmp_ca', ['sign', 'cacert.pem', 'db', 'ca.key', 'ossl.req']);
  const [c] = certsIn('ossl.pem');
  assert.deepEqual(extensionCommand(c.extensions), { kind: 'console', value: { kind: 'subscribe', value: { kind: 'count', value: 20 } } });
  assert.match(openssl(['x509', '-in', 'ossl.pem', '-noout', '-text']), /TLS Web Client Authentication/);
  openssl(['req', '-new', '-newkey', 'ed25519', '-nodes', '-keyout', 'host.key', '-subj', '/CN=host', '-out', 'host.req']);
  ok('vmmp_ca', ['sign', 'cacert.pem', 'db', 'ca.key', 'host.req']);
  assert.match(openssl(['x509', '-in', 'host.pem', '-noout', '-text']), /TLS Web Server Authentication/);
});

test('revoke: the CRL lists the serial and openssl refuses the certificate with it', () => {
  const out = ok('vmmp_ca', ['revoke', 'cacert.pem', 'db', 'ca.key', 'user.pem']);
  const serial = /revoked serial ([0-9a-f]+)/.exec(out)![1];
  const text = openssl(['crl', '-in', 'ca.crl', '-noout', '-text']);
  assert.match(text, new RegExp(`Serial Number: 0*${serial.toUpperCase()}`));
  const v = spawnSync('openssl', ['verify', '-crl_check', '-CRLfile', 'ca.crl', '-CAfile', 'cacert.pem', 'user.pem'], { cwd: dir, encoding: 'utf8' });
  assert.notEqual(v.status, 0);
  assert.match(v.stdout + v.stderr, /certificate revoked/);
  ok('vmmp_ca', ['revoke', 'cacert.pem', 'db', 'ca.key', 'host.pem']);
  const two = openssl(['crl', '-in', 'ca.crl', '-noout', '-text']);
  assert.equal(two.match(/Serial Number:/g)?.length, 2, 'both revocations are in the fresh CRL');
});

test('revoke decides "issued by" as openssl verify does: issuer names compared as RFC 5280 (string types may differ), then the signature', () => {
  const d = mkdtempSync(join(dir, 'issued-'));
  ok('vmmp_ca', ['generate', 'ca', 'db'], d);
  // our CA's subject CN is a PrintableString; a twin CA certificate with the same key and the
  // CN as UTF8String (openssl's utf8only mask, as upstream's OCaml x509 writes it) issues hello.pem
  writeFileSync(join(d, 'utf8.cnf'), '[req]\ndistinguished_name=dn\nstring_mask=utf8only\nprompt=no\n[dn]\nCN=ca\n');
  openssl(['req', '-new', '-x509', '-key', 'ca.key', '-config', 'utf8.cnf', '-days', '2', '-out', 'twin.pem', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=keyCertSign,cRLSign'], d);
  assert.match(openssl(['asn1parse', '-in', 'cacert.pem'], d), /PRINTABLESTRING +:ca/);
  openssl(['req', '-new', '-newkey', 'ed25519', '-nodes', '-keyout', 'hello.key', '-subj', '/CN=hello', '-out', 'hello.req'], d);
  openssl(['x509', '-req', '-in', 'hello.req', '-CA', 'twin.pem', '-CAkey', 'ca.key', '-days', '1', '-out', 'hello.pem'], d);
  assert.match(openssl(['asn1parse', '-in', 'hello.pem'], d), /UTF8STRING +:ca/, 'the issuer is encoded as UTF8String');
  assert.match(openssl(['verify', '-CAfile', 'cacert.pem', 'hello.pem'], d), /hello.pem: OK/);
  assert.match(ok('vmmp_ca', ['revoke', 'cacert.pem', 'db', 'ca.key', 'hello.pem'], d), /revoked serial [0-9a-f]+ \(CN=hello\)/);
  // and one our own tool issued
  ok('vmmp_ca', ['revoke', 'cacert.pem', 'db', 'ca.key', 'server.pem'], d);
  // the same issuer name but another key: the signature decides
  openssl(['req', '-new', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', 'other.key', '-subj', '/CN=ca', '-days', '2', '-out', 'other.pem'], d);
  openssl(['x509', '-req', '-in', 'hello.req', '-CA', 'other.pem', '-CAkey', 'other.key', '-days', '1', '-out', 'forged.pem'], d);
  let r = run('vmmp_ca', ['revoke', 'cacert.pem', 'db', 'ca.key', 'forged.pem'], d);
  assert.equal(r.code, 123);
  assert.equal(r.stderr, "vmmp_ca: forged.pem was not issued by cacert.pem: its signature does not verify with the CA's public key (issuer CN=ca)\n");
  // another issuer name
  openssl(['req', '-new', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', 'acme.key', '-subj', '/CN=acme', '-days', '2', '-out', 'acme.pem'], d);
  r = run('vmmp_ca', ['revoke', 'cacert.pem', 'db', 'ca.key', 'acme.pem'], d);
  assert.equal(r.code, 123);
  assert.equal(r.stderr, "vmmp_ca: acme.pem was not issued by cacert.pem: its issuer name is not the CA's subject (issuer CN=acme, CA subject CN=ca)\n");
  assert.equal(readFileSync(join(d, 'db.revoked'), 'utf8').trim().split('\n').length, 2, 'only the two certificates of this CA were revoked');
});

test('bad input: one line on stderr, a non-zero exit, never a stack trace', () => {
  const cases: [string, string[], number, RegExp][] = [
    ['vmmp_ca', ['sign', 'nope.pem', 'db', 'ca.key', 'user.req'], 123, /^vmmp_ca: cannot read CA certificate nope.pem: no such file\n$/],
    ['vmmp_ca', ['sign', 'cacert.pem', 'db', 'user.key', 'user.req'], 123, /^vmmp_ca: user.key is not the key of cacert.pem/],
    ['vmmp_ca', ['sign', 'cacert.pem', 'db', 'ca.key', 'db'], 123, /^vmmp_ca: db: no CERTIFICATE REQUEST found\n$/],
    ['vmmp_ca', ['sign', 'cacert.pem', 'db', 'db', 'user.req'], 123, /^vmmp_ca: db: not a PEM private key/],
    ['vmmp_ca', ['sign', 'cacert.pem'], 124, /^vmmp_ca: sign takes CACERT DB CAKEY CSR/],
    ['vmmp_ca', ['revoke', 'user.pem', 'db', 'user.key', 'server.pem'], 123, /was not issued by user.pem/],
    ['vmmp_request', ['create', 'x', 'missing.hvt'], 123, /^vmmp_request: cannot read image missing.hvt: no such file\n$/],
    ['vmmp_request', ['create', 'x', 'db'], 123, /^vmmp_request: db: /],
    ['vmmp_request', ['destroy', 'a:b'], 123, /non-empty path/],
    ['vmmp_request', ['policy'], 123, /invalid path/],
    ['vmmp_request', ['destroy', 'x', '--key-type', 'dsa'], 124, /unknown key type "dsa"/],
    ['vmmp_request', ['inspect-dump'], 124, /inspect-dump cannot be requested/],
    ['vmmp_request', ['destory', 'x'], 124, /^vmmp_request: unknown subcommand "destory" \(did you mean destroy\?\)/],
  ];
  for (const [bin, args, code, re] of cases) {
    const r = run(bin, args);
    assert.equal(r.code, code, `${bin} ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /    at /);
  }
});
