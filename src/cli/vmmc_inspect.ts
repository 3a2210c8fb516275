/**
 * vmmc_inspect: shows wire messages, state files and certificates as JSON or text, and
 * encodes the JSON form back to DER. An operator's tool and our conformance hook.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CliSpec, EXIT, UsageError, parseCli, runMain } from './common.js';
import {
  describeCertificates, jsonToWire, messageBytes, parseJsonDocuments, stateToJson, wireToJson,
} from '../inspect/inspect.js';
import type { Result } from '../core/result.js';

const BINARY = 'vmmc_inspect';
const DEFAULT_DBDIR = process.platform === 'freebsd' ? '/var/db/albatross' : '/var/lib/albatross';

const spec: CliSpec = {
  binary: BINARY,
  synopsis: [
    `${BINARY} wire [--hex] [--frame] FILE...`,
    `${BINARY} encode [--hex] FILE`,
    `${BINARY} dump [--images] [--hex] [--dbdir DIR] [FILE]`,
    `${BINARY} cert [--images] FILE`,
  ],
  description: [
    'wire    decode one wire message body (DER) per FILE and print each as JSON. A message of',
    '        our log protocol (a log command or event) is printed as {"LogWire": ...}.',
    'encode  read that JSON (one or more documents) and print the DER of each message, one',
    '        after the other (raw bytes, or one line of hex per message with --hex);',
    '        encode of the output of wire gives back the same bytes.',
    'dump    decode a state file of vmmd and print it as JSON: which alternative it used,',
    '        the unikernels with their configuration (images as size and SHA-256 unless',
    '        --images) and the policies. FILE defaults to "state"; a bare file name is',
    '        looked up in --dbdir, a name containing "/" is used as given.',
    'cert    for each certificate or certificate request in a PEM file (or one DER',
    '        certificate): subject CN, issuer, validity, CA flag and the albatross extension.',
    'FILE "-" reads standard input.',
  ].join('\n'),
  options: [
    { name: 'hex', type: 'boolean', help: 'wire, dump: the input is hex text (whitespace ignored); encode: print hex instead of raw bytes.' },
    { name: 'frame', type: 'boolean', help: 'wire: the input is a whole frame, with its 4-byte big-endian length.' },
    { name: 'images', type: 'boolean', help: 'dump, cert: show unikernel images in full (hex) instead of size and SHA-256.' },
    { name: 'dbdir', type: 'string', arg: 'DIR', default: DEFAULT_DBDIR, help: 'dump: directory in which a bare FILE is looked up.' },
  ],
  examples: [
    `${BINARY} wire --frame capture.bin`,
    `echo 301f3015020105040800000000000000000c063a68656c6c6fa006a304b3020500 | ${BINARY} wire --hex -`,
    `${BINARY} wire msg.der | ${BINARY} encode - > again.der`,
    `${BINARY} dump --dbdir=/var/lib/albatross state.bak`,
    `${BINARY} cert tenant.pem`,
  ],
  more: 'EXIT STATUS\n  0 on success; 1 if the input is malformed (one line on standard error says what and where);\n  124 on a command line error; 125 on an internal error.\n',
};

/** Malformed input: exit 1 with one line. */
class InputError extends Error {}

async function readInput(file: string): Promise<Uint8Array> {
  const label = file === '-' ? '<stdin>' : file;
  try {
    if (file === '-') {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return new Uint8Array(Buffer.concat(chunks));
    }
    return new Uint8Array(await readFile(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(`${label}: cannot read${code ? ` (${code})` : ''}: ${(e as Error).message.replace(/^[A-Z]+: /, '')}`);
  }
}

function get<T>(file: string, r: Result<T>): T {
  if (!r.ok) throw new InputError(`${file === '-' ? '<stdin>' : file}: ${r.error}`);
  return r.value;
}

const pretty = (j: unknown): string => `${JSON.stringify(j, null, 2)}\n`;

function oneFile(args: string[], what: string): string {
  if (args.length === 0) throw new UsageError(`${what}: FILE is missing`);
  if (args.length > 1) throw new UsageError(`${what}: one FILE expected, got ${args.length}`);
  return args[0];
}

async function main(): Promise<number> {
  const opts = parseCli(spec);
  const [sub, ...args] = opts._;
  const hex = opts.hex as boolean;
  const images = opts.images as boolean;
  if (sub !== 'wire' && opts.frame) throw new UsageError('--frame applies to wire only');
  if (sub === 'cert' && hex) throw new UsageError('--hex does not apply to cert');
  if ((sub === 'wire' || sub === 'encode') && images) throw new UsageError('--images applies to dump and cert only');
  switch (sub) {
    case 'wire': {
      if (args.length === 0) throw new UsageError('wire: FILE is missing');
      const docs: string[] = [];
      for (const file of args) {
        const body = get(file, messageBytes(await readInput(file), { hex, frame: opts.frame as boolean }));
        docs.push(pretty(get(file, wireToJson(body)).json));
      }
      process.stdout.write(docs.join(''));
      return EXIT.ok;
    }
    case 'encode': {
      const file = oneFile(args, 'encode');
      const text = Buffer.from(await readInput(file)).toString('utf8');
      const ders = get(file, parseJsonDocuments(text)).map((j, i, all) => {
        const r = jsonToWire(j);
        return get(file, r.ok || all.length === 1 ? r : { ok: false, error: `document ${i + 1}: ${r.error}` }).der;
      });
      process.stdout.write(hex ? ders.map((d) => `${Buffer.from(d).toString('hex')}\n`).join('') : Buffer.concat(ders));
      return EXIT.ok;
    }
    case 'dump': {
      if (args.length > 1) throw new UsageError(`dump: at most one FILE expected, got ${args.length}`);
      const given = args[0] ?? 'state';
      const file = given === '-' || given.includes('/') ? given : join(opts.dbdir as string, given);
      const bytes = get(file, messageBytes(await readInput(file), { hex, frame: false }));
      process.stdout.write(pretty(get(file, stateToJson(bytes, images))));
      return EXIT.ok;
    }
    case 'cert': {
      const file = oneFile(args, 'cert');
      process.stdout.write(get(file, describeCertificates(await readInput(file), images)));
      return EXIT.ok;
    }
    case undefined:
      throw new UsageError('a subcommand is missing (wire, encode, dump or cert)');
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)} (wire, encode, dump or cert)`);
  }
}

runMain(BINARY, async () => {
  try {
    return await main();
  } catch (e) {
    if (e instanceof InputError) {
      process.stderr.write(`${BINARY}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
});
