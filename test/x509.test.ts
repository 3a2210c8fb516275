import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certFacts, csrFacts, pemBlocks, toPem } from '../src/core/x509.js';

// The leaf extension value of WIRE.md example 8: console subscribe, count 20.
const EXT = '300c020105a007a205a103020114';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

test('certFacts reads the CN, CA flag, validity and the albatross extension of an openssl certificate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'x509-'));
  openssl(['req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '2',
    '-subj', '/CN=Hello.World', '-addext', `1.3.6.1.4.1.49836.42=DER:${EXT}`, '-addext', 'basicConstraints=critical,CA:TRUE'], dir);
  const [block] = pemBlocks(readFileSync(join(dir, 'c.pem'), 'utf8'));
  assert.equal(block.label, 'CERTIFICATE');
  const r = certFacts(block.der);
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.equal(r.value.subjectCN, 'Hello.World');
  assert.equal(r.value.issuerCN, 'Hello.World');
  assert.equal(r.value.isCA, true);
  const ext = r.value.extensions.find((e) => e.oid === '1.3.6.1.4.1.49836.42');
  assert.ok(ext);
  assert.equal(ext.critical, false);
  assert.equal(Buffer.from(ext.value).toString('hex'), EXT);
  assert.ok(r.value.notBefore !== undefined && r.value.notAfter !== undefined);
  assert.ok(Math.abs(r.value.notAfter - r.value.notBefore - 2 * 86400_000) < 1000);
  // PEM round trip
  assert.deepEqual(pemBlocks(toPem('CERTIFICATE', block.der))[0].der, block.der);
});

test('csrFacts reads the requested albatross extension of an openssl request; no CN is undefined', () => {
  const dir = mkdtempSync(join(tmpdir(), 'x509-'));
  openssl(['req', '-new', '-newkey', 'ed25519', '-nodes', '-keyout', 'k.pem', '-out', 'r.pem',
    '-subj', '/O=example', '-addext', `1.3.6.1.4.1.49836.42=DER:${EXT}`], dir);
  const [block] = pemBlocks(readFileSync(join(dir, 'r.pem'), 'utf8'));
  const r = csrFacts(block.der);
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.equal(r.value.subjectCN, undefined);
  assert.equal(Buffer.from(r.value.extensions[0].value).toString('hex'), EXT);
});

test('malformed certificates give an error value, never a throw', () => {
  for (const hex of ['', '30', '3000', '300130', '3003020101', '30800000', '3006300402020000']) {
    const r = certFacts(new Uint8Array(Buffer.from(hex, 'hex')));
    assert.equal(r.ok, false, hex);
    assert.equal(csrFacts(new Uint8Array(Buffer.from(hex, 'hex'))).ok, false, hex);
  }
});
