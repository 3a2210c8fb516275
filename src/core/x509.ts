/**
 * The few facts the TLS handler needs from a certificate, read with a DER walk over
 * der.ts's checked tree (OpenSSL has already verified the chain; neither
 * @peculiar/x509 nor asn1js is on the handler's start-up path): subject and issuer
 * common names, the extensions, the validity and whether it is a CA. Also reads a
 * PKCS#10 request's subject and requested extensions.
 */
import { type DerNode, parseDer as parseDerTree } from './der.js';
import { type Result, ok, err } from './result.js';
import { bytesToText } from './asn.js';

export const OID_CN = '2.5.4.3';
export const OID_BASIC_CONSTRAINTS = '2.5.29.19';
export const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/**
 * The extensions OpenSSL 3 processes when they are marked critical (X509_supported_extension
 * in crypto/x509/v3_purp.c); a critical extension outside this set fails verification with
 * X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION.
 */
export const OPENSSL_CRITICAL_EXTENSIONS: ReadonlySet<string> = new Set([
  '2.16.840.1.113730.1.1', // Netscape certificate type
  '2.5.29.15', // keyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.19', // basicConstraints
  '2.5.29.32', // certificatePolicies
  '2.5.29.31', // cRLDistributionPoints
  '2.5.29.37', // extKeyUsage
  '1.3.6.1.5.5.7.1.7', // IP address blocks (RFC 3779)
  '1.3.6.1.5.5.7.1.8', // AS identifiers (RFC 3779)
  '1.3.6.1.5.5.7.48.1.5', // OCSP no check
  '2.5.29.36', // policyConstraints
  '1.3.6.1.5.5.7.1.14', // proxyCertInfo
  '2.5.29.30', // nameConstraints
  '2.5.29.33', // policyMappings
  '2.5.29.54', // inhibitAnyPolicy
]);

export interface Extension {
  oid: string;
  critical: boolean;
  value: Uint8Array;
}

export interface CertFacts {
  /** Subject common name; undefined when the subject has none. */
  subjectCN?: string;
  issuerCN?: string;
  /** DER of subject and issuer Name, to relate certificates. */
  subject: Uint8Array;
  issuer: Uint8Array;
  extensions: Extension[];
  isCA: boolean;
  notBefore?: number;
  notAfter?: number;
}

type N = DerNode;

class X509Error extends Error {}
const bad = (msg: string): never => {
  throw new X509Error(msg);
};

const kids = (n: N | undefined, what: string): N[] => {
  if (n === undefined || !n.constructed) return bad(`${what}: expected a constructed value`);
  return n.children;
};
const isUniversal = (n: N | undefined, tag: number): boolean => n !== undefined && n.cls === 0 && n.tag === tag;
const isContext = (n: N | undefined, tag: number): boolean => n !== undefined && n.cls === 2 && n.tag === tag;
const content = (n: N): Uint8Array => n.bytes.subarray(n.contentStart, n.end);
const whole = (n: N): Uint8Array => n.bytes.subarray(n.start, n.end);

