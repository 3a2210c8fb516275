/**
 * Unikernel execution rules (SEMANTICS.md §5.5, §5.7, §6.2-§6.6), all pure: whether to restart
 * after an exit, restart arguments, MAC addresses, the tender's exact argv, the file paths of
 * images, FIFOs and block devices, tap name choice and the parse of `ip` output, and the
 * validation of a configuration before admission.
 */
import { createHash } from 'node:crypto';
import { type Result, ok, err } from './result.js';
import { type Name, nameToString } from './name.js';
import { cpuidSet } from './policy.js';
import { hostBlockName } from './resources.js';
import type { FailBehaviour, UnikernelArgs, UnikernelConfig } from './wire/common.js';

// ------------------------------------------------------------------ exit and restart

/** How a tender process ended (from waitpid). A waitpid error counts as exit code 23 upstream. */
/**
 * How a tender ended. A signal is numbered as the wire carries it (signals.ts: OCaml's
 * negative number, or the host's own where OCaml has none), converted from its name by the
 * daemon, since host numbers differ between Linux and FreeBSD.
 */
export type ProcessExit =
  | { readonly kind: 'exit'; readonly code: number }
  | { readonly kind: 'signal'; readonly signal: number }
  | { readonly kind: 'stopped'; readonly signal: number };

/** Exit code vmmd assumes when waitpid itself fails. */
export const WAITPID_ERROR_EXIT_CODE = 23;

/**
 * Exit codes that never lead to a restart: 1 (solo5 error: bad image or manifest) and 60-64
 * (63 = functoria help/version, 64 = argument parse error).
 */
export const NEVER_RESTART_EXIT_CODES: readonly number[] = [1, 60, 61, 62, 63, 64];

/**
 * Upstream's should_restart (SEMANTICS.md §5.7): never after a signal (destroy's SIGTERM
 * included) or for exit codes 1 and 60-64; with `restart` and an empty exit-code set for any
 * other code; with a set only for codes in it; never with `quit`.
 */
export function shouldRestart(fb: FailBehaviour, exit: ProcessExit): boolean {
  if (exit.kind !== 'exit') return false;
  if (NEVER_RESTART_EXIT_CODES.includes(exit.code)) return false;
  if (fb.kind === 'quit') return false;
  return fb.value.length === 0 || fb.value.includes(exit.code);
}

/** Is vmmd's exit handler armed for this configuration (restart-enabled or add-name)? */
export const exitHandlerArmed = (c: UnikernelConfig): boolean => c.failBehaviour.kind === 'restart' || c.addName;

/** What to do once a unikernel with an armed exit handler has exited (SEMANTICS.md §5.7). */
export type ExitDecision =
  /** Start again immediately with `config`; `rewriteState` says whether the state file is rewritten. */
  | { readonly action: 'restart'; readonly config: UnikernelConfig; readonly rewriteState: boolean; readonly reason: 'add-name' | 'fail-behaviour' }
  /** Leave it stopped; the state file is rewritten so the unikernel disappears from it. */
  | { readonly action: 'stop'; readonly rewriteState: true };

/**
 * The restart handler's decision: exit code 64 with add-name set means the unikernel did not
 * understand `--name`, so it is started again at once without it (state rewritten); otherwise
 * restart-on-failure restarts with the same configuration (state not rewritten - it still
 * holds the unikernel); otherwise it stays stopped.
 */
export function decideAfterExit(c: UnikernelConfig, exit: ProcessExit): ExitDecision {
  if (c.addName && exit.kind === 'exit' && exit.code === 64) {
    return { action: 'restart', config: { ...c, addName: false }, rewriteState: true, reason: 'add-name' };
  }
  if (c.failBehaviour.kind === 'restart' && shouldRestart(c.failBehaviour, exit)) {
    return { action: 'restart', config: c, rewriteState: false, reason: 'fail-behaviour' };
  }
  return { action: 'stop', rewriteState: true };
}

export type RestartArgsMode = 'upstream-2.7.2' | 'all';

/**
 * The configuration a `restart` with arguments runs (SEMANTICS.md §5.5). typ, compression and
 * image are always kept. `upstream-2.7.2` also keeps memory, cpus and the boot partition (as
 * the 2.7.2 release does, although they travel on the wire); `all` (our default) applies them.
 */
