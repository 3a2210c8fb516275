/**
 * vmmp_request: a certificate signing request for one command (upstream's
 * `albatross-client SUBCOMMAND ... --csr`, CERTS.md §7.3).
 */
import { type CliSpec, EXIT, UsageError, die, parseCli, runMain } from './common.js';
import { COMMAND_OPTIONS, SUBCOMMANDS, buildRequest, certificateCn, fixAddName, leafSubcommands, observeCn, subcommandSpecs } from '../client/commands.js';
import { parseKeyType } from '../provision/keys.js';
import { makeCsr } from '../provision/certs.js';
import { loadOrCreateKey, readBytes, writeDurable } from '../provision/files.js';
import { type LeafCommand, describeLeafCommand } from '../core/wire/leaf.js';
import type { Name } from '../core/name.js';

const BINARY = 'vmmp_request';
// status and log: leaf-only commands of albatross-ts endpoints (WIRE.md §8.3)
const subs = leafSubcommands();

const spec: CliSpec = {
  binary: BINARY,
  synopsis: [`${BINARY} SUBCOMMAND ARGS... [OPTIONS]`],
  description: [
    'Writes NAME.key (created if missing, mode 0600; an existing key is reused) and NAME.req,',
    'a PKCS#10 request whose only requested extension is the albatross extension with the command.',
    'NAME is the label of the unikernel or block device, or the path for policy commands.',
    'A CA signs the request with `vmmp_ca sign`; the result is used with vmmc_remote.',
    'Images of create are checked against their manifest and compressed (level 9 unless given).',
  ].join('\n'),
  subcommands: subcommandSpecs(subs, 'csr', { create: ['image-later'] }),
  common: ['key-type', 'new-key'],
  options: [
    { name: 'key-type', type: 'string', choices: ['ed25519', 'rsa2048', 'rsa4096', 'p256', 'p384', 'p521'], arg: 'TYPE', default: 'ed25519', help: 'type of a new key: ed25519, rsa2048, rsa4096, p256, p384, p521.' },
    { name: 'new-key', type: 'boolean', help: 'replace an existing NAME.key by a new key.' },
    { name: 'image-later', type: 'boolean', help: 'create: check IMAGE but leave it out of the request; vmmc_remote --data IMAGE sends it after the handshake (for images too big for a certificate).' },
    ...COMMAND_OPTIONS.filter((o) => o.name !== 'file' && o.name !== 'follow'),
  ],
  examples: [
    `${BINARY} add-policy user 16 --mem 1024 --cpu 0 --cpu 1 --bridge service`,
    `${BINARY} create hello hello.hvt --arg=--hello=world`,
    `${BINARY} console hello --count 50`,
    `${BINARY} set-block storage    (then: vmmc_remote storage.pem storage.key --data disk.img ...)`,
  ],
  more: 'EXIT STATUS\n  0 on success; 123 if the request cannot be made (one line on standard error says why);\n  124 on a command line error; 125 on an internal error.\n',
};

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const o = fixAddName(parseCli(spec, argv), argv);
  const [sub, ...args] = (o as { _: string[] })._;
  if (sub === undefined) throw new UsageError('missing SUBCOMMAND');
  if (SUBCOMMANDS[sub] !== undefined && !subs.includes(sub)) throw new UsageError(`${sub} cannot be requested (one of ${subs.join(', ')})`);
  const kt = parseKeyType(String(o['key-type']));
  if (!kt.ok) throw new UsageError(kt.error);
  if (o.data !== undefined) {
    throw new UsageError('--data cannot travel in a request: request create-block, then set-block, and give the data to vmmc_remote --data');
  }
  let image: Uint8Array | undefined;
  if (sub === 'create' && args.length >= 2) {
    const r = readBytes(args[1], 'image');
    if (!r.ok) die(BINARY, EXIT.other, r.error);
    image = r.value;
  }
  const req = buildRequest({ sub, args, opts: o, dest: 'csr', image });
  if (!req.ok) {
    if (req.error.kind === 'usage') throw new UsageError(req.error.message);
    die(BINARY, EXIT.other, req.error.message);
  }
  if (req.value.kind !== 'commands' && req.value.kind !== 'observe') die(BINARY, EXIT.other, `${sub} cannot be requested`);
  const step: { name: Name; command: LeafCommand } = req.value.kind === 'observe' ? req.value : req.value.steps[0];
  if (o['image-later'] === true) {
    const c = step.command;
    if (c.kind !== 'unikernel' || (c.value.kind !== 'create' && c.value.kind !== 'force_create')) throw new UsageError('--image-later applies to create only');
    c.value.value = { ...c.value.value, image: new Uint8Array(0) };
  }
  const cn = step.command.kind === 'status' || step.command.kind === 'log' ? { ok: true as const, value: observeCn(step.name) } : certificateCn(step.name, step.command);
  if (!cn.ok) die(BINARY, EXIT.other, `error while creating CSR: ${cn.error}`);
  if (cn.value === '') die(BINARY, EXIT.other, 'error while creating CSR: "": invalid path (a request for the root path has no name)');
  // status and log of the CA's own path (CN "."): the files are named after the subcommand
  const base = cn.value === '.' && (step.command.kind === 'status' || step.command.kind === 'log') ? step.command.kind : cn.value;
  if (base === '.') die(BINARY, EXIT.other, 'error while creating CSR: the root name "." cannot name the key and request files; use vmmc_bistro');
  const keyFile = `${base}.key`;
  const key = await loadOrCreateKey(keyFile, kt.value, o['new-key'] === true);
  if (!key.ok) die(BINARY, EXIT.other, `error while creating CSR: ${key.error}`);
  const csr = await makeCsr(cn.value, key.value.key, step.command);
  const w = writeDurable(`${base}.req`, csr.toString('pem') + '\n');
  if (!w.ok) die(BINARY, EXIT.other, `error while creating CSR: ${w.error}`);
  process.stdout.write(
    `${key.value.created ? 'created' : 'reused'} ${keyFile} (${key.value.key.type}); wrote ${base}.req: ${describeLeafCommand(step.command)} for CN=${cn.value}\n`,
  );
  return EXIT.ok;
}

runMain(BINARY, main);
