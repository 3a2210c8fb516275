/**
 * What every command-line program shares: option parsing with `--help` generated from
 * one declaration, unknown options refused, upstream's exit codes, one-line errors
 * (never a stack trace), and colour only on a terminal.
 */
import { readFileSync } from 'node:fs';
import minimist from 'minimist';
import { answerVersion } from './stub.js';
import { completionTable } from './completion.js';

export { defaultTmpdir } from '../io/paths.js';

/** Exit codes of upstream's albatross-client (SEMANTICS.md §11.2). */
export const EXIT = {
  ok: 0,
  /** local chain validation failed */
  chainInvalid: 116,
  /** the remote command failed: a failure reply was received */
  remoteFailed: 117,
  http: 118,
  /** the server rejected our certificate */
  localAuth: 119,
  /** the server's certificate is not trusted */
  remoteAuth: 120,
  communication: 121,
  connect: 122,
  /** other errors, reported on standard error */
  other: 123,
  usage: 124,
  internal: 125,
} as const;

/** The EXIT STATUS section of the clients that talk TLS to a remote endpoint. */
export const REMOTE_EXIT_STATUS = [
  'EXIT STATUS',
  `  ${EXIT.ok} success; ${EXIT.chainInvalid} our chain does not validate against --server-ca; ${EXIT.remoteFailed} the command failed;`,
  `  ${EXIT.localAuth} the server refused our certificate; ${EXIT.remoteAuth} the server's certificate is not trusted;`,
  `  ${EXIT.communication} communication failure; ${EXIT.connect} cannot connect; ${EXIT.other} other errors; ${EXIT.usage} command line error.`,
  '',
].join('\n');

export type OptionType = 'string' | 'boolean' | 'number' | 'strings' | 'numbers';

export interface OptionSpec {
  name: string;
  alias?: string;
  type: OptionType;
  /** Shown as the value placeholder in help, e.g. DIR. */
  arg?: string;
  default?: string | number | boolean;
  help: string;
  /** A boolean that may also be given a value, `--json=wire`: these are the values allowed (the option is then that string). */
  values?: string[];
  /** The values the shell completion offers (the option's parser checks them). */
  choices?: string[];
}

/** One subcommand of a binary: what `BINARY SUBCOMMAND --help` and the shell completion show. */
export interface SubcommandSpec {
  /** Positional arguments, e.g. ['NAME', 'IMAGE']. */
  args: string[];
  help: string;
  /** Names of the options (of CliSpec.options) that belong to this subcommand. */
  options: string[];
  /** Command lines without the binary, e.g. `create hello hello.hvt --mem 64`. */
  examples?: string[];
}

export interface CliSpec {
  /** The binary, e.g. `vmmc_local`. */
  binary: string;
  /** One line each, e.g. `vmmc_local [OPTIONS] info [--name NAME]`. */
  synopsis: string[];
  description: string;
  options: OptionSpec[];
  examples?: string[];
  /** Extra sections (EXIT STATUS, FILES...), already formatted. */
  more?: string;
  /** `BINARY SUBCOMMAND --help` prints the subcommand's page; the completion offers them. */
  subcommands?: Record<string, SubcommandSpec>;
  /** Options shared by every subcommand (listed by name on a subcommand's page). */
  common?: string[];
}

/** The width help is wrapped to: the terminal's, else 80 (COLUMNS wins when set). */
export function helpWidth(): number {
  const c = Number(process.env.COLUMNS);
  const w = Number.isInteger(c) && c > 0 ? c : process.stdout.isTTY ? process.stdout.columns : 80;
  return Math.max(40, Math.min(w || 80, 200));
}

