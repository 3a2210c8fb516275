/**
 * vmmp_ca: the certificate authority of the provisioning tools (CERTS.md §7.4, §7.5):
 * generate a root and a server certificate, sign requests, and revoke certificates
 * into a CRL that the TLS handler can load.
 */
import * as fs from 'node:fs';
import { type CliSpec, EXIT, UsageError, die, parseCli, runMain } from './common.js';
import { type KeyPair, parseKeyType, loadPrivateKey } from '../provision/keys.js';
import {
  commonName, crlPem, isSelfSigned, issue, issuedBy, makeCrl, parseCertificates, parseCsr, selfSignedCa, serialHex, signCsr,
} from '../provision/certs.js';
import { appendLine, loadOrCreateKey, readText, writeDurable } from '../provision/files.js';
import type { Result } from '../core/result.js';
import type * as x509 from '@peculiar/x509';

const BINARY = 'vmmp_ca';

const spec: CliSpec = {
  binary: BINARY,
  synopsis: [
    `${BINARY} generate NAME DB [--days 3650] [--server NAME] [--server-days 365] [--key-type TYPE]`,
    `${BINARY} sign CACERT DB CAKEY CSR [--days N]`,
    `${BINARY} revoke CACERT DB CAKEY CERT [--crl-days 30]`,
  ],
  description: [
    'generate: NAME.key (created if missing) and a self-signed CA certificate cacert.pem with',
    'CN=NAME; then SERVER.key and SERVER.pem, a server certificate signed by it (recorded in DB).',
    '',
    'sign: signs a request: with a "policy add" command an intermediate CA (365 days; the policy',
    'must be usable and within the policy of CACERT), with another command a client',
    'certificate (1 day; a create must fit the policy of CACERT), without albatross',
    'extension a server certificate (365 days). Appends "<serial hex> <CN>" to DB and',
    'writes <CN>.pem, followed by CACERT when CACERT is not self-signed.',
    '',
    'revoke: adds the serial of CERT to DB.revoked and writes <CA CN>.crl, a PEM CRL signed by',
    'the CA with every serial revoked so far (for vmmd_tls --crl).',
    '',
    'Files are written in the current directory.',
  ].join('\n'),
  options: [
    { name: 'days', type: 'number', arg: 'N', help: 'validity in days (generate: 3650; sign: 365 for CAs and servers, 1 for commands).' },
    { name: 'server', type: 'string', arg: 'NAME', default: 'server', help: 'generate: CN and file name of the server certificate.' },
    { name: 'server-days', type: 'number', arg: 'N', default: 365, help: 'generate: validity of the server certificate in days.' },
    { name: 'key-type', type: 'string', choices: ['ed25519', 'rsa2048', 'rsa4096', 'p256', 'p384', 'p521'], arg: 'TYPE', default: 'ed25519', help: 'generate: type of new keys: ed25519, rsa2048, rsa4096, p256, p384, p521.' },
    { name: 'crl-days', type: 'number', arg: 'N', default: 30, help: 'revoke: days until the CRL must be renewed (nextUpdate).' },
  ],
  examples: [
    `${BINARY} generate ca db`,
    `${BINARY} sign cacert.pem db ca.key user.req`,
    `${BINARY} sign user.pem db user.key hello.req`,
    `${BINARY} revoke cacert.pem db ca.key user.pem`,
  ],
  more: 'EXIT STATUS\n  0 on success; 123 on an error (one line on standard error says why);\n  124 on a command line error; 125 on an internal error.\n',
  subcommands: {
    generate: { args: ['NAME', 'DB'], help: 'a root CA (NAME.key, cacert.pem) and a server certificate', options: ['days', 'server', 'server-days', 'key-type'], examples: ['generate ca db'] },
    sign: { args: ['CACERT', 'DB', 'CAKEY', 'CSR'], help: 'sign a request of vmmp_request', options: ['days'], examples: ['sign cacert.pem db ca.key user.req'] },
    revoke: { args: ['CACERT', 'DB', 'CAKEY', 'CERT'], help: 'revoke a certificate and write the CRL', options: ['crl-days'], examples: ['revoke cacert.pem db ca.key user.pem'] },
  },
};

const fail = (msg: string): never => die(BINARY, EXIT.other, msg);
const need = <T>(r: Result<T>): T => (r.ok ? r.value : fail(r.error));

function positive(o: Record<string, unknown>, k: string): number | undefined {
  const v = o[k] as number | undefined;
  if (v !== undefined && v <= 0) throw new UsageError(`--${k} must be positive`);
  return v;
}

async function loadKey(file: string): Promise<KeyPair> {
  return need(await loadPrivateKey(need(readText(file, 'key')), file));
}

function loadCa(file: string): { cert: x509.X509Certificate; chain: x509.X509Certificate[] } {
  const certs = need(parseCertificates(need(readText(file, 'CA certificate')), file));
  return { cert: certs[0], chain: certs };
}

async function checkCaKey(ca: x509.X509Certificate, key: KeyPair, keyFile: string, caFile: string): Promise<void> {
  const { keyMatchesCert } = await import('../provision/certs.js');
  if (!(await keyMatchesCert(key, ca))) fail(`${keyFile} is not the key of ${caFile} (public key of certificate doesn't match private key)`);
}