export function applyRestartArgs(c: UnikernelConfig, a: UnikernelArgs, mode: RestartArgsMode = 'all'): UnikernelConfig {
  const out: UnikernelConfig = {
    typ: c.typ,
    compressed: c.compressed,
    image: c.image,
    addName: a.addName,
    failBehaviour: a.failBehaviour,
    cpuids: [...a.cpuids],
    memory: mode === 'all' ? a.memory : c.memory,
    blocks: a.blocks.map((b) => ({ ...b })),
    bridges: a.bridges.map((b) => ({ ...b })),
    cpus: mode === 'all' ? a.cpus : c.cpus,
  };
  if (a.startup !== undefined) out.startup = a.startup;
  if (a.arguments !== undefined) out.arguments = [...a.arguments];
  const boot = mode === 'all' ? a.linuxBootPartition : c.linuxBootPartition;
  if (boot !== undefined) out.linuxBootPartition = boot;
  return out;
}

// ------------------------------------------------------------------ validation

const isPowerOfTwo = (n: number): boolean => Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 2 ** 30;

function duplicates(xs: readonly string[]): boolean {
  return new Set(xs).size !== xs.length;
}

/**
 * Checks a configuration before admission. The set rules are the CLI's (with its messages);
 * vmmd repeats them because a remote client need not be ours.
 */
export function validateConfig(c: UnikernelConfig): Result<void> {
  if (c.cpuids.length === 0) return err('CPUids may not be empty');
  for (const id of c.cpuids) if (!Number.isSafeInteger(id) || id < 0) return err(`invalid CPUid ${id}`);
  if (duplicates(c.bridges.map((b) => b.netif))) return err('Bridge names must be a set');
  if (duplicates(c.blocks.map((b) => b.blockName))) return err('Block devices must be a set');
  if (!Number.isSafeInteger(c.memory) || c.memory <= 0) return err(`memory must be a positive number of MB, got ${c.memory}`);
  for (const b of c.blocks) {
    if (b.blockSectorSize !== undefined && (!isPowerOfTwo(b.blockSectorSize) || b.blockSectorSize < 512)) {
      return err(`block device ${b.blockName}: sector size ${b.blockSectorSize} must be a power of two of at least 512`);
    }
  }
  for (const d of c.bridges) if (d.mac !== undefined && d.mac.length !== 6) return err(`network device ${d.netif}: MAC address must have 6 octets`);
  return ok(undefined);
}

// ------------------------------------------------------------------ MAC addresses

/** Locally derived MAC: 00:80:41 + the first three octets of MD5(netif || text name) (SEMANTICS.md §6.6). */
export function deriveMac(netif: string, name: Name): Uint8Array {
  const d = createHash('md5').update(Buffer.from(netif + nameToString(name), 'utf8')).digest();
  return Uint8Array.of(0x00, 0x80, 0x41, d[0], d[1], d[2]);
}

/** Lower-case colon notation, `00:80:41:0c:85:fb`. */
export function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Parses `xx:xx:xx:xx:xx:xx` (or with `-`), hex digits in either case. */
export function parseMac(s: string): Result<Uint8Array> {
  const m = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/.exec(s);
  if (m === null) return err(`invalid MAC address ${JSON.stringify(s)} (expected six hex octets separated by ':')`);
  return ok(Uint8Array.from([m[1], m[3], m[4], m[5], m[6], m[7]], (h) => parseInt(h, 16)));
}

/** The MAC a network device uses: its configured one, else the derived one. */
export const macOf = (netif: string, mac: Uint8Array | undefined, name: Name): Uint8Array => mac ?? deriveMac(netif, name);

// ------------------------------------------------------------------ files

function fileNameOf(name: Name): string {
  const s = nameToString(name);
  // Names from parseName cannot contain these; anything else reaching here is a programmer error.
  if (s.includes('/') || s.includes('\0')) throw new RangeError(`name ${JSON.stringify(s)} cannot be used as a file name`);
  return s;
}

function join(dir: string, file: string): string {
  return dir.endsWith('/') ? dir + file : `${dir}/${file}`;
}

/** `<dbdir>/block`. */
export const blockDir = (dbdir: string): string => join(dbdir, 'block');
/** `<dbdir>/block/<text name of the block device>`, e.g. `/var/lib/albatross/block/org:data`. */
export const blockFilePath = (dbdir: string, block: Name): string => join(blockDir(dbdir), fileNameOf(block));
/** `<tmpdir>/fifo/<text name>`. */
export const fifoPath = (tmpdir: string, name: Name): string => join(join(tmpdir, 'fifo'), fileNameOf(name));
/** `<tmpdir>/<text name>.img`. */
export const imagePath = (tmpdir: string, name: Name): string => join(tmpdir, `${fileNameOf(name)}.img`);