/** `text` wrapped at spaces to `width`, each line indented by `indent` spaces (a word longer than a line stays whole). */
export function wrap(text: string, indent: number, width: number, hanging = indent): string {
  const lines: string[] = [];
  let cur = '';
  const room = (): number => width - (lines.length === 0 ? indent : hanging);
  for (const word of text.split(/\s+/).filter((x) => x !== '')) {
    if (cur !== '' && cur.length + 1 + word.length > room()) {
      lines.push(' '.repeat(lines.length === 0 ? indent : hanging) + cur);
      cur = word;
    } else cur = cur === '' ? word : `${cur} ${word}`;
  }
  if (cur !== '') lines.push(' '.repeat(lines.length === 0 ? indent : hanging) + cur);
  return lines.join('\n');
}

/** The extra sections: EXIT STATUS is prose, reflowed to the width; others (FILES, SIGNALS) are tables, kept. */
function moreText(more: string, width: number): string {
  const out: string[] = [];
  let heading = '';
  let prose: string[] = [];
  const flush = (): void => {
    if (prose.length > 0) out.push(wrap(prose.join(' '), 2, width));
    prose = [];
  };
  for (const l of more.split('\n')) {
    if (!l.startsWith(' ')) {
      flush();
      heading = l;
      out.push(l);
    } else if (heading === 'EXIT STATUS') prose.push(l.trim());
    else out.push(wrapLines(l, 0, width));
  }
  flush();
  return out.join('\n');
}

/** A description: runs of lines that start in the first column are paragraphs, reflowed; indented lines are kept (wrapped if too long). */
function reflow(text: string, width: number): string {
  const out: string[] = [];
  let para: string[] = [];
  const flush = (): void => {
    if (para.length > 0) out.push(wrap(para.join(' '), 2, width));
    para = [];
  };
  for (const l of text.split('\n')) {
    if (l !== '' && !l.startsWith(' ')) para.push(l);
    else {
      flush();
      out.push(wrapLines(l, 2, width));
    }
  }
  flush();
  return out.join('\n');
}

/** Pre-formatted lines: each kept as it is when it fits, else wrapped under its own indentation. */
function wrapLines(text: string, indent: number, width: number): string {
  return text.split('\n').map((l) => {
    if (indent + l.length <= width) return `${' '.repeat(indent)}${l}`.trimEnd();
    const lead = /^ */.exec(l)?.[0].length ?? 0;
    return wrap(l, indent + lead, width);
  }).join('\n');
}

/** Two columns: the left padded to `left`, the right wrapped; a left cell too wide puts the right on the next line. */
export function twoColumns(rows: [string, string][], indent: number, left: number, width: number): string {
  return rows.map(([a, b]) => {
    const body = wrap(b, indent + left, width);
    if (a.length + 1 > left) return `${' '.repeat(indent)}${a}\n${body}`;
    return `${' '.repeat(indent)}${a.padEnd(left)}${body.slice(indent + left)}`;
  }).join('\n');
}

/** The option's flag as help shows it: `-n, --name=NAME`, `--json[=wire]`. */
export function optionFlag(o: OptionSpec): string {
  if (o.type === 'boolean' && o.default === true) return `${o.alias ? `-${o.alias}, ` : ''}--[no-]${o.name}`;
  return `${o.alias ? `-${o.alias}, ` : ''}--${o.name}${o.type === 'boolean' ? (o.values ? `[=${o.values.join('|')}]` : '') : `=${o.arg ?? o.type.replace(/s$/, '').toUpperCase()}`}`;
}

/**
 * The part of an option's help that concerns `sub`: helps of shared options are written
 * `create, restart: memory (32); add-policy: memory allowed (512).`; without such a prefix
 * the whole text.
 */
export function optionHelpFor(help: string, sub: string): string {
  const groups: { subs: string[] | undefined; text: string[] }[] = [];
  for (const seg of help.replace(/\.$/, '').split('; ')) {
    const m = /^([a-z-]+(?:, [a-z-]+)*): (.*)$/.exec(seg);
    if (m !== null) groups.push({ subs: m[1].split(', '), text: [m[2]] });
    else if (groups.length > 0) groups[groups.length - 1].text.push(seg);
    else groups.push({ subs: undefined, text: [seg] });
  }
  if (groups[0].subs === undefined) return help;
  const g = groups.find((x) => x.subs?.includes(sub));
  return g === undefined ? help : `${g.text.join('; ')}.`;
}

