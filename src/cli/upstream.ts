/**
 * Upstream Albatross's binary names as aliases of ours: `albatrossd`, `albatross-console`,
 * `albatross-stats`, `albatross-influx`, `albatross-tls-endpoint` and `albatross-client`
 * run vmmd, vmmd_console, ... with upstream v2.7.2's command line translated, so that
 * scripts and units written for upstream work unchanged. Only the translation lives here
 * (bin/<alias> -> lib/alias.cjs -> dist/upstream.js), then the binary's own bundle runs.
 *
 * Upstream's programs are cmdliner programs; every one takes the logging options
 * `-v`, `-q`, `--verbosity=LEVEL` and `--color=WHEN`, the daemons also `--syslog`, most
 * `--influx HOST[:PORT]`. Options that our binary does not know and that only choose where
 * logs or self-metrics go are dropped; those that it knows under another spelling are
 * respelled; everything else is passed on as given, and our binary refuses what it does
 * not understand.
 *
 * This module imports nothing but stub.ts (the version line): it runs before every
 * connection's handler under inetd (`albatross-tls-endpoint --inetd`).
 */
import { versionLine } from './stub.js';

export type Translation =
  | { kind: 'run'; binary: string; args: string[] }
  /** --version or the alias's own help: print and exit 0 */
  | { kind: 'print'; text: string }
  /** a command line error: one line, exit 124 */
  | { kind: 'error'; message: string };

/** Upstream's name -> ours (for albatross-client: the local client; see translateClient). */
export const ALIASES: Readonly<Record<string, string>> = {
  albatrossd: 'vmmd',
  'albatross-console': 'vmmd_console',
  'albatross-stats': 'vmmd_stats',
  'albatross-influx': 'vmmd_influx',
  'albatross-tls-endpoint': 'vmmd_tls',
  'albatross-client': 'vmmc_local',
};

/**
 * The options of upstream's programs (and ours) that take a value, as `--long` or `-s`:
 * needed to tell `--tmpdir X` (X is the option's value) from a positional argument.
 */
const VALUED = new Set([
  // all of upstream's programs
  '--tmpdir', '--dbdir', '--verbosity', '--color', '--influx',
  // daemons
  '--allow-zvol-for', '--max-subscribers', '--interval', '--ip', '--port', '-n', '--name',
  // albatross-client
  '--socket', '-d', '--destination', '--server-ca', '--ca', '--ca-key', '--key-type', '--compression-level',
  '--http-host', '--bridge', '--vmmdev', '--block', '--size', '--mem', '--network', '--cpus', '--linux-boot',
  '--arg', '--net', '--exit-code', '--since', '--count', '-p', '--path', '--startup', '--typ', '--cpu',
  '--data', '--file', '--days', '--server', '--server-days',
  // ours, so that they may be given through the aliases too
  '--logfile', '--crl', '--max-connections', '--max-size', '--restart-backoff', '--interval-ms',
  '--influx-url', '--influx-token', '--prometheus', '-o', '--output', '--timeout', '--crl-days', '--linger',
  '--handshake-timeout', '--command-timeout', '--idle-timeout', '--total-timeout',
]);

/** One command-line element: an option with its value (if it takes one), or a positional argument. */
interface Item {
  /** `--tmpdir`, `-v`; undefined for a positional argument */
  option?: string;
  value?: string;
  /** the elements as given (one, or two for `--opt VALUE`) */
  raw: string[];
}

function scan(argv: readonly string[]): Item[] {
  const items: Item[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      for (const rest of argv.slice(i)) items.push({ raw: [rest] });
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      items.push({ raw: [a] });
      continue;
    }
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    if (eq > 0) {
      items.push({ option: a.slice(0, eq), value: a.slice(eq + 1), raw: [a] });
    } else if (VALUED.has(a) && i + 1 < argv.length) {
      items.push({ option: a, value: argv[i + 1], raw: [a, argv[i + 1]] });
      i++;
    } else {
      items.push({ option: a, raw: [a] });
    }
  }
  return items;
}

