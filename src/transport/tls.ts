/**
 * TLS set-up of the endpoint (CERTS.md §4): TLS 1.3 only, a client certificate is
 * mandatory and must chain to the one configured CA; OpenSSL verifies the chain
 * (signatures, validity, CA basic constraints, key usage) and, with `--crl`, revocation.
 *
 * The server is created with `rejectUnauthorized: false` on purpose: node would otherwise
 * destroy a refused connection silently, and the operator must see *why* (expired,
 * unknown CA, revoked...). `clientChain` therefore refuses every connection that OpenSSL
 * did not authorize before anything else looks at it.
 *
 * Only node:tls/crypto/fs and our core are imported here (start-up cost under inetd).
 */
import * as tls from 'node:tls';
import { X509Certificate, createPrivateKey, verify as cryptoVerify } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Result, ok, err } from '../core/result.js';
import { type CrlFacts, certFacts, crlFacts, pemBlocks, pemBlocksStrict, toPem } from '../core/x509.js';
import { limits } from '../core/limits.js';
import { unhandledCriticalExtension } from '../core/certs.js';

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
  /** A CRL file (PEM, one or more CRLs) or a directory of such files. */
  crl?: string;
  /**
   * `present` (the default): the CRLs there are applies, each to the certificates its
   * issuer signed, and a CA without a CRL is no reason to refuse (checkRevocation, after
   * the handshake). `strict`: OpenSSL checks every certificate of the chain and refuses
   * one whose issuer has no current CRL (`UNABLE_TO_GET_CRL`, `CRL_HAS_EXPIRED`).
   */
  crlMode?: CrlMode;
}

export type CrlMode = 'strict' | 'present';
export const CRL_MODES: readonly CrlMode[] = ['present', 'strict'];

export interface TlsConfig {
  options: tls.TlsOptions;
  /** DER of the trust anchor. */
  caDer: Uint8Array;
  /** Number of CRLs loaded. */
  crls: number;
  /** With `--crl-mode present`: the CRLs (PEM) clientChain checks itself; OpenSSL gets none. */
  crlPresent?: string[];
  /** `CERT / KEY` as given, for messages about them. */
  identity: string;
  /** The files it was read from, for messages about them. */
  files: TlsFiles;
}

/** An error text on one line (OpenSSL's messages may end in or hold newlines). */
export const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' ').trim();

const sayEmpty = (text: string): string => (text.trim() === '' ? ' (the file is empty)' : '');

