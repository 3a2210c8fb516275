/**
 * From a subcommand and its arguments to what is sent, as upstream's albatross-client
 * builds it (SEMANTICS.md §11.2): the target name, the command(s), the bulk data to
 * stream after a command. Pure: the image is read by the caller and passed in.
 */
import * as zlib from 'node:zlib';
import { type OptionSpec, type SubcommandSpec, suggestion } from '../cli/common.js';
import { type Name, type Path, parseName, parsePath, root } from '../core/name.js';
import { type Result, ok, err } from '../core/result.js';
import type { BlockDevice, FailBehaviour, NetDevice, Policy, UnikernelArgs, UnikernelConfig } from '../core/wire/common.js';
import type { Command } from '../core/wire/wire.js';
import type { OwnLeafCommand } from '../core/wire/leaf.js';
import type { SinceCount } from '../core/wire/console.js';
import type { StatsNetwork } from '../core/wire/stats.js';
import { parseMac } from '../core/unikernel.js';
import { checkManifest, inspectImage } from '../core/solo5.js';
import { checkUsable } from '../core/policy.js';

export type Destination = 'local' | 'remote' | 'csr';

/** One command to one daemon; `upload` is a file whose content follows the command as raw chunks. */
export interface Step {
  name: Name;
  command: Command;
  upload?: { file: string; level: number };
}

export type Request =
  | { kind: 'commands'; steps: Step[] }
  | { kind: 'log'; name: Name; since: SinceCount }
  /** vmmd's status query, or (remote) a log subscription: a leaf-only command at the endpoint (WIRE.md §8.3). */
  | { kind: 'observe'; name: Name; command: OwnLeafCommand }
  | { kind: 'inspect-dump'; file?: string }
  | { kind: 'extract-dump'; name: Name; file?: string };

/** `usage`: the command line is wrong (exit 124); `invalid`: the request is refused before sending (exit 123). */
export interface BuildError {
  kind: 'usage' | 'invalid';
  message: string;
}
const usage = (message: string): { ok: false; error: BuildError } => err({ kind: 'usage', message });
const invalid = (message: string): { ok: false; error: BuildError } => err({ kind: 'invalid', message });

/** Options of the command subcommands (parseCli declarations); defaults are applied per subcommand. */
export const COMMAND_OPTIONS: OptionSpec[] = [
  { name: 'name', alias: 'n', type: 'string', arg: 'NAME', help: 'info, status, block, stats, stats-add, stats-remove, log: the name (root if absent); a trailing ":" makes it a path.' },
  { name: 'path', alias: 'p', type: 'string', arg: 'PATH', help: 'policy, remove-policy, inactive-consoles: the path (root if absent).' },
  { name: 'mem', type: 'number', arg: 'MB', help: 'create, restart: memory (32); add-policy: memory allowed (512).' },
  { name: 'cpu', type: 'numbers', arg: 'ID', help: 'create, restart: CPU id to pin to; add-policy: CPU id allowed (0).' },
  { name: 'block', type: 'strings', arg: 'SPEC', help: 'create, restart: block device name[:hostdev][@sector]; add-policy: block storage allowed in MB (as --size).' },
  { name: 'size', type: 'number', arg: 'MB', help: 'add-policy: block storage allowed in MB (none if absent).' },
  { name: 'bridge', type: 'strings', arg: 'NAME', help: 'add-policy: bridge allowed; stats-add: bridge:tap of an interface.' },
  { name: 'network', type: 'strings', arg: 'NAME', help: 'add-policy: bridge allowed (as --bridge).' },
  { name: 'net', type: 'strings', arg: 'SPEC', help: 'create, restart: network device [name:]bridge[@mac].' },
  { name: 'arg', type: 'strings', arg: 'ARG', help: 'create, restart: boot argument.' },
  { name: 'typ', type: 'string', choices: ['solo5', 'bhyve'], arg: 'solo5|bhyve', help: 'create: unikernel type (solo5).' },
  { name: 'force', alias: 'f', type: 'boolean', help: 'create: replace a unikernel of the same name (force-create).' },
  { name: 'startup', type: 'number', arg: 'N', help: 'create, restart: start priority, lower first (50 if absent).' },
  { name: 'add-name', type: 'boolean', default: true, help: 'create, restart: pass --name=<label> to the unikernel (--no-add-name to disable).' },
  { name: 'compression-level', type: 'number', arg: 'N', help: 'create, get, set-block, create-block, dump-block: zlib level 0-9 (0 locally, 9 for requests and remote).' },
  { name: 'restart-on-fail', type: 'boolean', help: 'create, restart: restart the unikernel when it fails.' },
  { name: 'restart', type: 'boolean', help: 'same as --restart-on-fail.' },
  { name: 'exit-code', type: 'numbers', arg: 'N', help: 'create, restart: with --restart-on-fail, restart only on this exit code.' },
  { name: 'cpus', type: 'number', arg: 'N', help: 'create, restart: number of vCPUs, bhyve only (1).' },
  { name: 'linux-boot', type: 'string', arg: 'PART', help: 'create, restart: linux boot partition, bhyve only.' },
  { name: 'replace-arguments', type: 'boolean', help: 'restart: replace the configuration by the given options.' },
  { name: 'data', type: 'string', arg: 'FILE', help: 'create-block: initial content of the block device.' },
  { name: 'since', type: 'string', arg: 'TIME', help: 'console, log: entries at or after an RFC 3339 time (a bare date means its midnight UTC).' },
  { name: 'count', type: 'number', arg: 'N', help: 'console, log: the last N entries (20; ignored with --since).' },
  { name: 'follow', type: 'boolean', default: true, help: 'console, stats, log: keep printing what arrives (--no-follow: print what is there and exit).' },
  { name: 'vmmdev', type: 'string', arg: 'DEV', help: 'stats-add: FreeBSD vmm device (empty on Linux).' },
  { name: 'file', type: 'string', arg: 'FILE', help: 'inspect-dump, extract-dump: state file (a bare name is looked up in --dbdir).' },
];