/** The dotted form of an OBJECT IDENTIFIER (X.690 8.19), refusing non-minimal arcs. */
function oidOf(n: N | undefined, what: string): string {
  if (!isUniversal(n, 6)) return bad(`${what}: expected an OBJECT IDENTIFIER`);
  const c = content(n as N);
  if (c.length === 0) return bad(`${what}: empty OBJECT IDENTIFIER`);
  const arcs: number[] = [];
  let v = 0;
  let fresh = true;
  for (let i = 0; i < c.length; i++) {
    if (fresh && c[i] === 0x80) return bad(`${what}: non-minimal OBJECT IDENTIFIER arc`);
    fresh = false;
    v = v * 128 + (c[i] & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) return bad(`${what}: OBJECT IDENTIFIER arc too large`);
    if ((c[i] & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(v < 40 ? 0 : v < 80 ? 1 : 2, v < 80 ? v % 40 : v - 80);
      else arcs.push(v);
      v = 0;
      fresh = true;
    }
  }
  if (!fresh) return bad(`${what}: truncated OBJECT IDENTIFIER`);
  return arcs.join('.');
}

function parseDer(der: Uint8Array, what: string): N {
  const r = parseDerTree(der, { maxDepth: 32, maxElements: 100_000, maxBytes: 1 << 24 });
  if (!r.ok) return bad(`${what}: ${r.error}`);
  return r.value;
}

/** The common name of an X.501 Name (the first CN attribute), if any. */
function commonName(nameNode: N): string | undefined {
  for (const rdn of kids(nameNode, 'Name')) {
    for (const atv of kids(rdn, 'RelativeDistinguishedName')) {
      const [t, v] = kids(atv, 'AttributeTypeAndValue');
      if (oidOf(t, 'attribute type') === OID_CN) {
        if (v === undefined || v.constructed) return bad('common name: expected a string');
        return bytesToText(content(v));
      }
    }
  }
  return undefined;
}

function parseExtensions(seqNode: N): Extension[] {
  return kids(seqNode, 'Extensions').map((e) => {
    const parts = kids(e, 'Extension');
    const oid = oidOf(parts[0], 'extension id');
    let i = 1;
    let critical = false;
    if (isUniversal(parts[i], 1)) {
      critical = content(parts[i])[0] !== 0;
      i++;
    }
    if (!isUniversal(parts[i], 4)) return bad(`extension ${oid}: expected an OCTET STRING value`);
    return { oid, critical, value: content(parts[i]).slice() };
  });
}

/**
 * UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSS[.f]Z) in
 * ms since the epoch, as RFC 5280 4.1.2.5 writes them; undefined for any other form.
 */
function parseTime(n: N | undefined): number | undefined {
  if (n === undefined) return undefined;
  const utc = isUniversal(n, 23);
  if (!utc && !isUniversal(n, 24)) return undefined;
  const s = String.fromCharCode(...content(n));
  const m = (utc ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3})\d*)?Z$/).exec(s);
  if (m === null) return undefined;
  let year = Number(m[1]);
  if (utc) year += year < 50 ? 2000 : 1900;
  const [mon, day, h, min, sec] = [m[2], m[3], m[4], m[5], m[6]].map(Number);
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || h > 23 || min > 59 || sec > 59) return undefined;
  const d = new Date(0);
  d.setUTCFullYear(year, mon - 1, day); // not Date.UTC: it reads years 0-99 as 1900-1999
  d.setUTCHours(h, min, sec, m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0')));
  return d.getUTCDate() === day ? d.getTime() : undefined; // 31 April is refused, not rolled over
}

function basicConstraintsCA(exts: Extension[]): boolean {
  const bc = exts.find((e) => e.oid === OID_BASIC_CONSTRAINTS);
  if (bc === undefined) return false;
  const n = parseDer(bc.value, 'basicConstraints');
  const first = kids(n, 'BasicConstraints')[0];
  return isUniversal(first, 1) && content(first)[0] !== 0;
}

/** Reads the facts of one DER certificate. */
export function certFacts(der: Uint8Array): Result<CertFacts> {
  try {
    const cert = parseDer(der, 'certificate');
    const tbs = kids(kids(cert, 'Certificate')[0], 'TBSCertificate');
    let i = 0;
    if (isContext(tbs[0], 0)) i++; // version
    i++; // serialNumber
    i++; // signature algorithm
    const issuer = tbs[i++];
    const validity = kids(tbs[i++], 'Validity');
    const subject = tbs[i++];
    i++; // subjectPublicKeyInfo
    if (issuer === undefined || subject === undefined) return err('certificate: truncated TBSCertificate');
    let extensions: Extension[] = [];
    for (; i < tbs.length; i++) {
      if (isContext(tbs[i], 3)) extensions = parseExtensions(kids(tbs[i], 'extensions')[0]);
    }
    return ok({
      subjectCN: commonName(subject),
      issuerCN: commonName(issuer),
      subject: whole(subject),
      issuer: whole(issuer),
      extensions,
      isCA: basicConstraintsCA(extensions),
      notBefore: parseTime(validity[0]),
      notAfter: parseTime(validity[1]),
    });
  } catch (e) {
    if (e instanceof X509Error) return err(e.message);
    return err(`certificate: ${(e as Error).message}`);
  }
}

export interface CsrFacts {
  subjectCN?: string;
  extensions: Extension[];
}