// ------------------------------------------------------------------ tender command line

export type Platform = 'linux' | 'freebsd';

export interface TenderArgvOptions {
  readonly platform: Platform;
  /** The tender to run (a path found by tender selection, or a name on $PATH). */
  readonly tender: string;
  readonly tmpdir: string;
  readonly dbdir: string;
  readonly name: Name;
  readonly config: UnikernelConfig;
  /** One tap device per network device, in configuration order. */
  readonly taps: readonly string[];
  /** `--name=` carries only the label (default, upstream's default) or, when false (`--no-drop-path`), the full text name. */
  readonly dropPath?: boolean;
}

/** The CPU pinning prefix: Linux `taskset -c 0,2`, FreeBSD `cpuset -l 0,2`. */
export function pinCommand(platform: Platform, cpuids: readonly number[]): string[] {
  const ids = cpuidSet(cpuids).join(',');
  return platform === 'linux' ? ['taskset', '-c', ids] : ['cpuset', '-l', ids];
}

/**
 * The exact argv of a solo5 tender (SEMANTICS.md §6.3):
 * `<pin> <tender> --mem=M --net:I=TAP... --net-mac:I=MAC... --block:D=FILE... --block-sector-size:D=N... -- <image> [--name=X] <argv...>`.
 */
export function tenderArgv(o: TenderArgvOptions): Result<string[]> {
  const c = o.config;
  if (o.name.label === undefined) return err(`unikernel name ${nameToString(o.name)} has no label`);
  if (o.taps.length !== c.bridges.length) {
    return err(`${c.bridges.length} network device(s) but ${o.taps.length} tap device(s)`);
  }
  const argv = [...pinCommand(o.platform, c.cpuids), o.tender, `--mem=${c.memory}`];
  c.bridges.forEach((d, i) => argv.push(`--net:${d.netif}=${o.taps[i]}`));
  for (const d of c.bridges) argv.push(`--net-mac:${d.netif}=${formatMac(macOf(d.netif, d.mac, o.name))}`);
  for (const d of c.blocks) {
    const host = hostBlockName(o.name, d);
    const text = nameToString(host);
    if (text.includes('/') || text.includes('\0')) return err(`block device ${text} cannot be used as a file name`);
    argv.push(`--block:${d.blockName}=${blockFilePath(o.dbdir, host)}`);
  }
  for (const d of c.blocks) {
    if (d.blockSectorSize !== undefined) argv.push(`--block-sector-size:${d.blockName}=${d.blockSectorSize}`);
  }
  argv.push('--', imagePath(o.tmpdir, o.name));
  if (c.addName) argv.push(`--name=${o.dropPath === false ? nameToString(o.name) : o.name.label}`);
  if (c.arguments !== undefined) argv.push(...c.arguments);
  return ok(argv);
}

// ------------------------------------------------------------------ taps and bridges

export const TAP_PREFIX = 'vmmtap';

/**
 * The tap device for a new network device on Linux (SEMANTICS.md §6.5): `vmmtap<N>` with the
 * smallest N not used by a `vmmtap<N>:` line of `ip tuntap show` output. `alsoTaken` lets the
 * caller reserve names it is about to create (several devices of one unikernel).
 */
export function chooseTapName(ipTuntapShow: string, alsoTaken: readonly string[] = []): string {
  const used = new Set<number>();
  const add = (s: string): void => {
    const m = /^vmmtap(\d+)(:|$)/.exec(s.trim());
    if (m !== null && m[1].length <= 9) used.add(Number(m[1]));
  };
  for (const line of ipTuntapShow.split('\n')) add(line);
  for (const t of alsoTaken) add(t);
  let n = 0;
  while (used.has(n)) n++;
  return `${TAP_PREFIX}${n}`;
}

/**
 * Host bridges for the root policy from `ip -o link show type bridge` (SEMANTICS.md §3.3): the
 * second `:`-separated field of each line, trimmed. Lines without one are skipped.
 */
export function parseBridgeList(ipLinkShow: string): string[] {
  const out: string[] = [];
  for (const line of ipLinkShow.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 2) continue;
    const b = fields[1].trim();
    if (b !== '') out.push(b);
  }
  return out;
}