/** Which subcommand accepts which of COMMAND_OPTIONS, and its positional arguments. */
const CONFIG_OPTS = ['mem', 'cpu', 'block', 'net', 'arg', 'startup', 'add-name', 'restart-on-fail', 'restart', 'exit-code', 'cpus', 'linux-boot'];
export const SUBCOMMANDS: Record<string, { args: string[]; opts: string[]; help: string }> = {
  info: { args: [], opts: ['name'], help: 'information about unikernels' },
  get: { args: ['NAME'], opts: ['compression-level'], help: 'download the image of a unikernel' },
  create: { args: ['NAME', 'IMAGE'], opts: [...CONFIG_OPTS, 'typ', 'force', 'compression-level'], help: 'create a unikernel' },
  destroy: { args: ['NAME'], opts: [], help: 'destroy a unikernel' },
  restart: { args: ['NAME'], opts: [...CONFIG_OPTS, 'replace-arguments'], help: 'restart a unikernel' },
  console: { args: ['NAME'], opts: ['since', 'count', 'follow'], help: 'console output of a unikernel' },
  'inactive-consoles': { args: [], opts: ['path'], help: 'consoles of unikernels that are not running' },
  stats: { args: [], opts: ['name', 'follow'], help: 'statistics of unikernels' },
  'stats-add': { args: ['PID'], opts: ['name', 'vmmdev', 'bridge'], help: 'add a process to statistics gathering' },
  'stats-remove': { args: [], opts: ['name'], help: 'remove a unikernel from statistics gathering' },
  policy: { args: [], opts: ['path'], help: 'active policies' },
  'add-policy': { args: ['PATH', 'UNIKERNELS'], opts: ['mem', 'cpu', 'block', 'size', 'bridge', 'network'], help: 'add (or replace) a policy' },
  'replace-policy': { args: ['PATH', 'UNIKERNELS'], opts: ['mem', 'cpu', 'block', 'size', 'bridge', 'network'], help: 'replace a policy (same as add-policy)' },
  'remove-policy': { args: [], opts: ['path'], help: 'remove a policy' },
  block: { args: [], opts: ['name'], help: 'information about block devices' },
  'create-block': { args: ['NAME', 'SIZE_MB'], opts: ['data', 'compression-level'], help: 'create a block device' },
  'set-block': { args: ['NAME', 'FILE'], opts: ['compression-level'], help: 'overwrite the content of a block device' },
  'dump-block': { args: ['NAME'], opts: ['compression-level'], help: 'download the content of a block device' },
  'destroy-block': { args: ['NAME'], opts: [], help: 'destroy a block device' },
  log: { args: [], opts: ['name', 'since', 'count', 'follow'], help: 'event log (vmmd_log)' },
  status: { args: [], opts: ['name'], help: 'state of unikernels (running: pid, since; restarting: failures, next start)' },
  'inspect-dump': { args: [], opts: ['file'], help: 'print the state file of vmmd' },
  'extract-dump': { args: ['NAME'], opts: ['file'], help: 'write the image of one unikernel from the state file' },
};

