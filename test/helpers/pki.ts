/**
 * Test PKI: a root CA, intermediate CAs that delegate policies, leaves that carry
 * commands, a server certificate, and CRLs, built in-process with @peculiar/x509 and
 * ECDSA P-256 keys (fast to generate). Shapes follow CERTS.md §7.2 unless a test asks
 * for a broken one.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { type Command, encodeCertExtension, ALBATROSS_OID } from '../../src/core/wire/wire.js';
import type { Policy } from '../../src/core/wire/common.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export interface Identity {
  cert: x509.X509Certificate;
  der: Uint8Array;
  pem: string;
  keys: CryptoKeyPair;
  keyPem: string;
  serial: string;
}

export interface IssueOptions {
  /** Subject CN; null = no CN at all (the subject is then `O=albatross-test`). */
  cn?: string | null;
  /** CA certificate (delegation) or leaf. */
  ca?: boolean;
  /** Leave out BasicConstraints entirely (an "intermediate" that is not a CA). */
  noBasicConstraints?: boolean;
  /** The Albatross extension's command. */
  command?: Command;
  /** Raw extnValue for the Albatross extension (overrides `command`). */
  extValue?: Uint8Array;
  notBefore?: Date;
  notAfter?: Date;
  /** `server` gives the server extension set (serverAuth). */
  server?: boolean;
  serial?: string;
  /** Further extensions, appended as given (duplicates, unknown critical ones...). */
  extraExtensions?: x509.Extension[];
}

let serialCounter = 0x1000;
const nextSerial = (): string => (serialCounter++).toString(16).padStart(6, '0');

async function keyPem(keys: CryptoKeyPair): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

