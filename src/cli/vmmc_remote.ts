/**
 * vmmc_remote: executes the command of an existing certificate at a TLS endpoint
 * (upstream's `albatross-client certificate CERT KEY`, CERTS.md §7.7).
 */
import { type CliSpec, EXIT, JSON_OPTION, jsonMode, REMOTE_EXIT_STATUS, UsageError, die, parseCli, readTextOrDie, runMain, useColour } from './common.js';
import { type SessionOptions, checkReadable, runStep } from '../client/session.js';
import { configKey, namedRemote } from './remotes.js';
import type { Step } from '../client/commands.js';
import { classifyReadError, connectTls, keyMatches, parseDestination, validateOwnChain } from '../client/remote.js';
import { certFacts, pemBlocksStrict, toPem } from '../core/x509.js';
import { ALBATROSS_OID, describeCommand } from '../core/wire/wire.js';
import { decodeLeafExtension, isWireCommand } from '../core/wire/leaf.js';
import { parseLabel, parseName, root } from '../core/name.js';

const BINARY = 'vmmc_remote';

const spec: CliSpec = {
  binary: BINARY,
  synopsis: [
    `${BINARY} CERT KEY --destination HOST[:PORT] [--server-ca FILE] [--data FILE] [--json] [--output FILE]`,
    `${BINARY} [CERT KEY] --remote NAME [OPTIONS]`,
  ],
  description: [
    'Presents the chain in CERT (leaf first, as `vmmp_ca sign` writes it) and KEY to the TLS',
    'endpoint and prints the answers to the command in the leaf certificate. The server is',
    'verified against --server-ca (its host name is not checked). Before connecting, the key is',
    'checked against the leaf and the chain against --server-ca.',
    '--data FILE sends FILE after the handshake: the content of a block set, or the image of a',
    'create whose certificate carries an empty image (compressed when the certificate says so).',
  ].join('\n'),
  options: [
    { name: 'remote', alias: 'r', type: 'string', arg: 'NAME', help: 'a remote of the config file (README: Named remotes): its destination, server-ca, cert and key unless given here.' },
    { name: 'destination', alias: 'd', type: 'string', arg: 'HOST[:PORT]', help: 'the TLS endpoint (port 1025 if absent).' },
    { name: 'server-ca', type: 'string', arg: 'FILE', help: 'CA certificate that the server\'s certificate must chain to (cacert.pem).' },
    { name: 'data', type: 'string', arg: 'FILE', help: 'bulk data to send after the handshake (block set, create with an empty image).' },
    { name: 'compression-level', type: 'number', arg: 'N', help: 'zlib level for --data when the command says compressed (9).' },
    JSON_OPTION,
    { name: 'output', alias: 'o', type: 'string', arg: 'FILE', help: 'get, block dump: write the data to FILE instead of $TMPDIR/<name>.<time>.' },
    { name: 'timeout', type: 'number', arg: 'SECONDS', default: 30, help: 'time allowed for connecting and the TLS handshake.' },
    { name: 'follow', type: 'boolean', default: true, help: 'console, stats, log: keep printing what arrives (--no-follow: print what is there and exit).' },
  ],
  examples: [`${BINARY} hello.pem hello.key --server-ca cacert.pem -d albatross.example.org:1025`],
  more: REMOTE_EXIT_STATUS,
};

function fail(code: number, msg: string): never {
  return die(BINARY, code, msg);
}

const read = (file: string, what: string): string => readTextOrDie(BINARY, file, what);