/** Reads the subject common name and requested extensions of a DER PKCS#10 request. */
export function csrFacts(der: Uint8Array): Result<CsrFacts> {
  try {
    const req = parseDer(der, 'certificate request');
    const info = kids(kids(req, 'CertificationRequest')[0], 'CertificationRequestInfo');
    const subject = info[1];
    if (subject === undefined) return err('certificate request: truncated');
    let extensions: Extension[] = [];
    const attrs = info[3];
    if (isContext(attrs, 0)) {
      for (const a of kids(attrs, 'attributes')) {
        const [t, values] = kids(a, 'Attribute');
        if (oidOf(t, 'attribute type') === OID_EXTENSION_REQUEST) {
          const first = kids(values, 'attribute values')[0];
          if (first !== undefined) extensions = parseExtensions(first);
        }
      }
    }
    return ok({ subjectCN: commonName(subject), extensions });
  } catch (e) {
    if (e instanceof X509Error) return err(e.message);
    return err(`certificate request: ${(e as Error).message}`);
  }
}

/** Splits PEM text into its blocks: label and DER bytes. */
export function pemBlocks(text: string): { label: string; der: Uint8Array }[] {
  const out: { label: string; der: Uint8Array }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out.push({ label: m[1], der: new Uint8Array(Buffer.from(m[2].replace(/\s+/g, ''), 'base64')) });
  }
  return out;
}

/**
 * pemBlocks, refusing a block whose body is not valid base64 (pemBlocks, like node's
 * Buffer, skips stray characters and would hand on other bytes than the file holds).
 */
export function pemBlocksStrict(text: string): Result<{ label: string; der: Uint8Array }[]> {
  const out: { label: string; der: Uint8Array }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const body = m[2].replace(/\s+/g, '');
    const der = Buffer.from(body, 'base64');
    // valid base64 is what encoding its bytes gives back (a regular expression over the
    // body costs a handler's start-up milliseconds)
    if (body === '' || der.toString('base64') !== body) return err(`invalid base64 in PEM block ${out.length + 1} (${m[1]})`);
    out.push({ label: m[1], der: new Uint8Array(der) });
  }
  return ok(out);
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/** What the endpoint checks of a CRL (CERTS.md §4.2, `--crl-mode present`). */
export interface CrlFacts {
  /** DER of the issuer Name, compared with the issuing certificate's subject. */
  issuer: Uint8Array;
  /** The signed part and its signature, verified with the issuer's key. */
  tbs: Uint8Array;
  signatureOid: string;
  signature: Uint8Array;
  /** Serial numbers of the revoked certificates. */
  revoked: Set<bigint>;
  nextUpdate?: number;
}

const serialOf = (n: N): bigint => {
  const c = content(n);
  let v = 0n;
  for (const b of c) v = (v << 8n) | BigInt(b);
  // a negative serial (not allowed by RFC 5280) stays apart from every positive one
  return c.length > 0 && (c[0] & 0x80) !== 0 ? v - (1n << BigInt(c.length * 8)) : v;
};

/** Reads a DER CertificateList (RFC 5280 §5.1). */
export function crlFacts(der: Uint8Array): Result<CrlFacts> {
  try {
    const top = kids(parseDer(der, 'CRL'), 'CertificateList');
    const tbsNode = top[0];
    const tbs = kids(tbsNode, 'TBSCertList');
    const sig = top[2];
    if (sig === undefined || !isUniversal(sig, 3)) return err('CRL: no signature');
    let i = 0;
    if (isUniversal(tbs[0], 2)) i++; // version
    i++; // signature algorithm
    const issuer = tbs[i++];
    i++; // thisUpdate
    if (issuer === undefined) return err('CRL: truncated TBSCertList');
    let nextUpdate: number | undefined;
    if (tbs[i] !== undefined && (isUniversal(tbs[i], 23) || isUniversal(tbs[i], 24))) nextUpdate = parseTime(tbs[i++]);
    const revoked = new Set<bigint>();
    if (tbs[i] !== undefined && isUniversal(tbs[i], 16)) {
      for (const entry of kids(tbs[i], 'revokedCertificates')) revoked.add(serialOf(kids(entry, 'revoked certificate')[0]));
    }
    return ok({
      issuer: whole(issuer), tbs: whole(tbsNode), signatureOid: oidOf(kids(top[1], 'signatureAlgorithm')[0], 'signatureAlgorithm'),
      signature: content(sig).subarray(1), revoked, ...(nextUpdate !== undefined ? { nextUpdate } : {}),
    });
  } catch (e) {
    if (e instanceof X509Error) return err(e.message);
    return err(`CRL: ${(e as Error).message}`);
  }
}