function optionLines(o: OptionSpec, help: string, width: number): string {
  const def = o.default !== undefined && !(o.type === 'boolean' && o.default === true) ? ` (default: ${String(o.default)})` : '';
  const rep = o.type === 'strings' || o.type === 'numbers' ? ' (repeatable)' : '';
  return `  ${optionFlag(o)}\n${wrap(`${help}${rep}${def}`, 6, width)}`;
}

/** The page of `BINARY SUBCOMMAND --help`: synopsis, what it does, its options, examples. */
export function subcommandHelpText(spec: CliSpec, sub: string, width = helpWidth()): string {
  const d = (spec.subcommands as Record<string, SubcommandSpec>)[sub];
  const opts = d.options.map((n) => spec.options.find((o) => o.name === n)).filter((o): o is OptionSpec => o !== undefined);
  const shown = opts.map((o) => (o.type === 'boolean' ? `[--${o.default === true ? 'no-' : ''}${o.name}]` : `[--${o.name} ${o.arg ?? 'X'}]`)).join(' ');
  const lines: string[] = [];
  lines.push(`NAME\n${wrap(`${spec.binary} ${sub} - ${d.help}`, 2, width, 6)}\n`);
  lines.push(`SYNOPSIS\n${wrap(`${spec.binary} ${sub} ${d.args.join(' ')} ${shown}${spec.common?.length ? ' [COMMON OPTIONS]' : ''}`, 2, width, 6)}\n`);
  if (opts.length > 0) lines.push(`OPTIONS\n${opts.map((o) => optionLines(o, optionHelpFor(o.help, sub), width)).join('\n')}\n`);
  if (spec.common?.length) lines.push(`COMMON OPTIONS\n${wrap(`${spec.common.map((c) => `--${c}`).join(', ')}, --help, --version: see ${spec.binary} --help.`, 2, width)}\n`);
  if (d.examples?.length) lines.push(`EXAMPLES\n${d.examples.map((e) => wrap(`${spec.binary} ${e}`, 2, width, 6)).join('\n')}\n`);
  return `${lines.join('\n')}\n`;
}

/** The first word of argv that names a subcommand of spec, if any. */
export function subcommandOf(spec: CliSpec, argv: readonly string[]): string | undefined {
  if (spec.subcommands === undefined) return undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return undefined;
    if (a.startsWith('-')) {
      // `--tmpdir DIR`: DIR is the option's value, not the subcommand
      const o = spec.options.find((x) => a === `--${x.name}` || (x.alias !== undefined && a === `-${x.alias}`));
      if (o !== undefined && o.type !== 'boolean') i++;
      continue;
    }
    return Object.hasOwn(spec.subcommands, a) ? a : undefined;
  }
  return undefined;
}

export type Opts = Record<string, unknown> & { _: string[] };

/** `--json` of the clients: documents of SEMANTICS.md §11.4, or `--json=wire` for the messages as vmmc_inspect shows them. */
export const JSON_OPTION: OptionSpec = {
  name: 'json', type: 'boolean', values: ['wire'],
  help: 'print JSON: one document per command, or per line for console, stats and log (README: JSON output); =wire prints each message in its wire form.',
};

/** The --json mode chosen: none, the documented documents, or the wire form. */
export function jsonMode(o: Record<string, unknown>): 'none' | 'doc' | 'wire' {
  return o.json === 'wire' ? 'wire' : o.json === true ? 'doc' : 'none';
}

export class UsageError extends Error {}