const genKeys = async (): Promise<CryptoKeyPair> =>
  (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;

async function identity(cert: x509.X509Certificate, keys: CryptoKeyPair): Promise<Identity> {
  return { cert, der: new Uint8Array(cert.rawData), pem: cert.toString('pem') + '\n', keys, keyPem: await keyPem(keys), serial: cert.serialNumber };
}

const day = 86_400_000;

export async function makeRoot(cn = 'albatross test root', opts: { notBefore?: Date; notAfter?: Date } = {}): Promise<Identity> {
  const keys = await genKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${cn}`,
    notBefore: opts.notBefore ?? new Date(Date.now() - day),
    notAfter: opts.notAfter ?? new Date(Date.now() + 365 * day),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return identity(cert, keys);
}

export async function issue(issuer: Identity, opts: IssueOptions = {}): Promise<Identity> {
  const keys = await genKeys();
  const exts: x509.Extension[] = [];
  if (opts.server) {
    exts.push(new x509.BasicConstraintsExtension(false, undefined, true));
    exts.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true));
    exts.push(new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], true));
  } else if (opts.ca) {
    if (!opts.noBasicConstraints) exts.push(new x509.BasicConstraintsExtension(true, undefined, true));
    exts.push(new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation, true));
  } else {
    exts.push(new x509.BasicConstraintsExtension(false, undefined, true));
    exts.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true));
    exts.push(new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], true));
  }
  exts.push(await x509.SubjectKeyIdentifierExtension.create(keys.publicKey));
  exts.push(await x509.AuthorityKeyIdentifierExtension.create(issuer.cert));
  const ext = opts.extValue ?? (opts.command ? encodeCertExtension(opts.command) : undefined);
  if (ext !== undefined) exts.push(new x509.Extension(ALBATROSS_OID, false, ext));
  exts.push(...(opts.extraExtensions ?? []));
  const subject = opts.cn === null ? 'O=albatross-test' : `CN=${opts.cn ?? 'test'}`;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: opts.serial ?? nextSerial(),
    subject: opts.cn !== undefined && opts.cn !== null ? [{ CN: [opts.cn] }] : subject,
    issuer: issuer.cert.subject,
    notBefore: opts.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: opts.notAfter ?? new Date(Date.now() + day),
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: ALG,
    extensions: exts,
  });
  return identity(cert, keys);
}

/** A CRL issued by `issuer` revoking the given serial numbers (hex). */
export async function makeCrl(issuer: Identity, revoked: string[], o: { nextUpdate?: Date } = {}): Promise<string> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: issuer.cert.subject,
    thisUpdate: new Date(Date.now() - 2 * day),
    nextUpdate: o.nextUpdate ?? new Date(Date.now() + day),
    signingAlgorithm: ALG,
    signingKey: issuer.keys.privateKey,
    entries: revoked.map((serialNumber) => ({ serialNumber, revocationDate: new Date(Date.now() - 30_000) })),
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(issuer.cert)],
  });
  return crl.toString('pem') + '\n';
}

/** PEM of a chain, leaf first. */
export const chainPem = (...ids: Identity[]): string => ids.map((i) => i.pem).join('');

// ------------------------------------------------------------------ commands

export const policy = (p: Partial<Policy> = {}): Policy => ({
  cpuids: p.cpuids ?? [0],
  unikernels: p.unikernels ?? 2n,
  memory: p.memory ?? 512,
  ...(p.block !== undefined ? { block: p.block } : {}),
  bridges: p.bridges ?? [],
});

export const cmd = {
  info: (): Command => ({ kind: 'unikernel', value: { kind: 'info', value: null } }),
  policyAdd: (p: Policy): Command => ({ kind: 'policy', value: { kind: 'add', value: p } }),
  policyInfo: (): Command => ({ kind: 'policy', value: { kind: 'info', value: null } }),
  policyRemove: (): Command => ({ kind: 'policy', value: { kind: 'remove', value: null } }),
  consoleSubscribe: (count = 20): Command => ({ kind: 'console', value: { kind: 'subscribe', value: { kind: 'count', value: count } } }),
  consoleAdd: (): Command => ({ kind: 'console', value: { kind: 'add', value: 5n } }),
  statsAdd: (): Command => ({ kind: 'stats', value: { kind: 'add', value: { vmmdev: '', pid: 1, network: [] } } }),
  statsSubscribe: (): Command => ({ kind: 'stats', value: { kind: 'subscribe', value: null } }),
  blockInfo: (): Command => ({ kind: 'block', value: { kind: 'info', value: null } }),
  blockAdd: (mb: number): Command => ({ kind: 'block', value: { kind: 'add', value: mb } }),
  blockDump: (level = 0): Command => ({ kind: 'block', value: { kind: 'dump', value: level } }),
  blockSet: (compressed = false): Command => ({ kind: 'block', value: { kind: 'set', value: compressed } }),
  destroy: (): Command => ({ kind: 'unikernel', value: { kind: 'destroy', value: null } }),
};

// ------------------------------------------------------------------ files

export interface PkiFiles {
  dir: string;
  root: Identity;
  server: Identity;
  ca: string;
  cert: string;
  key: string;
}

/** A root CA and a server certificate written to a fresh temp dir (cacert.pem, server.pem, server.key). */
export async function serverPki(dir = mkdtempSync(join(tmpdir(), 'albatross-pki-'))): Promise<PkiFiles> {
  const root = await makeRoot();
  const server = await issue(root, { cn: 'server', server: true });
  const ca = join(dir, 'cacert.pem');
  const cert = join(dir, 'server.pem');
  const key = join(dir, 'server.key');
  writeFileSync(ca, root.pem);
  writeFileSync(cert, server.pem);
  writeFileSync(key, server.keyPem, { mode: 0o600 });
  return { dir, root, server, ca, cert, key };
}

/** Writes a client's chain (leaf first) and key; returns the two paths. */
export function writeClient(dir: string, label: string, chain: Identity[]): { cert: string; key: string } {
  const cert = join(dir, `${label}.pem`);
  const key = join(dir, `${label}.key`);
  writeFileSync(cert, chainPem(...chain));
  writeFileSync(key, chain[0].keyPem, { mode: 0o600 });
  return { cert, key };
}