async function generate(name: string, db: string, o: Record<string, unknown>): Promise<void> {
  const kt = parseKeyType(String(o['key-type']));
  if (!kt.ok) throw new UsageError(kt.error);
  const days = positive(o, 'days') ?? 3650;
  const sdays = positive(o, 'server-days') ?? 365;
  const server = String(o.server);
  const caKey = need(await loadOrCreateKey(`${name}.key`, kt.value)).key;
  const ca = await selfSignedCa(name, caKey, days);
  need(writeDurable('cacert.pem', ca.toString('pem') + '\n'));
  const sKey = need(await loadOrCreateKey(`${server}.key`, kt.value)).key;
  const cert = await issue({
    subject: [{ '2.5.4.3': [server] }], subjectKey: sKey.keys.publicKey, issuer: ca.subjectName, signer: caKey, set: 'server',
    keyIds: true, validitySeconds: sdays * 86400,
  });
  need(appendLine(db, `${serialHex(cert)} ${server}`));
  need(writeDurable(`${server}.pem`, cert.toString('pem') + '\n'));
  process.stdout.write(`wrote ${name}.key, cacert.pem (CA ${name}, ${days} days), ${server}.key, ${server}.pem (server, ${sdays} days)\n`);
}

async function sign(caFile: string, db: string, keyFile: string, csrFile: string, o: Record<string, unknown>): Promise<void> {
  const ca = loadCa(caFile);
  const key = await loadKey(keyFile);
  await checkCaKey(ca.cert, key, keyFile, caFile);
  const csr = need(parseCsr(need(readText(csrFile, 'request')), csrFile));
  const signed = await signCsr(csr, ca.cert, key, positive(o, 'days'));
  if (!signed.ok) return fail(`error while signing: ${signed.error}`);
  const { cert, cn, what } = signed.value;
  if (cn === '' || cn.includes('/')) fail(`error while signing: ${JSON.stringify(cn)} cannot name the certificate file`);
  need(appendLine(db, `${serialHex(cert)} ${cn}`));
  const chain = isSelfSigned(ca.cert) ? [cert] : [cert, ca.cert];
  // the CN "." (the CA's own path: status, log) would make a hidden "..pem": named after the request instead
  const file = cn === '.' ? csrFile.replace(/^.*\//, '').replace(/\.req$/, '') : cn;
  need(writeDurable(`${file}.pem`, chain.map((c) => c.toString('pem')).join('\n') + '\n'));
  process.stdout.write(`signed ${what} for CN=${cn}, serial ${serialHex(cert)}, until ${cert.notAfter.toISOString()}: wrote ${file}.pem\n`);
}

/** The revocation list beside DB: one line `<serial hex> <ISO time>` per revoked certificate. */
function readRevoked(file: string): { serial: string; date: Date }[] {
  if (!fs.existsSync(file)) return [];
  const out: { serial: string; date: Date }[] = [];
  const lines = need(readText(file, 'revocation list')).split('\n');
  lines.forEach((l, i) => {
    if (l.trim() === '') return;
    const [serial, when] = l.trim().split(/\s+/);
    const date = new Date(when ?? '');
    if (!/^[0-9a-f]+$/.test(serial ?? '') || Number.isNaN(date.getTime())) fail(`${file} line ${i + 1}: expected "<serial hex> <time>"`);
    out.push({ serial, date });
  });
  return out;
}

async function revoke(caFile: string, db: string, keyFile: string, certFile: string, o: Record<string, unknown>): Promise<void> {
  const ca = loadCa(caFile);
  const key = await loadKey(keyFile);
  await checkCaKey(ca.cert, key, keyFile, caFile);
  const target = need(parseCertificates(need(readText(certFile, 'certificate')), certFile))[0];
  const by = issuedBy(target, ca.cert);
  if (!by.ok) fail(`${certFile} was not issued by ${caFile}: ${by.error}`);
  const listFile = `${db}.revoked`;
  const revoked = readRevoked(listFile);
  const serial = serialHex(target);
  if (!revoked.some((r) => r.serial === serial)) {
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    need(appendLine(listFile, `${serial} ${now.toISOString()}`));
    revoked.push({ serial, date: now });
  }
  const crl = await makeCrl(ca.cert, key, revoked.map((r) => ({ serial: r.serial.length % 2 ? `0${r.serial}` : r.serial, date: r.date })), positive(o, 'crl-days') ?? 30);
  const caCn = commonName(ca.cert.subjectName) ?? 'ca';
  need(writeDurable(`${caCn}.crl`, crlPem(crl) + '\n'));
  process.stdout.write(`revoked serial ${serial} (CN=${commonName(target.subjectName) ?? ''}); wrote ${caCn}.crl with ${revoked.length} revoked certificate(s)\n`);
}

async function main(): Promise<number> {
  const o = parseCli(spec);
  const [sub, ...args] = o._;
  const arity = (n: number, names: string): void => {
    if (args.length !== n) throw new UsageError(`${sub} takes ${names}`);
  };
  switch (sub) {
    case 'generate':
      arity(2, 'NAME DB');
      await generate(args[0], args[1], o);
      break;
    case 'sign':
      arity(4, 'CACERT DB CAKEY CSR');
      await sign(args[0], args[1], args[2], args[3], o);
      break;
    case 'revoke':
      arity(4, 'CACERT DB CAKEY CERT');
      await revoke(args[0], args[1], args[2], args[3], o);
      break;
    case undefined:
      throw new UsageError('missing SUBCOMMAND (generate, sign or revoke)');
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)} (generate, sign or revoke)`);
  }
  return EXIT.ok;
}

runMain(BINARY, main);