const positionals = (items: Item[]): string[] => items.filter((x) => x.option === undefined && x.raw[0] !== '--').map((x) => x.raw[0]);
const has = (items: Item[], ...names: string[]): boolean => items.some((x) => x.option !== undefined && names.includes(x.option));

/** Rewrites the items: `rule` returns the elements to put instead of an option, or undefined to keep it. */
function rewrite(items: Item[], rule: (x: Item & { option: string }) => string[] | undefined): string[] {
  const out: string[] = [];
  for (const x of items) {
    const r = x.option === undefined ? undefined : rule(x as Item & { option: string });
    out.push(...(r ?? x.raw));
  }
  return out;
}

/** Upstream's --verbosity levels (Logs_cli) as our daemons' -v / -q. */
function verbosityAsFlags(level: string | undefined): string[] | undefined {
  switch (level) {
    case 'debug':
    case 'info':
      return ['-v'];
    case 'warning':
      return [];
    case 'error':
    case 'quiet':
      return ['-q'];
    default:
      return undefined; // unknown level: passed on, our binary says what is wrong
  }
}

/** Drops the named options (with their values), keeps everything else. */
const drop = (names: string[]) => (x: { option: string }): string[] | undefined => (names.includes(x.option) ? [] : undefined);

/** Is `--version` among the options (before `--`)? */
function wantsVersion(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--version') return true;
  }
  return false;
}

export function translate(alias: string, argv: readonly string[]): Translation {
  if (!(alias in ALIASES)) return { kind: 'error', message: `unknown alias ${alias}` };
  if (wantsVersion(argv)) return { kind: 'print', text: `${versionLine(alias)}\n` };
  const items = scan(argv);
  switch (alias) {
    case 'albatrossd':
      // vmmd takes --influx and --syslog itself (no effect), and -v, -q
      return { kind: 'run', binary: 'vmmd', args: rewrite(items, (x) => (x.option === '--color' ? [] : x.option === '--verbosity' ? verbosityAsFlags(x.value) : undefined)) };
    case 'albatross-console':
      return { kind: 'run', binary: 'vmmd_console', args: rewrite(items, drop(['--influx', '--syslog', '--color'])) };
    case 'albatross-stats':
      return { kind: 'run', binary: 'vmmd_stats', args: rewrite(items, drop(['--influx', '--syslog', '--color', '--gather-bhyve-stats'])) };
    case 'albatross-influx':
      return { kind: 'run', binary: 'vmmd_influx', args: rewrite(items, drop(['--syslog', '--color'])) };
    case 'albatross-tls-endpoint':
      return translateTlsEndpoint(items);
    default:
      return translateClient(items);
  }
}

/** `--quiet` for upstream's -q and --verbosity=quiet; other levels are dropped (our endpoints log connections only). */
const quietOnly = (x: { option: string; value?: string }): string[] | undefined => {
  if (x.option === '-q') return ['--quiet'];
  if (x.option === '--verbosity') return x.value === 'quiet' ? ['--quiet'] : [];
  if (x.option === '-v' || x.option === '--color') return [];
  return undefined;
};

/**
 * albatross-tls-endpoint: the daemon (vmmd_tls), or with --inetd one connection on standard
 * input (vmmd_tls_inetd), which without --syslog or --quiet logs to syslog (upstream's
 * exits 3 there, before the handshake, which leaves client and operator nothing).
 */
function translateTlsEndpoint(items: Item[]): Translation {
  if (!has(items, '--inetd')) return { kind: 'run', binary: 'vmmd_tls', args: rewrite(items, quietOnly) };
  // the listening options do not apply to one connection (upstream ignores them there too)
  const args = rewrite(items, (x) => (['--inetd', '--ip', '--port', '--systemd-socket-activation'].includes(x.option) ? [] : quietOnly(x)));
  return { kind: 'run', binary: 'vmmd_tls_inetd', args };
}

/** Options every albatross-client subcommand of upstream takes and none of ours needs. */
const CLIENT_LOGGING = ['-v', '-q', '--verbosity'];