export function helpText(spec: CliSpec, width = helpWidth()): string {
  const lines: string[] = [];
  lines.push(`NAME\n  ${spec.binary}\n`);
  lines.push(`SYNOPSIS\n${spec.synopsis.map((s) => wrap(s, 2, width, 6)).join('\n')}\n`);
  lines.push(`DESCRIPTION\n${reflow(spec.description, width)}\n`);
  if (spec.subcommands !== undefined) {
    const rows = Object.entries(spec.subcommands).map(([n, d]): [string, string] => [`${n} ${d.args.join(' ')}`.trimEnd(), d.help]);
    lines.push(`SUBCOMMANDS (${spec.binary} SUBCOMMAND --help for one)\n${twoColumns(rows, 2, 30, width)}\n`);
  }
  if (spec.options.length > 0) {
    lines.push('OPTIONS');
    for (const o of spec.options) lines.push(optionLines(o, o.help, width));
    lines.push('  --help\n      Show this help and exit.');
    lines.push('  --version\n      Print the version and exit.');
    lines.push('');
  }
  if (spec.examples && spec.examples.length > 0) lines.push(`EXAMPLES\n${spec.examples.map((e) => wrap(e, 2, width, 6)).join('\n')}\n`);
  if (spec.more) lines.push(`${moreText(spec.more.replace(/\n$/, ''), width)}\n`);
  return `${lines.join('\n')}\n`;
}

const asList = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * Parses argv against the declared options. Throws UsageError for unknown options,
 * missing values and malformed numbers; handles --help and --version itself.
 */
export function parseCli(spec: CliSpec, argv: string[] = process.argv.slice(2)): Opts {
  answerVersion(spec.binary, argv);
  // hidden: the table the bash completion is generated from (src/cli/completion.ts)
  if (argv.length === 1 && argv[0] === '--completion-table') {
    process.stdout.write(`${JSON.stringify(completionTable(spec))}\n`);
    process.exit(0);
  }
  const helpAt = argv.findIndex((a) => a === '--help' || a === '-h');
  if (helpAt >= 0 && (argv.indexOf('--') < 0 || helpAt < argv.indexOf('--'))) {
    const sub = subcommandOf(spec, argv);
    process.stdout.write(sub === undefined ? helpText(spec) : subcommandHelpText(spec, sub));
    process.exit(0);
  }
  // `--json=wire`: a boolean with a value; minimist would read it as true
  const valued: Record<string, string> = {};
  const end = argv.indexOf('--');
  argv = argv.map((a, i) => {
    if (end >= 0 && i > end) return a;
    const m = /^--([^=]+)=(.*)$/.exec(a);
    const o = m === null ? undefined : spec.options.find((x) => x.values !== undefined && x.name === m[1]);
    if (m === null || o === undefined) return a;
    if (!(o.values as string[]).includes(m[2])) throw new UsageError(`--${o.name}: expected --${o.name} or --${o.name}=${(o.values as string[]).join('|')}, got ${JSON.stringify(m[2])}`);
    valued[o.name] = m[2];
    return `--${o.name}`;
  });
  const string: string[] = [];
  const boolean: string[] = [];
  const alias: Record<string, string> = {};
  const known = new Set<string>(['_', '--']);
  for (const o of spec.options) {
    (o.type === 'boolean' ? boolean : string).push(o.name);
    known.add(o.name);
    if (o.alias) {
      alias[o.alias] = o.name;
      known.add(o.alias);
    }
  }
  let unknown: string | undefined;
  const raw = minimist(argv, {
    string,
    boolean,
    alias,
    '--': true,
    unknown: (a) => {
      if (a.startsWith('-') && a !== '-' && unknown === undefined) unknown = a;
      return true;
    },
  });
  if (unknown !== undefined) {
    // `--arg --x`: minimist takes --x for an option, so --arg got no value
    const i = argv.indexOf(unknown);
    const prev = i > 0 ? argv[i - 1] : undefined;
    const o = prev === undefined ? undefined : spec.options.find((x) => x.type !== 'boolean' && (prev === `--${x.name}` || (x.alias !== undefined && prev === `-${x.alias}`)));
    if (o !== undefined) throw new UsageError(`${prev} got no value: ${unknown} was read as an option; write ${prev}=${unknown} to pass a value that starts with "-"`);
    throw new UsageError(`unknown option ${unknown.replace(/=.*$/, '')}${suggestion(unknown.replace(/^-+/, '').replace(/=.*$/, ''), spec.options.map((x) => x.name), '--')}`);
  }
  const out: Opts = { _: raw._.map(String) };
  for (const o of spec.options) {
    const v = raw[o.name];
    switch (o.type) {
      case 'boolean':
        out[o.name] = valued[o.name] ?? (v === undefined ? (o.default ?? false) : Boolean(v));
        break;
      case 'string':
        if (Array.isArray(v)) throw new UsageError(`--${o.name} given more than once`);
        if (v === '' && argv.some((a) => a === `--${o.name}` || a === `-${o.alias}`)) throw new UsageError(`--${o.name} needs a value`);
        out[o.name] = v === undefined ? o.default : String(v);
        break;
      case 'number': {
        if (Array.isArray(v)) throw new UsageError(`--${o.name} given more than once`);
        out[o.name] = v === undefined ? o.default : parseNumber(o.name, String(v));
        break;
      }
      case 'strings':
        out[o.name] = asList(v).map(String);
        break;
      case 'numbers':
        out[o.name] = asList(v).map((x) => parseNumber(o.name, String(x)));
        break;
    }
  }
  if (Array.isArray(raw['--'])) out._.push(...raw['--'].map(String));
  return out;
}

