/**
 * Certificates and requests of the provisioning tools (CERTS.md §7): the Albatross
 * extension, the leaf / CA / server extension sets, key identifiers, serial numbers,
 * requests, signing a request with a CA, self-signed roots, one-shot leaves and CRLs.
 */
import 'reflect-metadata';
import * as crypto from 'node:crypto';
import * as asn1js from 'asn1js';
import * as x509 from '@peculiar/x509';
import { type Result, ok, err } from '../core/result.js';
import { ALBATROSS_OID } from '../core/wire/wire.js';
import { type LeafCommand, decodeLeafExtension, describeLeafCommand, encodeLeafExtension } from '../core/wire/leaf.js';
import type { Policy, UnikernelConfig } from '../core/wire/common.js';
import { checkUsable, cpuidSet, cpuidsNotIn, formatList, isSubPolicy, stringSet, stringsNotIn } from '../core/policy.js';
import { type CryptoKey, type KeyPair, spkiOf } from './keys.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Validity starts this much before now, so that peers need not have perfectly synchronised clocks. */
export const BACKDATE_MS = 10_000;
/** Lifetime of the throw-away leaf of a one-shot command. */
export const ONE_SHOT_SECONDS = 300;

// ------------------------------------------------------------------ extensions

export const albatrossExtension = (cmd: LeafCommand): x509.Extension =>
  new x509.Extension(ALBATROSS_OID, false, encodeLeafExtension(cmd));

export type ExtensionSet = 'leaf' | 'ca' | 'server';

function extensionSet(set: ExtensionSet): x509.Extension[] {
  const F = x509.KeyUsageFlags;
  switch (set) {
    case 'leaf':
      return [
        new x509.KeyUsagesExtension(F.digitalSignature | F.keyEncipherment, true),
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], true),
      ];
    case 'ca':
      return [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(F.keyCertSign | F.cRLSign | F.digitalSignature | F.nonRepudiation, true),
      ];
    case 'server':
      return [
        new x509.KeyUsagesExtension(F.digitalSignature | F.keyEncipherment, true),
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], true),
      ];
    default: {
      const never: never = set;
      return never;
    }
  }
}

/** SHA-1 over the subjectPublicKey octets of a DER SubjectPublicKeyInfo (RFC 5280 method 1), hex. */
export function keyIdentifier(spki: Uint8Array): string {
  const parsed = asn1js.fromBER(spki);
  const seq = parsed.result as asn1js.Sequence;
  const bits = seq.valueBlock.value[1] as asn1js.BitString;
  const octets = new Uint8Array(bits.valueBlock.valueHexView);
  return crypto.createHash('sha1').update(octets).digest('hex');
}

function keyIdExtensions(subjectSpki: Uint8Array, issuerSpki: Uint8Array): x509.Extension[] {
  return [
    new x509.SubjectKeyIdentifierExtension(keyIdentifier(subjectSpki)),
    new x509.AuthorityKeyIdentifierExtension(keyIdentifier(issuerSpki)),
  ];
}

/**
 * 10 random octets as a positive INTEGER (CERTS.md §7.2): `00` in front when the first
 * octet has its high bit set, `7F` in front when a leading `00` would be redundant.
 */
export function serialOf(random: Uint8Array): string {
  let b = Array.from(random);
  if (b[0] >= 0x80) b = [0, ...b];
  else if (b[0] === 0 && b.length > 1 && b[1] <= 0x7f) b = [0x7f, ...b];
  return Buffer.from(b).toString('hex');
}
export const randomSerial = (): string => serialOf(crypto.randomBytes(10));

/** The serial as upstream's DB prints it: lowercase hex of the INTEGER value. */
export function serialHex(cert: x509.X509Certificate): string {
  const v = BigInt(`0x${cert.serialNumber || '0'}`);
  return v.toString(16);
}

const cnName = (cn: string): x509.JsonName => [{ '2.5.4.3': [cn] }];

// ------------------------------------------------------------------ reading

export function commonName(n: x509.Name): string | undefined {
  const v = n.getField('CN');
  return v.length > 0 ? v[0] : undefined;
}

/** The command in a certificate's or request's Albatross extension (undefined: none). */
export function commandOfExtensions(exts: readonly x509.Extension[]): Result<LeafCommand | undefined> {
  const e = exts.find((x) => x.type === ALBATROSS_OID);
  if (e === undefined) return ok(undefined);
  const d = decodeLeafExtension(new Uint8Array(e.value));
  return d.ok ? ok(d.value.command) : err(`albatross extension: ${d.error}`);
}

/** The policy a CA certificate delegates (`policy add`), if any. */
export function policyOfCert(cert: x509.X509Certificate): Result<Policy | undefined> {
  const c = commandOfExtensions(cert.extensions);
  if (!c.ok) return err("couldn't parse albatross extension in cert");
  const cmd = c.value;
  return ok(cmd !== undefined && cmd.kind === 'policy' && cmd.value.kind === 'add' ? cmd.value.value : undefined);
}

