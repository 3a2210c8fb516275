/**
 * The few facts the TLS handler needs from a certificate, read with a DER walk over
 * asn1js (OpenSSL has already verified the chain; @peculiar/x509 is kept off the
 * handler's start-up path): subject and issuer common names, the extensions, and
 * whether it is a CA. Also reads a PKCS#10 request's subject and requested extensions.
 */
import * as asn1js from 'asn1js';
import { checkDer } from './der.js';
import { type Result, ok, err } from './result.js';
import { bytesToText } from './asn.js';

export const OID_CN = '2.5.4.3';
export const OID_BASIC_CONSTRAINTS = '2.5.29.19';
export const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

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

type N = asn1js.AsnType;

class X509Error extends Error {}
const bad = (msg: string): never => {
  throw new X509Error(msg);
};

const kids = (n: N | undefined, what: string): N[] => {
  if (n === undefined || !n.idBlock.isConstructed) return bad(`${what}: expected a constructed value`);
  return (n.valueBlock as unknown as { value: N[] }).value;
};
const isUniversal = (n: N | undefined, tag: number): boolean =>
  n !== undefined && n.idBlock.tagClass === 1 && n.idBlock.tagNumber === tag;
const isContext = (n: N | undefined, tag: number): boolean =>
  n !== undefined && n.idBlock.tagClass === 3 && n.idBlock.tagNumber === tag;
const content = (n: N): Uint8Array => n.valueBeforeDecodeView.subarray(n.idBlock.blockLength + n.lenBlock.blockLength);
const whole = (n: N): Uint8Array => n.valueBeforeDecodeView;
function oidOf(n: N | undefined, what: string): string {
  if (!isUniversal(n, 6)) return bad(`${what}: expected an OBJECT IDENTIFIER`);
  return (n as asn1js.ObjectIdentifier).valueBlock.toString();
}

function parseDer(der: Uint8Array, what: string): N {
  const c = checkDer(der, { maxDepth: 32, maxElements: 100_000, maxBytes: 1 << 24 });
  if (!c.ok) return bad(`${what}: ${c.error}`);
  const r = asn1js.fromBER(der, { parseEmbedded: false, copyInput: false });
  if (r.offset !== der.length || r.result.error) return bad(`${what}: malformed DER`);
  return r.result as N;
}

/** The common name of an X.501 Name (the first CN attribute), if any. */
function commonName(nameNode: N): string | undefined {
  for (const rdn of kids(nameNode, 'Name')) {
    for (const atv of kids(rdn, 'RelativeDistinguishedName')) {
      const [t, v] = kids(atv, 'AttributeTypeAndValue');
      if (oidOf(t, 'attribute type') === OID_CN) {
        if (v === undefined || v.idBlock.isConstructed) return bad('common name: expected a string');
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

function parseTime(n: N | undefined): number | undefined {
  if (n === undefined) return undefined;
  if (isUniversal(n, 23)) return (n as asn1js.UTCTime).toDate().getTime();
  if (isUniversal(n, 24)) return (n as asn1js.GeneralizedTime).toDate().getTime();
  return undefined;
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

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}
