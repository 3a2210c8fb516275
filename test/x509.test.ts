import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as asn1js from 'asn1js';
import fc from 'fast-check';
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

// A certificate-shaped DER value built with asn1js (the oracle), with a chosen extension
// OID and validity; certFacts does not check signatures, so none is made.
function fakeCert(extOid: string | asn1js.BaseBlock, notBefore: asn1js.BaseBlock, notAfter: asn1js.BaseBlock, cn: string): Uint8Array {
  const name = new asn1js.Sequence({ value: [new asn1js.Set({ value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: '2.5.4.3' }), new asn1js.Utf8String({ value: cn })] })] })] });
  const alg = new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: '1.3.101.112' })] });
  const tbs = new asn1js.Sequence({
    value: [
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Integer({ value: 2 })] }),
      new asn1js.Integer({ value: 1 }),
      alg,
      name,
      new asn1js.Sequence({ value: [notBefore, notAfter] }),
      name,
      new asn1js.Sequence({ value: [alg, new asn1js.BitString({ valueHex: new Uint8Array(32).buffer })] }),
      new asn1js.Constructed({
        idBlock: { tagClass: 3, tagNumber: 3 },
        value: [new asn1js.Sequence({ value: [new asn1js.Sequence({ value: [typeof extOid === 'string' ? new asn1js.ObjectIdentifier({ value: extOid }) : extOid, new asn1js.OctetString({ valueHex: new Uint8Array([5, 0]).buffer })] })] })],
      }),
    ],
  });
  const cert = new asn1js.Sequence({ value: [tbs, alg, new asn1js.BitString({ valueHex: new Uint8Array(64).buffer })] });
  return new Uint8Array(cert.toBER());
}

const arbOid = fc
  .tuple(fc.integer({ min: 0, max: 2 }), fc.array(fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 2 ** 40 })), { minLength: 1, maxLength: 8 }))
  .chain(([first, rest]) => fc.integer({ min: 0, max: first < 2 ? 39 : 10_000 }).map((second) => [first, second, ...rest.slice(1)].join('.')));

test('certFacts decodes extension OIDs, names and both time forms that asn1js encodes', () => {
  fc.assert(
    fc.property(
      arbOid,
      fc.date({ min: new Date('1950-01-01T00:00:00Z'), max: new Date('2049-12-31T23:59:59Z'), noInvalidDate: true }),
      fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }),
      fc.string({ minLength: 1, maxLength: 20 }),
      (oid, utc, gen, cn) => {
        const [uMs, gMs] = [utc, gen].map((d) => Math.floor(d.getTime() / 1000) * 1000);
        const u = new asn1js.UTCTime({ valueDate: new Date(uMs) });
        const g = new asn1js.GeneralizedTime({ valueDate: new Date(gMs) });
        const der = fakeCert(oid, u, g, cn);
        const r = certFacts(der);
        assert.ok(r.ok, r.ok ? '' : r.error);
        assert.equal(r.value.extensions[0].oid, oid);
        assert.equal(r.value.subjectCN, cn);
        // the dates themselves, not asn1js's toDate(), which reads years 0-99 as 1900-1999
        assert.equal(r.value.notBefore, uMs);
        assert.equal(r.value.notAfter, gMs);
      },
    ),
    { numRuns: 300 },
  );
});

test('certFacts refuses a non-minimal or truncated OID and leaves impossible dates undefined', () => {
  const epoch = (): [asn1js.UTCTime, asn1js.GeneralizedTime] => [new asn1js.UTCTime({ valueDate: new Date(0) }), new asn1js.GeneralizedTime({ valueDate: new Date(0) })];
  const rawOid = (hex: string): asn1js.Primitive => new asn1js.Primitive({ idBlock: { tagClass: 1, tagNumber: 6 }, valueHex: new Uint8Array(Buffer.from(hex, 'hex')).buffer });
  assert.equal((certFacts(fakeCert(rawOid('2a03'), ...epoch(), 'x')) as { value: { extensions: { oid: string }[] } }).value.extensions[0].oid, '1.2.3');
  const nonMinimal = certFacts(fakeCert(rawOid('2a8003'), ...epoch(), 'x'));
  assert.equal(nonMinimal.ok, false);
  assert.match(nonMinimal.ok ? '' : nonMinimal.error, /non-minimal OBJECT IDENTIFIER/);
  const truncated = certFacts(fakeCert(rawOid('2a83'), ...epoch(), 'x'));
  assert.equal(truncated.ok, false);
  assert.match(truncated.ok ? '' : truncated.error, /truncated OBJECT IDENTIFIER/);
  const empty = certFacts(fakeCert(rawOid(''), ...epoch(), 'x'));
  assert.equal(empty.ok, false);
  // 31 April 2020 is not a date; month 13 neither
  for (const bad of ['20200431000000Z', '20201301000000Z', '2020010100000Z']) {
    const r = certFacts(fakeCert('1.2.3', epoch()[0], new asn1js.Primitive({ idBlock: { tagClass: 1, tagNumber: 24 }, valueHex: new Uint8Array(Buffer.from(bad, 'latin1')).buffer }), 'x'));
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.equal(r.value.notAfter, undefined, bad);
  }
});