async function main(): Promise<number> {
  const o = parseCli(spec);
  const remote = namedRemote(BINARY, o.remote as string | undefined);
  let certFile: string;
  let keyFile: string;
  if (o._.length === 2) [certFile, keyFile] = o._;
  else if (o._.length === 0 && remote?.cert !== undefined && remote.key !== undefined) {
    [certFile, keyFile] = [remote.cert, remote.key];
    configKey(BINARY, keyFile, 'the key');
  } else throw new UsageError(o._.length === 0 && remote !== undefined ? `expected CERT KEY (remote ${remote.name} has no cert and key)` : 'expected CERT KEY');
  const destArg = (o.destination as string | undefined) ?? remote?.destination;
  if (destArg === undefined) throw new UsageError('no destination provided (--destination HOST[:PORT], or --remote NAME)');
  o['server-ca'] ??= remote?.['server-ca'] ?? 'cacert.pem';
  const dest = parseDestination(destArg);
  if (!dest.ok) throw new UsageError(`--destination: ${dest.error}`);

  const blocks = pemBlocksStrict(read(certFile, 'certificate'));
  if (!blocks.ok) fail(EXIT.other, `${certFile}: ${blocks.error}`);
  const certs = blocks.value.filter((b) => b.label === 'CERTIFICATE');
  if (certs.length === 0) fail(EXIT.other, `${certFile}: no certificate found`);
  const keyPem = read(keyFile, 'key');
  const caPem = read(String(o['server-ca']), 'server CA');
  const chainPem = certs.map((c) => toPem('CERTIFICATE', c.der));
  const m = keyMatches(chainPem[0], keyPem);
  if (!m.ok) fail(EXIT.other, `${m.error.which === 'key' ? keyFile : certFile}: ${m.error.message}`);
  if (!m.value) fail(EXIT.other, `Public key of certificate doesn't match private key (${certFile}, ${keyFile})`);
  const v = validateOwnChain(chainPem, caPem);
  if (!v.ok) fail(EXIT.chainInvalid, `TLS validation error of provided certificate chain: ${v.error}`);

  const leaf = certFacts(certs[0].der);
  if (!leaf.ok) fail(EXIT.other, `${certFile}: ${leaf.error}`);
  const ext = leaf.value.extensions.find((e) => e.oid === ALBATROSS_OID);
  if (ext === undefined) fail(EXIT.other, `${certFile}: the leaf certificate does not contain an albatross extension`);
  const ce = decodeLeafExtension(ext.value);
  if (!ce.ok) fail(EXIT.other, `${certFile}: albatross extension: ${ce.error}`);
  const leafCmd = ce.value.command;
  const cn = leaf.value.subjectCN;
  const session: SessionOptions = {
    binary: BINARY, style: { colour: useColour(process.stdout) }, json: jsonMode(o) !== 'none', jsonWire: jsonMode(o) === 'wire', stdout: process.stdout, stderr: process.stderr,
    progress: process.stderr.isTTY === true, outputFile: o.output as string | undefined, downloadDir: process.env.TMPDIR || '/tmp',
    endpoint: true, classify: classifyReadError, follow: !process.argv.slice(2).includes('--no-follow'),
  };
  if (!isWireCommand(leafCmd)) {
    // status or log (WIRE.md §8.3): the CN is a name below the chain's path
    if (o.data !== undefined) throw new UsageError(`--data does not apply to ${leafCmd.kind}`);
    const n = cn === undefined || cn === '' || cn === '.' || cn === ':' ? undefined : parseName(cn);
    const name = n?.ok ? n.value : root;
    const conn = await connectTls(dest.value.host, dest.value.port, chainPem, keyPem, caPem, (o.timeout as number) * 1000);
    if (!conn.ok) fail(conn.error.code, conn.error.message);
    const { runObserve } = await import('../client/observe.js');
    const code = await runObserve(conn.value, name, leafCmd, session);
    conn.value.close();
    return code;
  }
  const cmd = leafCmd;
  const label = cn === undefined || cn === '.' || cn === ':' ? undefined : parseLabel(cn);
  const step: Step = { name: label?.ok ? { path: [], label: label.value } : { path: [] }, command: cmd };

  const data = o.data as string | undefined;
  const isSet = cmd.kind === 'block' && cmd.value.kind === 'set';
  const isCreate = cmd.kind === 'unikernel' && (cmd.value.kind === 'create' || cmd.value.kind === 'force_create');
  const emptyImage = isCreate && (cmd.value.value as { image: Uint8Array }).image.length === 0;
  if (data !== undefined && !isSet && !emptyImage) throw new UsageError(`--data does not apply to ${describeCommand(cmd)}${isCreate ? ' (the certificate carries the image)' : ''}`);
  if (isSet && data === undefined) throw new UsageError('block set needs --data FILE');
  const compressed = isSet ? (cmd.value.value as boolean) : emptyImage ? (cmd.value.value as { compressed: boolean }).compressed : false;
  const level = compressed ? ((o['compression-level'] as number | undefined) ?? 9) : 0;
  if (compressed && (level < 1 || level > 9)) throw new UsageError('--compression-level must be between 1 and 9 for compressed data');
  if (data !== undefined) {
    const e = checkReadable(data);
    if (e !== undefined) fail(EXIT.other, e);
    step.upload = { file: data, level };
  } else if (emptyImage) {
    // the endpoint waits for the image: an empty upload is just the end marker
    step.upload = { file: '/dev/null', level: 0 };
  }

  const conn = await connectTls(dest.value.host, dest.value.port, chainPem, keyPem, caPem, (o.timeout as number) * 1000);
  if (!conn.ok) fail(conn.error.code, conn.error.message);
  const code = await runStep(conn.value, step, session, false);
  conn.value.close();
  return code;
}

runMain(BINARY, main);