/** Does a unikernel configuration fit a policy (CPU ids, memory, bridges)? */
export function configFitsPolicy(p: Policy, c: UnikernelConfig): Result<void> {
  const extra = cpuidsNotIn(c.cpuids, p.cpuids);
  if (extra.length > 0) return err(`CPUids ${formatList(cpuidSet(extra))} are not allowed by policy`);
  if (c.memory > p.memory) return err(`maximum allowed memory (${p.memory}) would be exceeded (requesting ${c.memory})`);
  const bridges = c.bridges.map((b) => b.bridge ?? b.netif);
  const bad = stringsNotIn(bridges, p.bridges);
  if (bad.length > 0) return err(`bridges ${formatList(stringSet(bad))} not allowed by policy`);
  return ok(undefined);
}

/** A command checked against the policy of the CA that will sign it; the extension set it gets. */
export function checkAgainstCa(cmd: LeafCommand, caPolicy: Policy | undefined): Result<{ set: ExtensionSet; days: number }> {
  if (cmd.kind === 'policy' && cmd.value.kind === 'add') {
    const p = cmd.value.value;
    const u = checkUsable(p);
    if (!u.ok) return u;
    if (caPolicy !== undefined) {
      const s = isSubPolicy(p, caPolicy);
      if (!s.ok) return s;
    }
    return ok({ set: 'ca', days: 365 });
  }
  if (cmd.kind === 'unikernel' && (cmd.value.kind === 'create' || cmd.value.kind === 'force_create') && caPolicy !== undefined) {
    const f = configFitsPolicy(caPolicy, cmd.value.value);
    if (!f.ok) return f;
  }
  return ok({ set: 'leaf', days: 1 });
}

// ------------------------------------------------------------------ building

export async function makeCsr(cn: string, kp: KeyPair, cmd?: LeafCommand): Promise<x509.Pkcs10CertificateRequest> {
  return x509.Pkcs10CertificateRequestGenerator.create({
    name: cnName(cn),
    keys: kp.keys,
    signingAlgorithm: kp.signingAlgorithm,
    extensions: cmd === undefined ? [] : [albatrossExtension(cmd)],
  });
}

export interface IssueParams {
  subject: x509.Name | x509.JsonName;
  subjectKey: CryptoKey;
  issuer: x509.Name | x509.JsonName;
  signer: KeyPair;
  set: ExtensionSet;
  cmd?: LeafCommand;
  /** Add SubjectKeyIdentifier and AuthorityKeyIdentifier. */
  keyIds: boolean;
  validitySeconds: number;
  now?: Date;
}

export async function issue(p: IssueParams): Promise<x509.X509Certificate> {
  const now = (p.now ?? new Date()).getTime();
  const extensions = extensionSet(p.set);
  if (p.cmd !== undefined) extensions.push(albatrossExtension(p.cmd));
  if (p.keyIds) {
    const subjectSpki = new Uint8Array(await crypto.webcrypto.subtle.exportKey('spki', p.subjectKey));
    extensions.push(...keyIdExtensions(subjectSpki, await spkiOf(p.signer)));
  }
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: p.subject,
    issuer: p.issuer,
    notBefore: new Date(Math.floor((now - BACKDATE_MS) / 1000) * 1000),
    notAfter: new Date(Math.floor((now + p.validitySeconds * 1000) / 1000) * 1000),
    publicKey: p.subjectKey,
    signingKey: p.signer.keys.privateKey,
    signingAlgorithm: p.signer.signingAlgorithm,
    extensions,
  });
}

/** The self-signed root of `generate`: CA set, no key identifiers (CERTS.md §7.5). */
export function selfSignedCa(cn: string, kp: KeyPair, days: number): Promise<x509.X509Certificate> {
  return issue({
    subject: cnName(cn), subjectKey: kp.keys.publicKey, issuer: cnName(cn), signer: kp, set: 'ca', keyIds: false,
    validitySeconds: days * 86400,
  });
}

export interface Signed {
  cert: x509.X509Certificate;
  cn: string;
  /** What was signed, for the operator. */
  what: string;
}

