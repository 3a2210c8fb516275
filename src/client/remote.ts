/**
 * The remote side of the clients (CERTS.md §4.3, §7.6, §7.7): checks of the client's own
 * chain and key, the TLS 1.3 connection to the endpoint with the server verified against
 * --server-ca (no host name check, as upstream), TLS errors mapped to upstream's exit codes.
 * Only node:crypto/tls and our core: vmmc_remote does not load the certificate builder.
 */
import * as crypto from 'node:crypto';
import * as tls from 'node:tls';
import { FramedConn } from '../transport/conn.js';
import { type Result, ok, err } from '../core/result.js';
import { CODE } from './session.js';

export const DEFAULT_PORT = 1025;

/** Exit code and one-line reason of a failed connection. */
export interface RemoteError {
  code: number;
  message: string;
}

/** `host[:port]`, `[v6]:port`, or a bare IPv6 address. */
export function parseDestination(s: string): Result<{ host: string; port: number }> {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracket) return ok({ host: bracket[1], port: bracket[2] ? Number(bracket[2]) : DEFAULT_PORT });
  const parts = s.split(':');
  // more than one colon: a bare IPv6 address
  if (parts.length > 2) return ok({ host: s, port: DEFAULT_PORT });
  if (s === '' || parts[0] === '') return err('empty host');
  if (parts.length === 2) {
    if (!/^\d+$/.test(parts[1]) || Number(parts[1]) < 1 || Number(parts[1]) > 65535) return err(`failed to parse port ${JSON.stringify(parts[1])}`);
    return ok({ host: parts[0], port: Number(parts[1]) });
  }
  return ok({ host: s, port: DEFAULT_PORT });
}

const EXPECTED_SERVER_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO|ISSUER|SIGNATURE|HOSTNAME|ERR_TLS_CERT/;

/** Upstream's classification: our certificate refused by the server -> 119; server not trusted -> 120. */
export function classifyTlsError(e: NodeJS.ErrnoException & { reason?: string }, where: string): RemoteError {
  const msg = e.message ?? String(e);
  if (/alert/i.test(msg) || (e.code ?? '').startsWith('ERR_SSL_TLSV1') || (e.code ?? '').startsWith('ERR_SSL_SSLV3_ALERT')) {
    return { code: 119, message: `the server refused our certificate (${opensslReason(msg)})` };
  }
  if (EXPECTED_SERVER_ERRORS.test(e.code ?? '')) {
    return { code: 120, message: `the certificate of ${where} is not trusted by --server-ca: ${e.code}: ${oneLine(msg)}` };
  }
  switch (e.code) {
    case 'ECONNREFUSED':
      return { code: CODE.connect, message: `connection refused at ${where}` };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { code: CODE.connect, message: `cannot resolve ${where}` };
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { code: CODE.connect, message: `cannot connect to ${where}: ${e.code}` };
    default:
      return { code: CODE.communication, message: `TLS failure with ${where}: ${oneLine(msg)}` };
  }
}

const fingerprint = (c: crypto.X509Certificate): string => c.fingerprint256;

/**
 * Validates our own chain (leaf first) against the server CA, as the endpoint will
 * (upstream exits 116 otherwise): each certificate signed by the next, the last one by
 * (or being) the CA, all within their validity, every issuer a CA.
 */
export function validateOwnChain(chainPem: string[], caPem: string, now = new Date()): Result<void> {
  let chain: crypto.X509Certificate[];
  let ca: crypto.X509Certificate;
  try {
    chain = chainPem.map((p) => new crypto.X509Certificate(p));
    ca = new crypto.X509Certificate(caPem);
  } catch (e) {
    return err(`cannot parse a certificate: ${(e as Error).message}`);
  }
  const valid = (c: crypto.X509Certificate): boolean => new Date(c.validFrom) <= now && now <= new Date(c.validTo);
  for (let i = 0; i < chain.length; i++) {
    const c = chain[i];
    if (fingerprint(c) === fingerprint(ca)) return ok(undefined);
    if (!valid(c)) return err(`certificate ${c.subject.replace(/\n/g, ', ')} is not valid now (${c.validFrom} .. ${c.validTo})`);
    const issuer = i + 1 < chain.length && c.checkIssued(chain[i + 1]) ? chain[i + 1] : c.checkIssued(ca) ? ca : undefined;
    if (issuer === undefined) return err(`no issuer of ${c.subject.replace(/\n/g, ', ')} in the chain or --server-ca`);
    if (!issuer.ca) return err(`issuer ${issuer.subject.replace(/\n/g, ', ')} is not a CA`);
    if (!c.verify(issuer.publicKey)) return err(`bad signature on ${c.subject.replace(/\n/g, ', ')}`);
    if (issuer === ca) return valid(ca) ? ok(undefined) : err('the --server-ca certificate is not valid now');
  }
  return err('the chain does not lead to --server-ca');
}

/** Does the private key (PEM) belong to the certificate (PEM)? An error says which of the two is unusable. */
export function keyMatches(certPem: string, keyPem: string): Result<boolean, { which: 'certificate' | 'key'; message: string }> {
  let pub: Buffer;
  try {
    pub = new crypto.X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  } catch (e) {
    return err({ which: 'certificate', message: oneLine((e as Error).message) });
  }
  try {
    const mine = crypto.createPublicKey(crypto.createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
    return ok(Buffer.from(pub).equals(Buffer.from(mine)));
  } catch (e) {
    return err({ which: 'key', message: oneLine((e as Error).message) });
  }
}

/** An error text on one line (OpenSSL's messages end in a newline). */
const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' ').trim();

/**
 * The reason of an OpenSSL error message without its code and source location:
 * `...:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure:../ssl/rec_layer_s3.c:1601:SSL alert number 40`
 * becomes `sslv3 alert handshake failure: SSL alert number 40`.
 */
const opensslReason = (msg: string): string => oneLine(msg).replace(/^.*routines:[^:]*:/, '').replace(/:[^:\s]*\.c:\d+:/, ': ');

/** Connects with TLS 1.3, presenting `chainPem` (leaf first) and `keyPem`; the server must chain to `caPem`. */
export function connectTls(
  host: string, port: number, chainPem: string[], keyPem: string, caPem: string, timeoutMs = 30_000,
): Promise<Result<FramedConn, RemoteError>> {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: Result<FramedConn, RemoteError>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const s = tls.connect({
      host, port, cert: chainPem.join(''), key: keyPem, ca: caPem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3',
      rejectUnauthorized: true, checkServerIdentity: () => undefined, servername: /^[0-9.:]+$/.test(host) ? undefined : host,
    });
    const timer = setTimeout(() => {
      s.destroy();
      done(err({ code: CODE.connect, message: `cannot connect to ${where}: no TLS handshake within ${timeoutMs / 1000} s` }));
    }, timeoutMs);
    s.once('error', (e) => done(err(classifyTlsError(e, where))));
    s.once('secureConnect', () => {
      const conn = new FramedConn(s);
      done(ok(conn));
    });
  });
}

/** Read errors of a TLS connection that mean the server refused our certificate (exit 119). */
export function classifyReadError(error: string): { code: number; message: string } | undefined {
  if (/alert/i.test(error)) return { code: 119, message: `the server refused our certificate (${opensslReason(error)})` };
  return undefined;
}