/** An example command line of each subcommand (without the binary), for its help page. */
export const SUBCOMMAND_EXAMPLES: Record<string, string[]> = {
  info: ['info', 'info -n dept: --json'],
  get: ['get hello --output hello.hvt'],
  create: ['create hello hello.hvt --net service:br0 --mem 64 --arg=--hello=world', 'create dept:web web.hvt --block storage --restart-on-fail --force'],
  destroy: ['destroy hello'],
  restart: ['restart hello', 'restart hello --replace-arguments --mem 128'],
  console: ['console hello --since 2024-01-31', 'console hello --count 50'],
  'inactive-consoles': ['inactive-consoles -p dept'],
  stats: ['stats -n hello'],
  'stats-add': ['stats-add 4711 -n hello --bridge service:tap0'],
  'stats-remove': ['stats-remove -n hello'],
  policy: ['policy -p dept'],
  'add-policy': ['add-policy dept 3 --mem 256 --cpu 0 --cpu 1 --bridge br0 --size 100'],
  'replace-policy': ['replace-policy dept 4 --mem 512 --cpu 0 --bridge br0'],
  'remove-policy': ['remove-policy -p dept'],
  block: ['block', 'block -n storage'],
  'create-block': ['create-block storage 100', 'create-block storage 100 --data disk.img'],
  'set-block': ['set-block storage disk.img --compression-level 6'],
  'dump-block': ['dump-block storage --output disk.img'],
  'destroy-block': ['destroy-block storage'],
  log: ['log --count 50', 'log -n hello --since 2024-01-31'],
  status: ['status', 'status -n hello --json'],
  'inspect-dump': ['inspect-dump', 'inspect-dump --file state.bak'],
  'extract-dump': ['extract-dump hello --output hello.hvt'],
};

/**
 * The subcommand table of a binary's CliSpec (help pages, completion): `subs` with their
 * positionals for `dest`, their options of COMMAND_OPTIONS, and `extra` options of the
 * binary that belong to some of them (e.g. `--output` to get and dump-block).
 */
export function subcommandSpecs(
  subs: string[], dest: Destination, extra: Record<string, string[]> = {}, example: (e: string) => string = (e) => e,
): Record<string, SubcommandSpec> {
  const out: Record<string, SubcommandSpec> = {};
  for (const sub of subs) {
    const d = SUBCOMMANDS[sub];
    out[sub] = { args: subcommandArgs(sub, dest), help: d.help, options: [...d.opts, ...(extra[sub] ?? [])], examples: (SUBCOMMAND_EXAMPLES[sub] ?? []).map(example) };
  }
  return out;
}

/**
 * The positional arguments of a subcommand for a destination: a request (`csr`) carries
 * no data, so set-block takes no FILE there (the data goes with `vmmc_remote --data FILE`).
 */
export function subcommandArgs(sub: string, dest: Destination): string[] {
  const a = SUBCOMMANDS[sub]?.args ?? [];
  return dest === 'csr' && sub === 'set-block' ? a.filter((x) => x !== 'FILE') : a;
}

/** Subcommands that send a command (not the state-file tools, not log, not status). */
export const commandSubcommands = (): string[] => Object.keys(SUBCOMMANDS).filter((s) => !['inspect-dump', 'extract-dump', 'log', 'status'].includes(s));