/** Signs a request with a CA (CERTS.md §7.4). `days` overrides the default of the set. */
export async function signCsr(
  csr: x509.Pkcs10CertificateRequest, caCert: x509.X509Certificate, caKey: KeyPair, days?: number,
): Promise<Result<Signed>> {
  const cn = commonName(csr.subjectName);
  if (cn === undefined) return err("couldn't find name (no common name in CSR subject)");
  if (!(await csr.verify())) return err('the signature of the request does not verify');
  const caPolicy = policyOfCert(caCert);
  if (!caPolicy.ok) return caPolicy;
  const cmd = commandOfExtensions(csr.extensions);
  if (!cmd.ok) return cmd;
  let set: ExtensionSet = 'server';
  let defaultDays = 365;
  if (cmd.value !== undefined) {
    const c = checkAgainstCa(cmd.value, caPolicy.value);
    if (!c.ok) return c;
    set = c.value.set;
    defaultDays = c.value.days;
  }
  const subjectKey = (await csr.publicKey.export()) as unknown as CryptoKey;
  const cert = await issue({
    subject: csr.subjectName, subjectKey, issuer: caCert.subjectName, signer: caKey, set, cmd: cmd.value, keyIds: true,
    validitySeconds: (days ?? defaultDays) * 86400,
  });
  const what = cmd.value === undefined ? 'server certificate' : describeLeafCommand(cmd.value);
  return ok({ cert, cn, what });
}

/** Does the private key belong to the certificate? */
export async function keyMatchesCert(kp: KeyPair, cert: x509.X509Certificate): Promise<boolean> {
  const a = Buffer.from(await spkiOf(kp));
  const b = Buffer.from(cert.publicKey.rawData);
  return a.equals(b);
}

/**
 * Was `cert` issued by `ca`? Decided as OpenSSL decides it (`openssl verify`): X509_check_issued
 * (the issuer name equals the CA's subject by RFC 5280 comparison, so the DER may differ in
 * string type, e.g. PrintableString and UTF8String, in the case of ASCII letters and in
 * spaces; an authority key identifier must match the CA's; a key usage of the CA must allow
 * certificate signing), then the signature of `cert` verifies with the CA's public key.
 * The error says which of these failed.
 */
export function issuedBy(cert: x509.X509Certificate, ca: x509.X509Certificate): Result<void> {
  let c: crypto.X509Certificate;
  let a: crypto.X509Certificate;
  try {
    c = new crypto.X509Certificate(Buffer.from(cert.rawData));
    a = new crypto.X509Certificate(Buffer.from(ca.rawData));
  } catch (e) {
    return err(`cannot read the certificate: ${(e as Error).message}`);
  }
  if (!c.checkIssued(a)) {
    const names = `issuer ${cert.issuer}, CA subject ${ca.subject}`;
    return err(c.issuer !== a.subject
      ? `its issuer name is not the CA's subject (${names})`
      : `the names match (${names}) but the authority key identifier or the CA's key usage rule the CA out`);
  }
  let verified = false;
  try {
    verified = c.verify(a.publicKey);
  } catch {
    verified = false;
  }
  return verified ? ok(undefined) : err(`its signature does not verify with the CA's public key (issuer ${cert.issuer})`);
}

export const isSelfSigned = (c: x509.X509Certificate): boolean =>
  Buffer.from(c.subjectName.toArrayBuffer()).equals(Buffer.from(c.issuerName.toArrayBuffer()));

/** PEM of a CRL with the label OpenSSL expects. */
export const crlPem = (crl: x509.X509Crl): string => x509.PemConverter.encode(crl.rawData, 'X509 CRL');

/** A CRL by the CA listing `serials` (hex), valid for `days`. */
export function makeCrl(caCert: x509.X509Certificate, caKey: KeyPair, revoked: { serial: string; date: Date }[], days = 30): Promise<x509.X509Crl> {
  const now = Date.now();
  return x509.X509CrlGenerator.create({
    issuer: caCert.subjectName,
    thisUpdate: new Date(now - BACKDATE_MS),
    nextUpdate: new Date(now + days * DAY_MS),
    // a reason code keeps the entry's extensions non-empty (an empty SEQUENCE is invalid DER for them)
    entries: revoked.map((r) => ({ serialNumber: r.serial, revocationDate: r.date, reason: x509.X509CrlReason.privilegeWithdrawn })),
    signingKey: caKey.keys.privateKey,
    signingAlgorithm: caKey.signingAlgorithm,
    extensions: [new x509.AuthorityKeyIdentifierExtension(keyIdentifier(new Uint8Array(caCert.publicKey.rawData)))],
  });
}

// ------------------------------------------------------------------ PEM

export function parseCertificates(pem: string, what: string): Result<x509.X509Certificate[]> {
  try {
    const out = x509.PemConverter.decode(pem).map((d) => new x509.X509Certificate(d));
    return out.length === 0 ? err(`${what}: no certificate found`) : ok(out);
  } catch (e) {
    return err(`${what}: not a PEM certificate (${(e as Error).message})`);
  }
}

export function parseCsr(pem: string, what: string): Result<x509.Pkcs10CertificateRequest> {
  try {
    const blocks = x509.PemConverter.decodeWithHeaders(pem).filter((b) => /CERTIFICATE REQUEST/.test(b.type));
    if (blocks.length === 0) return err(`${what}: no CERTIFICATE REQUEST found`);
    return ok(new x509.Pkcs10CertificateRequest(blocks[0].rawData));
  } catch (e) {
    return err(`${what}: not a PEM certificate request (${(e as Error).message})`);
  }
}