/**
 * albatross-client: `certificate` -> vmmc_remote, `generate`/`sign` -> vmmp_ca, a command with
 * `--destination` -> vmmc_bistro, with `--csr` -> vmmp_request, otherwise vmmc_local. Upstream
 * takes --ca, --ca-key, --server-ca, --key-type and --tmpdir with every command and uses each
 * only where it applies: they are dropped where ours has no use for them.
 */
function translateClient(items: Item[]): Translation {
  const [sub] = positionals(items);
  if (sub === undefined || sub === 'help' || (has(items, '--help', '-h') && positionals(items).length === 0)) return { kind: 'print', text: CLIENT_HELP };
  const withoutSub = (): Item[] => {
    const i = items.findIndex((x) => x.option === undefined && x.raw[0] === sub);
    return [...items.slice(0, i), ...items.slice(i + 1)];
  };
  if (sub === 'generate' || sub === 'sign' || sub === 'revoke') {
    return { kind: 'run', binary: 'vmmp_ca', args: rewrite(items, drop([...CLIENT_LOGGING, '--color'])) };
  }
  if (sub === 'certificate') {
    return { kind: 'run', binary: 'vmmc_remote', args: rewrite(withoutSub(), drop([...CLIENT_LOGGING, '--color'])) };
  }
  const csr = has(items, '--csr');
  const remote = has(items, '-d', '--destination');
  const socket = has(items, '--socket');
  if ([csr, remote, socket].filter(Boolean).length > 1) return { kind: 'error', message: 'The options --csr, --destination, and --socket are mutually exclusive' };
  if (csr) {
    // upstream's set-block takes FILE even for a request, which carries no data; ours takes NAME only
    const pos = items.filter((x) => x.option === undefined);
    const kept = sub === 'set-block' && pos.length >= 3 ? items.filter((x) => x !== pos[2]) : items;
    return { kind: 'run', binary: 'vmmp_request', args: rewrite(kept, drop(['--csr', '--ca', '--ca-key', '--server-ca', '--tmpdir', ...CLIENT_LOGGING, '--color'])) };
  }
  if (remote) {
    return { kind: 'run', binary: 'vmmc_bistro', args: rewrite(items, drop(['--tmpdir', ...CLIENT_LOGGING, '--color'])) };
  }
  return { kind: 'run', binary: 'vmmc_local', args: rewrite(items, drop(['--ca', '--ca-key', '--server-ca', '--key-type', ...CLIENT_LOGGING])) };
}

const CLIENT_HELP = [
  'NAME',
  '  albatross-client - upstream Albatross\'s client, run by the albatross-ts binaries',
  '',
  'SYNOPSIS',
  '  albatross-client SUBCOMMAND ARGS... [--socket PATH] [--tmpdir DIR]        runs vmmc_local',
  '  albatross-client SUBCOMMAND ARGS... --destination HOST[:PORT] [--ca FILE] [--ca-key FILE]',
  '                   [--server-ca FILE] [--key-type TYPE]                    runs vmmc_bistro',
  '  albatross-client SUBCOMMAND ARGS... --csr [--key-type TYPE]               runs vmmp_request',
  '  albatross-client certificate CERT KEY --destination HOST[:PORT] [--server-ca FILE]',
  '                                                                           runs vmmc_remote',
  '  albatross-client generate NAME DB [--days N] [--server NAME] [--server-days N]',
  '  albatross-client sign CACERT DB CAKEY CSR [--days N]                      run vmmp_ca',
  '',
  'DESCRIPTION',
  '  Upstream\'s command line, translated: the options that do not apply to the binary that',
  '  runs (--ca, --ca-key, --server-ca, --key-type locally; --tmpdir remotely; -v, -q,',
  '  --verbosity) are dropped, the rest is passed on. SUBCOMMAND --help shows the options.',
  '  Subcommands: info get create destroy restart console inactive-consoles stats stats-add',
  '  stats-remove policy add-policy replace-policy remove-policy block create-block set-block',
  '  dump-block destroy-block inspect-dump extract-dump certificate generate sign.',
  '',
].join('\n');