/** Subcommands a certificate may carry: the commands, and status and log (leaf-only, WIRE.md §8.3). */
export const leafSubcommands = (): string[] => Object.keys(SUBCOMMANDS).filter((s) => !['inspect-dump', 'extract-dump'].includes(s));

export type Opts = Record<string, unknown>;

const str = (o: Opts, k: string): string | undefined => (o[k] === undefined ? undefined : String(o[k]));
const num = (o: Opts, k: string): number | undefined => (o[k] === undefined ? undefined : (o[k] as number));
const strs = (o: Opts, k: string): string[] => (Array.isArray(o[k]) ? (o[k] as unknown[]).map(String) : []);
const nums = (o: Opts, k: string): number[] => (Array.isArray(o[k]) ? (o[k] as number[]) : []);
const flag = (o: Opts, k: string): boolean => o[k] === true;

function given(o: Opts, k: string): boolean {
  const v = o[k];
  if (k === 'add-name' || k === 'follow') return v === false;
  if (v === undefined || v === false) return false;
  return !(Array.isArray(v) && v.length === 0);
}

/** The rule of labels, for messages (src/core/name.ts). */
const LABEL_RULE = 'a label is 1 to 63 characters of a-z, A-Z, 0-9, "-" and ".", not starting with "-"; labels are separated by ":"';

/** What is wrong with the first bad label of a name or path text, e.g. `label "Foo_bar" contains "_"`. */
export function labelProblem(s: string): string {
  const pieces = s.split(':');
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i];
    if (p === '') {
      if (i === 0 || i === pieces.length - 1) continue;
      return 'an empty label ("::")';
    }
    const bad = [...p].find((c) => !/[a-zA-Z0-9.-]/.test(c));
    if (bad !== undefined) return `label ${JSON.stringify(p)} contains ${JSON.stringify(bad)}`;
    if (p.startsWith('-')) return `label ${JSON.stringify(p)} starts with "-"`;
    if (p.length > 63) return `label ${JSON.stringify(p.slice(0, 20))}... is longer than 63 characters`;
  }
  return 'not a name';
}