function readText(path: string, what: string): Result<string> {
  try {
    return ok(readFileSync(path, 'utf8'));
  } catch (e) {
    return err(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Every CRL (PEM `X509 CRL` blocks) in a file or in the regular files of a directory. */
export function loadCrls(path: string): Result<string[]> {
  let files: string[];
  try {
    files = statSync(path).isDirectory() ? readdirSync(path).sort().map((f) => join(path, f)).filter((f) => statSync(f).isFile()) : [path];
  } catch (e) {
    return err(`cannot read CRL ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const out: string[] = [];
  for (const f of files) {
    const t = readText(f, 'CRL');
    if (!t.ok) return t;
    for (const b of pemBlocks(t.value)) if (b.label === 'X509 CRL' || b.label === 'CRL') out.push(toPem('X509 CRL', b.der));
  }
  if (out.length === 0) return err(`no CRL (PEM "X509 CRL") found in ${path}`);
  return ok(out);
}

/** Reads CA, certificate, key (and CRLs) and builds the server options (see serverOf). */
export function loadTlsConfig(files: TlsFiles, handshakeTimeoutMs: number = limits.handshakeTimeoutMs): Result<TlsConfig> {
  // each file is checked here, naming it: OpenSSL skips what it cannot read in a CA file,
  // and node leaves out an empty certificate or key, so the server would start and refuse
  // every client later
  const ca = readText(files.ca, 'CA certificate');
  if (!ca.ok) return ca;
  const caAll = pemBlocksStrict(ca.value);
  if (!caAll.ok) return err(`CA certificate ${files.ca}: ${caAll.error}`);
  const caBlocks = caAll.value.filter((b) => b.label === 'CERTIFICATE');
  if (caBlocks.length !== 1) return err(`expect single ca as cacert (${files.ca} holds ${caBlocks.length} certificates${sayEmpty(ca.value)})`);
  const caFacts = certFacts(caBlocks[0].der);
  if (!caFacts.ok) return err(`CA certificate ${files.ca}: not a certificate: ${caFacts.error}`);
  const cert = readText(files.cert, 'certificate');
  if (!cert.ok) return cert;
  const certBlocks = pemBlocksStrict(cert.value);
  if (!certBlocks.ok) return err(`certificate ${files.cert}: ${certBlocks.error}`);
  if (!certBlocks.value.some((b) => b.label === 'CERTIFICATE')) return err(`certificate ${files.cert}: no PEM certificate${sayEmpty(cert.value)}`);
  const key = readText(files.key, 'private key');
  if (!key.ok) return key;
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.value)) return err(`private key ${files.key}: no PEM private key${sayEmpty(key.value)}`);
  let crl: string[] = [];
  if (files.crl !== undefined) {
    const c = loadCrls(files.crl);
    if (!c.ok) return c;
    crl = c.value;
  }
  const options: tls.TlsOptions = {
    ca: [toPem('CERTIFICATE', caBlocks[0].der)],
    cert: cert.value,
    key: key.value,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    requestCert: true,
    rejectUnauthorized: false,
    handshakeTimeout: handshakeTimeoutMs,
    // strict: node turns on X509_V_FLAG_CRL_CHECK | CRL_CHECK_ALL with the first CRL
    ...(crl.length > 0 && files.crlMode === 'strict' ? { crl } : {}),
  };
  // not checked here by making a context: the server makes the one it uses (serverOf),
  // and making two costs each inetd connection a few ms
  const crlPresent = crl.length > 0 && files.crlMode !== 'strict' ? { crlPresent: crl } : {};
  return ok({ options, caDer: caBlocks[0].der, crls: crl.length, ...crlPresent, identity: `${files.cert} / ${files.key}`, files });
}

/** Which file OpenSSL could not use: parsed one by one, only once making the context failed. */
function unusableFile(cfg: TlsConfig, e: Error): string {
  const { cert, key } = cfg.options;
  try {
    new X509Certificate(String(cert));
  } catch (c) {
    return `certificate ${cfg.files.cert}: ${oneLine((c as Error).message)}`;
  }
  try {
    createPrivateKey(String(key));
  } catch (k) {
    return `private key ${cfg.files.key}: ${oneLine((k as Error).message)}`;
  }
  return `cannot use ${cfg.identity}: ${oneLine(e.message)}`;
}

/** A TLS server with the configuration's context; an unusable certificate or key is an error value. */
export function serverOf(cfg: TlsConfig, extra: tls.TlsOptions = {}): Result<tls.Server> {
  try {
    return ok(tls.createServer({ ...cfg.options, ...extra }));
  } catch (e) {
    return err(unusableFile(cfg, e as Error));
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;

/** The trust anchor as an X509Certificate, parsed once per process (it is the same for every connection). */
const anchors = new WeakMap<Uint8Array, X509Certificate>();
const anchorOf = (caDer: Uint8Array): X509Certificate => {
  let a = anchors.get(caDer);
  if (a === undefined) {
    a = new X509Certificate(caDer);
    anchors.set(caDer, a);
  }
  return a;
};

/**
 * The client's certificates as it sent them (leaf first, at most maxChainLength + 2), and
 * the chain node's getPeerCertificate(true) reports, built the same way without its cost:
 * from the leaf, each next certificate is the first remaining sent one that
 * X509_check_issued names as the issuer (checkIssued), and the trust anchor ends the
 * chain when it issued the last one. The objects come from OpenSSL's own copies
 * (getPeerX509Certificate, read once: node takes the list apart as it reads it), so no
 * certificate is parsed again.
 */
function peerCertificates(socket: tls.TLSSocket, anchor: X509Certificate): { sent: X509Certificate[]; chain: X509Certificate[] } {
  const sent: X509Certificate[] = [];
  for (let c = socket.getPeerX509Certificate(); c !== undefined && sent.length <= limits.maxChainLength + 2; c = c.issuerCertificate) sent.push(c);
  if (sent.length === 0) return { sent, chain: [] };
  const chain = [sent[0]];
  const rest = sent.slice(1);
  for (;;) {
    const last = chain[chain.length - 1];
    const i = rest.findIndex((r) => last.checkIssued(r));
    if (i >= 0) {
      chain.push(rest.splice(i, 1)[0]);
      continue;
    }
    if (!last.checkIssued(last) && last.checkIssued(anchor)) chain.push(anchor);
    return { sent, chain };
  }
}

/**
 * The client's verified chain, leaf first, without the trust anchor. Refuses a
 * connection OpenSSL did not authorize (with OpenSSL's reason), and re-checks that each
 * certificate of the chain node reports is signed by the next one and the last one by
 * the CA: node assembles that chain by names, and the policies we install must come
 * from certificates whose signatures were checked.
 */
export function clientChain(socket: tls.TLSSocket, caDer: Uint8Array, crlPresent?: string[]): Result<Uint8Array[]> {
  let anchor: X509Certificate;
  let peer: { sent: X509Certificate[]; chain: X509Certificate[] };
  try {
    anchor = anchorOf(caDer);
    peer = peerCertificates(socket, anchor);
  } catch (e) {
    return err(`client certificate refused: ${(e as Error).message}`);
  }
  const ders: Uint8Array[] = peer.chain.map((c) => new Uint8Array(c.raw.buffer, c.raw.byteOffset, c.raw.byteLength));
  if (!socket.authorized) {
    const why = socket.authorizationError === undefined ? 'not authorized' : String(socket.authorizationError);
    // node has no name for X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION: say which one it was
    if (why === 'UNSPECIFIED' || why === 'UNHANDLED_CRITICAL_EXTENSION') {
      const crit = unhandledCriticalExtension(ders);
      if (crit !== undefined) return err(`client certificate refused: ${crit}`);
    }
    return err(`client certificate refused: ${why}`);
  }
  if (ders.length === 0) return err('client certificate refused: no certificate');
  // node ends the chain with the trust anchor whether or not the client sent it; the
  // path counted (CERTS.md §3) includes the root only when the client sent it
  if (sameBytes(ders[ders.length - 1], caDer)) ders.pop();
  if (ders.length === 0) return err('client certificate refused: the client presented the CA certificate itself');
  if (ders.length + (peer.sent.some((c) => sameBytes(c.raw, caDer)) ? 1 : 0) >= limits.maxChainLength) return err('certificate chain too long');
  try {
    const certs = peer.chain.slice(0, ders.length);
    for (let i = 0; i < certs.length; i++) {
      const parent = i + 1 < certs.length ? certs[i + 1] : anchor;
      if (!certs[i].checkIssued(parent) || !certs[i].verify(parent.publicKey)) {
        return err(`client certificate refused: certificate ${i} of the chain is not signed by its issuer`);
      }
    }
    if (crlPresent !== undefined) {
      const r = checkRevocation(certs, anchor, crlPresent);
      if (!r.ok) return r;
    }
  } catch (e) {
    return err(`client certificate refused: ${(e as Error).message}`);
  }
  return ok(ders);
}

/** The CRLs of `--crl-mode present`, read once per process on first use (not at start-up). */
let parsedCrls: { pem: string[]; crls: CrlFacts[] } | undefined;

function crlsOf(pem: string[]): CrlFacts[] {
  if (parsedCrls?.pem !== pem) {
    const crls: CrlFacts[] = [];
    for (const p of pem) {
      for (const b of pemBlocks(p)) {
        const f = crlFacts(b.der);
        if (f.ok) crls.push(f.value);
      }
    }
    parsedCrls = { pem, crls };
  }
  return parsedCrls.crls;
}

/** node:crypto's digest for a signature algorithm of ours or upstream's tools; null for Ed25519. */
const DIGEST_OF_SIGNATURE: Record<string, string | null> = {
  '1.3.101.112': null, // Ed25519
  '1.2.840.10045.4.3.2': 'sha256', '1.2.840.10045.4.3.3': 'sha384', '1.2.840.10045.4.3.4': 'sha512', // ECDSA
  '1.2.840.113549.1.1.11': 'sha256', '1.2.840.113549.1.1.12': 'sha384', '1.2.840.113549.1.1.13': 'sha512', // RSA PKCS#1 v1.5
};

function signedBy(crl: CrlFacts, issuer: X509Certificate): boolean {
  const digest = DIGEST_OF_SIGNATURE[crl.signatureOid];
  if (digest === undefined) return false;
  try {
    return cryptoVerify(digest, crl.tbs, issuer.publicKey, crl.signature);
  } catch {
    return false;
  }
}

/**
 * `--crl-mode present` (CERTS.md §4.2): each certificate of the chain (leaf first, the
 * anchor last) is looked up in every CRL its issuer signed: the root's CRL covers the
 * intermediates it issued, an intermediate's CRL its own subtree. An issuer without a CRL
 * is not a reason to refuse, and a CRL past its nextUpdate still counts: a revocation
 * does not expire.
 */
export function checkRevocation(certs: X509Certificate[], anchor: X509Certificate, pem: string[]): Result<void> {
  const crls = crlsOf(pem);
  for (let i = 0; i < certs.length; i++) {
    const issuer = i + 1 < certs.length ? certs[i + 1] : anchor;
    const facts = certFacts(new Uint8Array(certs[i].raw));
    if (!facts.ok) return err(`client certificate refused: ${facts.error}`);
    const serial = BigInt(`0x${certs[i].serialNumber}`);
    for (const crl of crls) {
      if (!crl.revoked.has(serial) || !sameBytes(crl.issuer, facts.value.issuer) || !signedBy(crl, issuer)) continue;
      const cn = (f: string): string => /^CN=(.*)$/m.exec(f)?.[1] ?? f.replace(/\n/g, ', ');
      return err(`client certificate refused: CERT_REVOKED (certificate ${i}, CN ${JSON.stringify(cn(certs[i].subject))}, is in the CRL of CN ${JSON.stringify(cn(issuer.subject))})`);
    }
  }
  return ok(undefined);
}
