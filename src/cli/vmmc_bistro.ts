/**
 * vmmc_bistro: one-shot remote execution (CERTS.md §7.6). Builds a throw-away key and a
 * 5-minute certificate for the command, signed by a CA whose key is on this machine, and
 * runs it at the TLS endpoint.
 */
import * as fs from 'node:fs';
import { type CliSpec, EXIT, JSON_OPTION, jsonMode, REMOTE_EXIT_STATUS, UsageError, die, parseCli, readTextOrDie, runMain, useColour } from './common.js';
import { COMMAND_OPTIONS, SUBCOMMANDS, type Step, buildRequest, subcommandSpecs, certificateCn, fixAddName, leafSubcommands, observeCn } from '../client/commands.js';
import type { OwnLeafCommand } from '../core/wire/leaf.js';
import { type SessionOptions, checkReadable, runStep } from '../client/session.js';
import { classifyReadError, connectTls, parseDestination, validateOwnChain } from '../client/remote.js';
import { oneShotCertificate } from '../client/oneshot.js';
import { configKey, namedRemote } from './remotes.js';
import { loadPrivateKey, parseKeyType } from '../provision/keys.js';
import { parseCertificates } from '../provision/certs.js';

const BINARY = 'vmmc_bistro';
// stats-add and stats-remove are vmmd's own commands to vmmd_stats: no endpoint runs them from a leaf
// status and log: leaf-only commands of albatross-ts endpoints (WIRE.md §8.3)
const subs = leafSubcommands().filter((s) => s !== 'stats-add' && s !== 'stats-remove');

const spec: CliSpec = {
  binary: BINARY,
  synopsis: [
    `${BINARY} SUBCOMMAND ARGS... --destination HOST[:PORT]|- [--ca FILE] [--ca-key FILE] [--server-ca FILE] [OPTIONS]`,
    `${BINARY} SUBCOMMAND ARGS... --remote NAME [OPTIONS]`,
  ],
  description: [
    'Runs one command at the TLS endpoint without a prior signing step: a fresh key and a',
    'certificate valid for 5 minutes carrying the command, signed with --ca/--ca-key, presented',
    'with the certificates of --ca as the chain. The command is checked against the policy of',
    '--ca first. With --destination - the chain is printed instead.',
    'The CA key must be readable here: whoever can read it can act as that CA. Prefer',
    'vmmp_request, vmmp_ca sign on the CA\'s machine, and vmmc_remote.',
  ].join('\n'),
  subcommands: subcommandSpecs(subs, 'remote', { get: ['output'], 'dump-block': ['output'] }, (e) => `${e} -d albatross.example.org`),
  common: ['remote', 'destination', 'ca', 'ca-key', 'server-ca', 'key-type', 'json', 'timeout'],
  options: [
    { name: 'remote', alias: 'r', type: 'string', arg: 'NAME', help: 'a remote of the config file (README: Named remotes): its destination, ca, ca-key and server-ca unless given here.' },
    { name: 'destination', alias: 'd', type: 'string', arg: 'HOST[:PORT]', help: 'the TLS endpoint (port 1025 if absent); "-" prints the chain.' },
    { name: 'ca', type: 'string', arg: 'FILE', help: 'the signing CA certificate (and its chain); `vmmp_ca generate NAME` writes cacert.pem (cacert.pem).' },
    { name: 'ca-key', type: 'string', arg: 'FILE', help: 'the private key of --ca; `vmmp_ca generate NAME` writes NAME.key (ca.key).' },
    { name: 'server-ca', type: 'string', arg: 'FILE', help: 'CA certificate that the server\'s certificate must chain to (cacert.pem).' },
    { name: 'key-type', type: 'string', choices: ['ed25519', 'rsa2048', 'rsa4096', 'p256', 'p384', 'p521'], arg: 'TYPE', default: 'ed25519', help: 'type of the throw-away key: ed25519, rsa2048, rsa4096, p256, p384, p521.' },
    JSON_OPTION,
    { name: 'output', alias: 'o', type: 'string', arg: 'FILE', help: 'get, dump-block: write the data to FILE.' },
    { name: 'timeout', type: 'number', arg: 'SECONDS', default: 30, help: 'time allowed for connecting and the TLS handshake.' },
    ...COMMAND_OPTIONS.filter((x) => x.name !== 'file'),
  ],
  examples: [
    `${BINARY} info --ca user.pem --ca-key user.key --server-ca cacert.pem -d albatross.example.org`,
    `${BINARY} create hello hello.hvt --ca user.pem --ca-key user.key -d albatross.example.org:1025`,
  ],
  more: REMOTE_EXIT_STATUS,
};