function nameArg(what: string, s: string): Result<Name, BuildError> {
  const n = parseName(s);
  if (n.ok) return n;
  return usage(s === '' ? `${what}: empty name` : `${what} ${JSON.stringify(s)}: invalid name: ${labelProblem(s)} (${LABEL_RULE})`);
}
function pathArg(what: string, s: string | undefined): Result<Path, BuildError> {
  if (s === undefined) return ok([]);
  const p = parsePath(s);
  return p.ok ? p : usage(`${what} ${JSON.stringify(s)}: invalid path: ${labelProblem(s)} (${LABEL_RULE})`);
}
function optName(o: Opts): Result<Name, BuildError> {
  const s = str(o, 'name');
  return s === undefined ? ok(root) : nameArg('--name', s);
}
function intArg(what: string, s: string, min = 0): Result<number, BuildError> {
  if (!/^[0-9]+$/.test(s)) return usage(`${what}: expected a number, got ${JSON.stringify(s)}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min) return usage(`${what}: ${s} is out of range`);
  return ok(n);
}
function nonNegative(what: string, n: number | undefined): Result<void, BuildError> {
  return n !== undefined && n < 0 ? usage(`--${what} must not be negative`) : ok(undefined);
}

/** `name[:hostdev][@sector]` */
export function parseBlockSpec(s: string): Result<BlockDevice, BuildError> {
  let rest = s;
  let sector: number | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const n = intArg(`--block ${s}: sector size`, rest.slice(at + 1));
    if (!n.ok) return n;
    if (n.value < 512 || (n.value & (n.value - 1)) !== 0) return usage(`--block ${s}: sector size must be a power of two >= 512`);
    sector = n.value;
    rest = rest.slice(0, at);
  }
  const colon = rest.indexOf(':');
  const blockName = colon >= 0 ? rest.slice(0, colon) : rest;
  const dev = colon >= 0 ? rest.slice(colon + 1) : undefined;
  if (blockName === '' || dev === '') return usage(`--block ${JSON.stringify(s)}: expected name[:hostdev][@sector]`);
  const b: BlockDevice = { blockName };
  if (dev !== undefined) b.blockDeviceName = dev;
  if (sector !== undefined) b.blockSectorSize = sector;
  return ok(b);
}

/** `[name:]bridge[@mac]` */
export function parseNetSpec(s: string): Result<NetDevice, BuildError> {
  let rest = s;
  let mac: Uint8Array | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const m = parseMac(rest.slice(at + 1));
    if (!m.ok) return usage(`--net ${s}: invalid MAC address ${JSON.stringify(rest.slice(at + 1))} (expected colon notation, e.g. 02:00:00:00:00:01)`);
    mac = m.value;
    rest = rest.slice(0, at);
  }
  const colon = rest.indexOf(':');
  const netif = colon >= 0 ? rest.slice(0, colon) : rest;
  const bridge = colon >= 0 ? rest.slice(colon + 1) : undefined;
  if (netif === '' || bridge === '') return usage(`--net ${JSON.stringify(s)}: expected [name:]bridge[@mac]`);
  const d: NetDevice = { netif };
  if (bridge !== undefined) d.bridge = bridge;
  if (mac !== undefined) d.mac = mac;
  return ok(d);
}

function unique(xs: string[]): boolean {
  return new Set(xs).size === xs.length;
}

/** The configuration options shared by create and restart --replace-arguments. */
function configArgs(o: Opts): Result<UnikernelArgs, BuildError> {
  for (const k of ['mem', 'startup', 'cpus']) {
    const r = nonNegative(k, num(o, k));
    if (!r.ok) return r;
  }
  const cpuids = [...new Set(nums(o, 'cpu').length === 0 ? [0] : nums(o, 'cpu'))].sort((a, b) => a - b);
  if (cpuids.some((c) => c < 0)) return usage('--cpu must not be negative');
  const blocks: BlockDevice[] = [];
  for (const s of strs(o, 'block')) {
    const b = parseBlockSpec(s);
    if (!b.ok) return b;
    blocks.push(b.value);
  }
  const bridges: NetDevice[] = [];
  for (const s of strs(o, 'net')) {
    const n = parseNetSpec(s);
    if (!n.ok) return n;
    bridges.push(n.value);
  }
  if (!unique(bridges.map((b) => b.netif))) return usage('Bridge names must be a set');
  if (!unique(blocks.map((b) => b.blockName))) return usage('Block devices must be a set');
  const restart = flag(o, 'restart-on-fail') || flag(o, 'restart');
  const failBehaviour: FailBehaviour = restart
    ? { kind: 'restart', value: [...new Set(nums(o, 'exit-code'))].sort((a, b) => a - b) }
    : { kind: 'quit', value: null };
  const a: UnikernelArgs = {
    failBehaviour, addName: o['add-name'] !== false, cpuids, memory: num(o, 'mem') ?? 32, blocks, bridges, cpus: num(o, 'cpus') ?? 1,
  };
  const startup = num(o, 'startup');
  if (startup !== undefined) a.startup = startup;
  const argv = strs(o, 'arg');
  if (argv.length > 0) a.arguments = argv;
  const lb = str(o, 'linux-boot');
  if (lb !== undefined) a.linuxBootPartition = lb;
  return ok(a);
}

/** A bare date gets midnight UTC; otherwise RFC 3339. */
export function parseSince(s: string): Result<number, BuildError> {
  const full = /^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00-00:00` : s;
  if (!/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(full)) {
    return usage(`--since ${JSON.stringify(s)}: expected an RFC 3339 time such as 2024-01-31T12:00:00Z, or a date`);
  }
  const t = Date.parse(full.replace(/-00:00$/, 'Z'));
  return Number.isNaN(t) ? usage(`--since ${JSON.stringify(s)}: not a valid time`) : ok(t);
}

function sinceCount(o: Opts): Result<SinceCount, BuildError> {
  const since = str(o, 'since');
  if (since !== undefined) {
    const t = parseSince(since);
    return t.ok ? ok({ kind: 'since', value: t.value }) : t;
  }
  const count = num(o, 'count') ?? 20;
  return ok({ kind: 'count', value: count });
}

export function compressionLevel(o: Opts, dest: Destination): Result<number, BuildError> {
  const l = num(o, 'compression-level') ?? (dest === 'local' ? 0 : 9);
  return l < 0 || l > 9 ? usage(`--compression-level must be between 0 and 9, got ${l}`) : ok(l);
}

/** zlib (RFC 1950) as upstream's Vmm_compress, at the given level (1-9). */
export const compress = (data: Uint8Array, level: number): Uint8Array => new Uint8Array(zlib.deflateSync(data, { level }));

const one = (name: Name, command: Command, upload?: Step['upload']): Result<Request, BuildError> =>
  ok({ kind: 'commands', steps: [upload === undefined ? { name, command } : { name, command, upload }] });

export interface BuildInput {
  sub: string;
  args: string[];
  opts: Opts;
  dest: Destination;
  /** create: the content of IMAGE, read by the caller. */
  image?: Uint8Array;
}

/** The policy of add-policy / replace-policy. */
function policyArgs(unikernels: string, o: Opts): Result<Policy, BuildError> {
  const n = intArg('UNIKERNELS', unikernels);
  if (!n.ok) return n;
  const blockStrs = strs(o, 'block');
  if (blockStrs.length > 1 || (blockStrs.length === 1 && o.size !== undefined)) return usage('--block/--size given more than once');
  let block = num(o, 'size');
  if (blockStrs.length === 1) {
    const b = intArg('--block', blockStrs[0]);
    if (!b.ok) return b;
    block = b.value;
  }
  const m = nonNegative('mem', num(o, 'mem'));
  if (!m.ok) return m;
  const cpus = nums(o, 'cpu');
  const p: Policy = {
    unikernels: BigInt(n.value),
    cpuids: [...new Set(cpus.length === 0 ? [0] : cpus)].sort((a, b) => a - b),
    memory: num(o, 'mem') ?? 512,
    bridges: [...new Set([...strs(o, 'bridge'), ...strs(o, 'network')])],
  };
  if (block !== undefined) p.block = block;
  return ok(p);
}

/**
 * Builds the request of a subcommand. Options that do not apply to the subcommand,
 * missing or extra positional arguments and malformed values are usage errors.
 */
export function buildRequest(i: BuildInput): Result<Request, BuildError> {
  const { sub, args, opts: o, dest } = i;
  const spec = SUBCOMMANDS[sub];
  if (sub === 'update') return invalid('update (the newest build from a builder-web instance) is not implemented: download the image and use create --force');
  if (spec === undefined) {
    const hint = suggestion(sub, Object.keys(SUBCOMMANDS));
    return usage(`unknown subcommand ${JSON.stringify(sub)}${hint || ` (one of ${Object.keys(SUBCOMMANDS).join(', ')})`}`);
  }
  for (const k of COMMAND_OPTIONS.map((x) => x.name)) {
    if (given(o, k) && !spec.opts.includes(k)) return usage(`--${k === 'add-name' || k === 'follow' ? `no-${k}` : k} does not apply to ${sub}`);
  }
  const want = subcommandArgs(sub, dest);
  if (args.length < want.length) return usage(`${sub}: missing argument ${want[args.length]}`);
  if (args.length > want.length) {
    const why = dest === 'csr' && sub === 'set-block' ? ' (a request carries no data: give FILE to vmmc_remote --data)' : '';
    return usage(`${sub}: unexpected argument ${JSON.stringify(args[want.length])}${why}`);
  }
  switch (sub) {
    case 'info': {
      const n = optName(o);
      return n.ok ? one(n.value, { kind: 'unikernel', value: { kind: 'info', value: null } }) : n;
    }
    case 'get': {
      const n = nameArg('NAME', args[0]);
      if (!n.ok) return n;
      const l = compressionLevel(o, dest);
      return l.ok ? one(n.value, { kind: 'unikernel', value: { kind: 'get', value: l.value } }) : l;
    }
    case 'create': {
      const n = nameArg('NAME', args[0]);
      if (!n.ok) return n;
      const a = configArgs(o);
      if (!a.ok) return a;
      const typ = str(o, 'typ') ?? 'solo5';
      if (typ !== 'solo5' && typ !== 'bhyve') return usage(`--typ: expected solo5 or bhyve, got ${JSON.stringify(typ)}`);
      const l = compressionLevel(o, dest);
      if (!l.ok) return l;
      const image = i.image ?? new Uint8Array(0);
      if (typ === 'solo5') {
        const info = inspectImage(image);
        if (!info.ok) return invalid(`${args[1]}: ${info.error}`);
        const m = checkManifest(info.value.manifest, a.value);
        if (!m.ok) return invalid(m.error);
      }
      const config: UnikernelConfig = {
        typ, compressed: l.value > 0, image: l.value > 0 ? compress(image, l.value) : image, ...a.value,
      };
      const kind = flag(o, 'force') ? 'force_create' : 'create';
      return one(n.value, { kind: 'unikernel', value: { kind, value: config } });
    }
    case 'destroy': {
      const n = nameArg('NAME', args[0]);
      return n.ok ? one(n.value, { kind: 'unikernel', value: { kind: 'destroy', value: null } }) : n;
    }
    case 'restart': {
      const n = nameArg('NAME', args[0]);
      if (!n.ok) return n;
      if (!flag(o, 'replace-arguments')) {
        if (CONFIG_OPTS.some((k) => given(o, k))) return usage('restart: configuration options need --replace-arguments');
        return one(n.value, { kind: 'unikernel', value: { kind: 'restart', value: { kind: 'no_arguments', value: null } } });
      }
      const a = configArgs(o);
      if (!a.ok) return a;
      return one(n.value, { kind: 'unikernel', value: { kind: 'restart', value: { kind: 'arguments', value: a.value } } });
    }
    case 'console': {
      const n = nameArg('NAME', args[0]);
      if (!n.ok) return n;
      const s = sinceCount(o);
      return s.ok ? one(n.value, { kind: 'console', value: { kind: 'subscribe', value: s.value } }) : s;
    }
    case 'inactive-consoles': {
      const p = pathArg('--path', str(o, 'path'));
      return p.ok ? one({ path: p.value }, { kind: 'console', value: { kind: 'list_inactive', value: null } }) : p;
    }
    case 'stats':
    case 'stats-remove': {
      const n = optName(o);
      if (!n.ok) return n;
      return one(n.value, { kind: 'stats', value: sub === 'stats' ? { kind: 'subscribe', value: null } : { kind: 'remove', value: null } });
    }
    case 'stats-add': {
      const n = optName(o);
      if (!n.ok) return n;
      const pid = intArg('PID', args[0]);
      if (!pid.ok) return pid;
      const network: StatsNetwork[] = [];
      for (const s of strs(o, 'bridge')) {
        const c = s.indexOf(':');
        if (c <= 0 || c === s.length - 1) return usage(`--bridge ${JSON.stringify(s)}: expected bridge:tap`);
        network.push({ bridge: s.slice(0, c), tap: s.slice(c + 1) });
      }
      return one(n.value, { kind: 'stats', value: { kind: 'add', value: { vmmdev: str(o, 'vmmdev') ?? '', pid: pid.value, network } } });
    }
    case 'policy':
    case 'remove-policy': {
      const p = pathArg('--path', str(o, 'path'));
      if (!p.ok) return p;
      return one({ path: p.value }, { kind: 'policy', value: sub === 'policy' ? { kind: 'info', value: null } : { kind: 'remove', value: null } });
    }
    case 'add-policy':
    case 'replace-policy': {
      const path = pathArg('PATH', args[0]);
      if (!path.ok) return path;
      const p = policyArgs(args[1], o);
      if (!p.ok) return p;
      const u = checkUsable(p.value);
      if (!u.ok) return invalid(u.error);
      return one({ path: path.value }, { kind: 'policy', value: { kind: 'add', value: p.value } });
    }
    case 'block': {
      const n = optName(o);
      return n.ok ? one(n.value, { kind: 'block', value: { kind: 'info', value: null } }) : n;
    }
    case 'create-block': {
      const n = nameArg('NAME', args[0]);
      if (!n.ok) return n;
      const size = intArg('SIZE_MB', args[1]);
      if (!size.ok) return size;
      const l = compressionLevel(o, dest);
      if (!l.ok) return l;
      const steps: Step[] = [{ name: n.value, command: { kind: 'block', value: { kind: 'add', value: size.value } } }];
      const data = str(o, 'data');
      if (data !== undefined) {
        steps.push({ name: n.value, command: { kind: 'block', value: { kind: 'set', value: l.value > 0 } }, upload: { file: data, level: l.value } });
      }
      return ok({ kind: 'commands', steps });
    }
    case 'set-block': {
      const n = nameArg('NAME', args[0]);
      if (!n.ok) return n;
      const l = compressionLevel(o, dest);
      if (!l.ok) return l;
      const set: Command = { kind: 'block', value: { kind: 'set', value: l.value > 0 } };
      return dest === 'csr' ? one(n.value, set) : one(n.value, set, { file: args[1], level: l.value });
    }
    case 'dump-block': {
      const n = nameArg('NAME', args[0]);
      if (!n.ok) return n;
      const l = compressionLevel(o, dest);
      return l.ok ? one(n.value, { kind: 'block', value: { kind: 'dump', value: l.value } }) : l;
    }
    case 'destroy-block': {
      const n = nameArg('NAME', args[0]);
      return n.ok ? one(n.value, { kind: 'block', value: { kind: 'remove', value: null } }) : n;
    }
    case 'log': {
      const n = optName(o);
      if (!n.ok) return n;
      const s = sinceCount(o);
      if (!s.ok) return s;
      if (dest === 'local') return ok({ kind: 'log', name: n.value, since: s.value });
      return ok({ kind: 'observe', name: n.value, command: { kind: 'log', value: { kind: 'subscribe', value: s.value } } });
    }
    case 'status': {
      const n = optName(o);
      return n.ok ? ok({ kind: 'observe', name: n.value, command: { kind: 'status', value: { kind: 'status', value: null } } }) : n;
    }
    case 'inspect-dump': {
      const f = str(o, 'file');
      return ok(f === undefined ? { kind: 'inspect-dump' } : { kind: 'inspect-dump', file: f });
    }
    case 'extract-dump': {
      const n = nameArg('NAME', args[0]);
      if (!n.ok) return n;
      const f = str(o, 'file');
      return ok(f === undefined ? { kind: 'extract-dump', name: n.value } : { kind: 'extract-dump', name: n.value, file: f });
    }
    default:
      return usage(`unknown subcommand ${JSON.stringify(sub)}`);
  }
}

/**
 * The subject CN of a request or one-shot certificate for a command at `name`
 * (CERTS.md §7.3): policies use the path, other commands the label (root: `.`).
 */
export function certificateCn(name: Name, cmd: Command): Result<string> {
  if (cmd.kind === 'policy') return ok(name.path.join(':'));
  // the endpoint reads it as a path (CERTS.md §3.1 step 5); upstream refuses a path here
  if (cmd.kind === 'console' && cmd.value.kind === 'list_inactive') return ok(name.path.length === 0 ? '.' : name.path.join(':'));
  if (name.path.length > 0) return err('non-empty path');
  return ok(name.label ?? '.');
}

/**
 * The subject CN of a status or log certificate (WIRE.md §8.3): the name below the CA's path,
 * `.` for the path itself, `hello` for a unikernel, `dev:` for a path, `dev:hello`.
 */
export function observeCn(name: Name): string {
  if (name.path.length === 0) return name.label ?? '.';
  return `${name.path.join(':')}:${name.label ?? ''}`;
}

/**
 * parseCli for a client binary: minimist cannot tell `--no-add-name` (`--no-follow`) from
 * "not given" for a boolean, so these flags are read from argv here.
 */
export function fixAddName(o: Opts, argv: readonly string[]): Opts {
  for (const k of ['add-name', 'follow']) {
    let v = true;
    for (const a of argv) {
      if (a === '--') break;
      if (a === `--no-${k}`) v = false;
      if (a === `--${k}`) v = true;
    }
    o[k] = v;
  }
  return o;
}