/** Levenshtein distance, for suggestions. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** ` (did you mean X?)` for the closest candidate within 2 edits (or a third of the word), else empty. */
export function suggestion(word: string, candidates: string[], prefix = ''): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best !== undefined && bestD > 0 && bestD <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean ${prefix}${best}?)` : '';
}

export function parseNumber(what: string, s: string): number {
  if (!/^-?[0-9]+$/.test(s.trim())) throw new UsageError(`--${what}: expected an integer, got ${JSON.stringify(s)}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${what}: ${s} is out of range`);
  return n;
}

/** Prints one line to stderr (newlines in `msg` become spaces) and exits. */
export function die(binary: string, code: number, msg: string): never {
  // one line, whatever the message holds (OpenSSL's errors end in a newline)
  process.stderr.write(`${binary}: ${msg.replace(/\s*\n\s*/g, ' ').trim()}\n`);
  process.exit(code);
}

/**
 * Runs a program's main function: usage errors exit 124 with a hint, any other
 * exception is one line on stderr and exit 125 (ALBATROSS_DEBUG=1 shows the stack).
 * When the reader of standard output goes away (EPIPE) the program exits at once,
 * quietly, with the exit code set so far (0 if none).
 */
export function runMain(binary: string, main: () => Promise<number | void> | number | void): void {
  const crash = (e: unknown): never => {
    if (e instanceof UsageError) die(binary, EXIT.usage, `${e.message} (see ${binary} --help)`);
    if (process.env.ALBATROSS_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
    die(binary, EXIT.internal, `internal error: ${(e as Error)?.message ?? String(e)}`);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  // a reader that goes away (`vmmc_local info | head`) ends the output quietly, not in an error
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    crash(e);
  });
  Promise.resolve()
    .then(main)
    .then((code) => {
      process.exitCode = typeof code === 'number' ? code : 0;
    }, crash);
}

/** Colour only when writing to a terminal and NO_COLOR is unset. */
export function useColour(stream: NodeJS.WriteStream = process.stdout): boolean {
  return stream.isTTY === true && !process.env.NO_COLOR;
}

/** The text of a file the user named, or one line saying why it cannot be read (exit 123). */
export function readTextOrDie(binary: string, file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const c = (e as NodeJS.ErrnoException).code;
    const why = c === 'ENOENT' ? 'no such file' : c === 'EACCES' ? 'permission denied' : (e as Error).message;
    return die(binary, EXIT.other, `cannot read ${what} ${file}: ${why}`);
  }
}