function fail(code: number, msg: string): never {
  return die(BINARY, code, msg);
}
const read = (file: string, what: string): string => readTextOrDie(BINARY, file, what);

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const o = fixAddName(parseCli(spec, argv), argv);
  const [sub, ...args] = (o as { _: string[] })._;
  if (sub === undefined) throw new UsageError('missing SUBCOMMAND');
  if (SUBCOMMANDS[sub] !== undefined && !subs.includes(sub)) throw new UsageError(`${sub} cannot run remotely (one of ${subs.join(', ')})`);
  const remote = namedRemote(BINARY, o.remote as string | undefined);
  if (o['ca-key'] === undefined && remote?.['ca-key'] !== undefined) configKey(BINARY, remote['ca-key'], 'the CA key');
  o.ca ??= remote?.ca ?? 'cacert.pem';
  o['ca-key'] ??= remote?.['ca-key'] ?? 'ca.key';
  o['server-ca'] ??= remote?.['server-ca'] ?? 'cacert.pem';
  const destArg = (o.destination as string | undefined) ?? remote?.destination;
  if (destArg === undefined) throw new UsageError('no destination provided (--destination HOST[:PORT], or --remote NAME)');
  const dest = destArg === '-' ? undefined : parseDestination(destArg);
  if (dest !== undefined && !dest.ok) throw new UsageError(`--destination: ${dest.error}`);
  const kt = parseKeyType(String(o['key-type']));
  if (!kt.ok) throw new UsageError(kt.error);

  let image: Uint8Array | undefined;
  if (sub === 'create' && args.length >= 2) {
    try {
      image = new Uint8Array(fs.readFileSync(args[1]));
    } catch (e) {
      const c = (e as NodeJS.ErrnoException).code;
      fail(EXIT.other, `cannot read image ${args[1]}: ${c === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
  }
  const req = buildRequest({ sub, args, opts: o, dest: 'remote', image });
  if (!req.ok) {
    if (req.error.kind === 'usage') throw new UsageError(req.error.message);
    fail(EXIT.other, req.error.message);
  }
  if (req.value.kind !== 'commands' && req.value.kind !== 'observe') fail(EXIT.other, `${sub} cannot run remotely`);
  const observe = req.value.kind === 'observe' ? req.value : undefined;
  const steps: (Step | { name: Step['name']; command: OwnLeafCommand; upload?: undefined })[] = req.value.kind === 'commands' ? req.value.steps : [req.value];

  const caFile = String(o.ca);
  const caText = read(caFile, 'CA certificate');
  const caChain = parseCertificates(caText, caFile);
  if (!caChain.ok) fail(EXIT.other, caChain.error);
  const caKey = await loadPrivateKey(read(String(o['ca-key']), 'CA key'), String(o['ca-key']));
  if (!caKey.ok) fail(EXIT.other, caKey.error);
  process.stderr.write(`${BINARY}: warning: the CA key ${String(o['ca-key'])} is on this machine; whoever can read it can act as the CA\n`);
  const serverCa = dest === undefined ? '' : read(String(o['server-ca']), 'server CA');
  for (const s of steps) {
    if (s.upload !== undefined) {
      const e = checkReadable(s.upload.file);
      if (e !== undefined) fail(EXIT.other, e);
    }
  }

  const session: SessionOptions = {
    binary: BINARY, style: { colour: useColour(process.stdout) }, json: jsonMode(o) !== 'none', jsonWire: jsonMode(o) === 'wire', stdout: process.stdout, stderr: process.stderr,
    progress: process.stderr.isTTY === true, outputFile: o.output as string | undefined, downloadDir: process.env.TMPDIR || '/tmp',
    endpoint: true, classify: classifyReadError, follow: o.follow !== false,
  };
  for (const step of steps) {
    const cn = observe !== undefined ? { ok: true as const, value: observeCn(observe.name) } : certificateCn(step.name, step.command as Step['command']);
    if (!cn.ok) fail(EXIT.other, `couldn't generate certificate chain: ${cn.error}`);
    const leaf = await oneShotCertificate(caChain.value[0], caKey.value, cn.value, step.command, kt.value);
    if (!leaf.ok) fail(EXIT.other, `couldn't generate certificate chain: ${leaf.error}`);
    const chainPem = [leaf.value.certPem, ...caChain.value.map((c) => `${c.toString('pem')}\n`)];
    if (dest === undefined) {
      process.stdout.write(chainPem.join(''));
      continue;
    }
    const v = validateOwnChain(chainPem, serverCa);
    if (!v.ok) fail(EXIT.chainInvalid, `TLS validation error of provided certificate chain: ${v.error}`);
    const conn = await connectTls(dest.value.host, dest.value.port, chainPem, leaf.value.keyPem, serverCa, (o.timeout as number) * 1000);
    if (!conn.ok) fail(conn.error.code, conn.error.message);
    const code = observe !== undefined
      ? await (await import('../client/observe.js')).runObserve(conn.value, observe.name, observe.command, session)
      : await runStep(conn.value, step as Step, session, false);
    conn.value.close();
    if (code !== EXIT.ok) return code;
  }
  return EXIT.ok;
}

runMain(BINARY, main);
