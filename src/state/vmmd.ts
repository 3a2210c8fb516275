/**
 * The supervisor's state and its transitions, without IO: `handle(state, event)` returns the
 * next state and the effects the shell must carry out (replies, process spawns and kills,
 * state file writes, notifications). Every decision - admission, messages, what a process exit
 * leads to, restart back-off, what is persisted - is made here; the shell (src/vmmd) only
 * performs the effects and feeds their outcomes back as events.
 *
 * The shell feeds one event at a time and finishes a `create` effect (the create pipeline)
 * before it feeds the next event: that is upstream's global lock. Waiting for a process to
 * exit does not hold the lock: the waiting command is parked in `waiters` and continued by
 * the `exit` event.
 */
import { deflateSync, inflateSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { type Result, ok, err } from '../core/result.js';
import { type Name, type Path, nameKey, nameOfKey, nameToString, relativeName } from '../core/name.js';
import {
  type Resources, type UnikernelEntry, addBlock, addUnikernel, checkBlockIdle, checkUnikernel, checkUnikernelReplacing,
  emptyResources, findBlock, findUnikernel, hostBlockName, insertPolicy, registerBlock, removeBlock,
  removePolicy, removeUnikernel, setBlockActive, setPolicyUnchecked,
} from '../core/resources.js';
import {
  type Platform, type ProcessExit, type RestartArgsMode, applyRestartArgs, decideAfterExit, exitHandlerArmed, macOf,
  validateConfig,
} from '../core/unikernel.js';
import { checkManifest, inspectImage, type ImageInfo } from '../core/solo5.js';
import type { Policy, UnikernelConfig } from '../core/wire/common.js';
import type { StateDump } from '../core/wire/state.js';
import { type UnikernelInfo, type NamedInfo, rememberedUnikernelInfo } from '../core/wire/unikernel.js';
import {
  type Header, type Wire, type Command, failure, reply, replyString,
} from '../core/wire/wire.js';
import type { LogAction, LogEvent } from '../core/wire/log.js';
import type { UnikernelStatus } from '../core/wire/status.js';

export type ConnId = number;

/** A running unikernel: its configuration and what the shell reported when it started. */
export interface Running extends UnikernelEntry {
  readonly config: UnikernelConfig;
  readonly pid: number;
  /** One tap per network device, in configuration order. */
  readonly taps: readonly string[];
  /** Start time, ms since the epoch. */
  readonly started: number;
  /** SHA-256 of the uncompressed image. */
  readonly digest: Uint8Array;
  /** Consecutive quick failures so far (restart back-off). */
  readonly failures: number;
  /**
   * What `info` reports, built when the unikernel starts, never modified, and with its
   * encoding remembered (rememberedUnikernelInfo): an info reply encodes only the names.
   * Nothing in it changes while the unikernel runs: its block devices are active, so they
   * cannot be removed, replaced or resized until it stops.
   */
  readonly info: UnikernelInfo;
}

/** A unikernel waiting out its restart back-off. */
export interface PendingRestart {
  readonly name: Name;
  readonly config: UnikernelConfig;
  readonly failures: number;
  /** When the next start is due, ms since the epoch. */
  readonly due: number;
}

/** A command waiting for a unikernel's process to exit (destroy, force-create, restart). */
export type Waiter =
  | { readonly kind: 'destroy'; readonly conn: ConnId; readonly header: Header }
  | { readonly kind: 'create'; readonly conn: ConnId; readonly header: Header; readonly config: UnikernelConfig };

export interface Backoff {
  /** Delay before the second quick restart in a row; 0 restarts immediately every time (upstream). */
  readonly baseMs: number;
  readonly maxMs: number;
  /** A unikernel that ran at least this long before exiting starts a fresh series. */
  readonly stableMs: number;
}

export interface VmmdOptions {
  readonly tmpdir: string;
  readonly dbdir: string;
  readonly platform: Platform;
  /** `--name=` carries the label only (default) or, with --no-drop-path, the full name. */
  readonly dropPath: boolean;
  readonly restartArgs: RestartArgsMode;
  readonly backoff: Backoff;
}

export interface VmmdState {
  readonly options: VmmdOptions;
  readonly resources: Resources<Running>;
  /** Keyed by the text name. */
  readonly restarting: ReadonlyMap<string, PendingRestart>;
  /** Keyed by the text name; the last one decides what happens after the exit. */
  readonly waiters: ReadonlyMap<string, readonly Waiter[]>;
  /** Pids whose SIGTERM was sent by us (destroy, shutdown). */
  readonly shuttingDown: boolean;
}

/** Why a unikernel is being created: answers go to a connection, or nowhere (restarts, startup). */
export type CreateOrigin =
  | { readonly kind: 'command'; readonly conn: ConnId; readonly header: Header }
  | { readonly kind: 'restart'; readonly reason: 'add-name' | 'fail-behaviour' }
  | { readonly kind: 'startup' };

/** What the shell reports after running the create pipeline. */
export type StartResult =
  | { readonly ok: true; readonly pid: number; readonly taps: readonly string[]; readonly argv: readonly string[]; readonly started: number; readonly digest: Uint8Array }
  | { readonly ok: false; readonly error: string };

export type Event =
  | { readonly kind: 'command'; readonly conn: ConnId; readonly wire: Wire }
  | { readonly kind: 'started'; readonly origin: CreateOrigin; readonly name: Name; readonly config: UnikernelConfig; readonly failures: number; readonly result: StartResult }
  | { readonly kind: 'exit'; readonly name: Name; readonly pid: number; readonly exit: ProcessExit; readonly now: number }
  | { readonly kind: 'restart_due'; readonly name: Name }
  | { readonly kind: 'block_added'; readonly conn: ConnId; readonly header: Header; readonly size: number; readonly error?: string }
  | { readonly kind: 'block_removed'; readonly conn: ConnId; readonly header: Header; readonly error?: string }
  | { readonly kind: 'block_transferred'; readonly conn: ConnId; readonly header: Header; readonly op: 'set' | 'dump'; readonly error?: string }
  /** Start a unikernel of the state file at daemon start (SEMANTICS.md §5.8 step 10). */
  | { readonly kind: 'launch'; readonly name: Name; readonly config: UnikernelConfig }
  | { readonly kind: 'shutdown' };

export type Effect =
  /** Send a message; `then` says whether to close the connection or read the next command. */
  | { readonly kind: 'reply'; readonly conn: ConnId; readonly wire: Wire; readonly then: 'close' | 'continue' }
  /** Run the create pipeline (prepare, console add, exec) and feed back `started`. */
  | { readonly kind: 'create'; readonly origin: CreateOrigin; readonly name: Name; readonly config: UnikernelConfig; readonly failures: number }
  | { readonly kind: 'kill'; readonly name: Name; readonly pid: number }
  /** Release a stopped unikernel's system resources: image file, FIFO, taps. */
  | { readonly kind: 'cleanup'; readonly name: Name; readonly taps: readonly string[] }
  | { readonly kind: 'save_state'; readonly dump: StateDump }
  | { readonly kind: 'stats_add'; readonly name: Name; readonly pid: number; readonly taps: ReadonlyArray<{ bridge: string; tap: string }> }
  | { readonly kind: 'stats_remove'; readonly name: Name }
  /** Take over connection `conn` as the stats daemon's (WIRE.md §2.6), then `stats_add` each running unikernel. */
  | { readonly kind: 'stats_attach'; readonly conn: ConnId; readonly header: Header }
  | { readonly kind: 'log'; readonly event: LogEvent }
  | { readonly kind: 'warn'; readonly message: string }
  | { readonly kind: 'timer'; readonly name: Name; readonly delayMs: number }
  /** Create `<dbdir>/block/<name>` of `size` MB; feed back `block_added`. */
  | { readonly kind: 'block_create'; readonly conn: ConnId; readonly header: Header; readonly name: Name; readonly size: number }
  | { readonly kind: 'block_delete'; readonly conn: ConnId; readonly header: Header; readonly name: Name }
  /** Stream raw chunks from `conn` into the block file (WIRE.md §2.4); feed back `block_transferred`. */
  | { readonly kind: 'block_upload'; readonly conn: ConnId; readonly header: Header; readonly name: Name; readonly sizeBytes: number; readonly compressed: boolean }
  /** Stream the block file to `conn` (WIRE.md §2.5); feed back `block_transferred`. */
  | { readonly kind: 'block_dump'; readonly conn: ConnId; readonly header: Header; readonly name: Name; readonly level: number }
  /** Legacy one-message block writes: write `data` (already decompressed) then extend to `sizeBytes`. */
  | { readonly kind: 'block_write'; readonly conn: ConnId; readonly header: Header; readonly name: Name; readonly data: Uint8Array; readonly sizeBytes: number; readonly create: boolean }
  | { readonly kind: 'block_read'; readonly conn: ConnId; readonly header: Header; readonly name: Name; readonly level: number }
  | { readonly kind: 'exit_daemon' };

export interface Step {
  readonly state: VmmdState;
  readonly effects: Effect[];
}

export const MB = 1024 * 1024;

// ------------------------------------------------------------------ construction

export function initialState(options: VmmdOptions, resources: Resources<Running> = emptyResources<Running>()): VmmdState {
  return { options, resources, restarting: new Map(), waiters: new Map(), shuttingDown: false };
}

/** A block device file found by the startup scan (SEMANTICS.md §4). */
export function withScannedBlock(s: VmmdState, name: Name, sizeMB: number): VmmdState {
  return { ...s, resources: registerBlock(s.resources, name, sizeMB) };
}

/**
 * Startup (SEMANTICS.md §5.8 steps 7 and 10): the discovered root policy replaces a stored
 * one (with a warning if they differ), the stored policies are installed in pre-order with
 * the usual checks, and the stored unikernels are returned in start order: by `startup`
 * ascending, absent = 50, ties in pre-order. A stored policy that fails a check (a state file
 * of an older version or of upstream, written under laxer rules) is installed anyway with a
 * warning naming the check, so that a start never fails on it (upstream refuses to start).
 */
export function restore(s: VmmdState, dump: StateDump, rootPolicy: Policy): Result<{ state: VmmdState; warnings: string[]; creates: Array<{ name: Name; config: UnikernelConfig }> }> {
  const warnings: string[] = [];
  let res = setPolicyUnchecked(s.resources, [], rootPolicy);
  for (const p of dump.policies) {
    if (p.name.path.length === 0) {
      const stored = p.policy;
      if (JSON.stringify(stored, big) !== JSON.stringify(rootPolicy, big)) warnings.push('root policy of the state file differs from the host resources; using the host resources');
      continue;
    }
    const r = insertPolicy(res, p.name.path, p.policy);
    if (!r.ok) {
      warnings.push(`policy for ${nameToString({ path: p.name.path })} from the state file does not fit (${r.error}); installed anyway`);
      res = setPolicyUnchecked(res, p.name.path, p.policy);
    } else if (r.value.kind === 'added') res = r.value.resources;
  }
  const creates = dump.unikernels
    .map((u, i) => ({ name: u.name, config: u.config, i }))
    .sort((a, b) => (a.config.startup ?? 50) - (b.config.startup ?? 50) || a.i - b.i)
    .map(({ name, config }) => ({ name, config }));
  return ok({ state: { ...s, resources: res }, warnings, creates });
}

const big = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);

// ------------------------------------------------------------------ persistence

/**
 * What the state file holds: every running unikernel, every unikernel waiting out a restart
 * back-off (it comes back after a daemon restart too), and all policies, in trie pre-order.
 */
export function stateDump(s: VmmdState): StateDump {
  let all = s.resources.unikernels as unknown as import('../core/trie.js').Trie<{ config: UnikernelConfig }>;
  for (const r of s.restarting.values()) if (!all.has(nameKey(r.name))) all = all.set(nameKey(r.name), { config: r.config });
  return {
    unikernels: all.all().map(([k, v]) => ({ name: nameOfKey(k), config: v.config })),
    policies: s.resources.policies.all().map(([k, p]) => ({ name: { path: k }, policy: p })),
  };
}

/**
 * The state file write after a change. The dump is made when it is first read, so a shell
 * that coalesces writes (vmmd's start-up relaunches all unikernels and writes once) does not
 * walk every unikernel once per change.
 */
function save(s: VmmdState): Effect {
  let dump: StateDump | undefined;
  return {
    kind: 'save_state',
    get dump(): StateDump {
      dump ??= stateDump(s);
      return dump;
    },
  };
}

// ------------------------------------------------------------------ helpers

const text = nameToString;
const close = (conn: ConnId, w: Wire): Effect => ({ kind: 'reply', conn, wire: w, then: 'close' });
const fail = (conn: ConnId, h: Header, msg: string): Effect => close(conn, failure(h, msg));
const done = (conn: ConnId, h: Header, msg: string): Effect => close(conn, replyString(h, msg));
/** An audit event of vmmd_log (SEMANTICS.md §10): what changed, about which name. */
const audit = (name: Name, action: LogAction): Effect => ({ kind: 'log', event: { kind: 'action', value: { name, action } } });

/** Decompresses a configuration's image if needed (upstream: `failed to uncompress: ...`). */
export function imageBytes(c: UnikernelConfig): Result<Uint8Array> {
  if (!c.compressed) return ok(c.image);
  try {
    return ok(new Uint8Array(inflateSync(c.image)));
  } catch (e) {
    return err(`failed to uncompress: ${(e as Error).message}`);
  }
}

/** What create needs from the image: its bytes, digest and notes, with the manifest checked. */
export interface PreparedImage {
  readonly image: Uint8Array;
  readonly digest: Uint8Array;
  readonly info: ImageInfo;
}

/** Create's pure preparation (SEMANTICS.md §5.2 step 3, solo5): decompress, digest, notes, manifest. */
export function prepareImage(c: UnikernelConfig): Result<PreparedImage> {
  if (c.typ !== 'solo5') return err('bhyve unikernels are not supported on this host');
  const img = imageBytes(c);
  if (!img.ok) return img;
  const info = inspectImage(img.value);
  if (!info.ok) return info;
  const m = checkManifest(info.value.manifest, c);
  if (!m.ok) return m;
  return ok({ image: img.value, digest: new Uint8Array(createHash('sha256').update(img.value).digest()), info: info.value });
}

/** The one failure answered for a create whose console add or exec failed (upstream's text). */
export function consoleFailed(cleanupError?: string): string {
  return `could not create unikernel: console failed${cleanupError === undefined ? '' : `, and also ${cleanupError} while cleaning resources`}`;
}

/** Delay before restart number `failures` (1 = the first quick failure restarts at once). */
export function backoffDelay(b: Backoff, failures: number): number {
  if (b.baseMs <= 0 || failures <= 1) return 0;
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.min(30, failures - 2));
}

/** The info of a unikernel started with `r` (configuration, digest, start time), as `info` reports it. */
export function unikernelInfo(s: VmmdState, name: Name, r: Pick<Running, 'config' | 'digest' | 'started'>): UnikernelInfo {
  const c = r.config;
  // the configuration's arrays are shared, not copied: neither is ever modified
  const i: UnikernelInfo = {
    typ: c.typ,
    failBehaviour: c.failBehaviour,
    cpuids: c.cpuids,
    memory: c.memory,
    digest: r.digest,
    blocks: c.blocks.map((b) => ({
      unikernelDevice: b.blockName,
      hostDevice: b.blockDeviceName ?? b.blockName,
      sectorSize: b.blockSectorSize ?? 512,
      blockSize: findBlock(s.resources, hostBlockName(name, b))?.size ?? 0,
    })),
    bridges: c.bridges.map((d) => ({ unikernelDevice: d.netif, hostDevice: d.bridge ?? d.netif, mac: macOf(d.netif, d.mac, name) })),
    started: r.started,
    cpus: c.cpus,
  };
  if (c.startup !== undefined) i.startup = c.startup;
  if (c.arguments !== undefined) i.arguments = c.arguments;
  if (c.linuxBootPartition !== undefined) i.linuxBootPartition = c.linuxBootPartition;
  return i;
}

/**
 * Info for a name (that unikernel, under the header name) or a path (everything whose path is
 * at or below it, relative names). The unikernel at the path's own trie node (`:dept` for the
 * path `dept:`) lives one level up and is left out (upstream lists it, named `:`).
 */
export function infoList(s: VmmdState, n: Name): NamedInfo[] {
  if (n.label !== undefined) {
    const r = findUnikernel(s.resources, n);
    return r === undefined ? [] : [{ name: n, info: r.info }];
  }
  // names relative to the path: the labels below it, the last one as the label (relativeName)
  return s.resources.unikernels.listingBelow(n.path, true).map(([below, r]) => {
    return { name: nameOfKey(below), info: r.info };
  });
}

/**
 * The status query (WIRE.md §8.2): every unikernel at `n` (a name) or below it (a path), running
 * or waiting out its restart back-off, in name order, with names relative as in infoList.
 */
export function statusList(s: VmmdState, n: Name): UnikernelStatus[] {
  const out: Array<{ key: string; st: UnikernelStatus }> = [];
  const rel = (full: Name): Name => (n.label !== undefined ? n : nameOfKey(nameKey(full).slice(n.path.length)));
  const below = (full: Name): boolean => {
    const k = nameKey(full);
    if (n.label !== undefined) return text(full) === text(n);
    return k.length > n.path.length && n.path.every((l, i) => k[i] === l);
  };
  for (const { name, info } of infoList(s, n)) {
    const full: Name = n.label !== undefined ? n : nameOfKey([...n.path, ...nameKey(name)]);
    const r = findUnikernel(s.resources, full);
    if (r !== undefined) out.push({ key: text(full), st: { name, state: { kind: 'running', value: { pid: r.pid, started: info.started, failures: r.failures } } } });
  }
  for (const p of s.restarting.values()) {
    if (below(p.name)) out.push({ key: text(p.name), st: { name: rel(p.name), state: { kind: 'restarting', value: { failures: p.failures, due: p.due } } } });
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((x) => x.st);
}

/** The older info replies carry one CPU id: the lowest one the unikernel is pinned to. */
function legacyInfo(list: NamedInfo[]): NamedInfo[] {
  return list.map((e) => ({ name: e.name, info: { ...e.info, cpuids: [Math.min(...e.info.cpuids)] } }));
}

/** Image answer of `get <level>` (SEMANTICS.md §5.6). */
export function getImage(c: UnikernelConfig, level: number): Result<{ compressed: boolean; image: Uint8Array }> {
  if (c.compressed && level > 0) return ok({ compressed: true, image: c.image });
  if (level === 0) {
    const b = imageBytes(c);
    return b.ok ? ok({ compressed: false, image: b.value }) : b;
  }
  if (level < 0 || level > 9) return err(`invalid compression level ${level} (0 to 9)`);
  return ok({ compressed: true, image: new Uint8Array(deflateSync(c.image, { level })) });
}

// ------------------------------------------------------------------ transitions

export function handle(s: VmmdState, e: Event): Step {
  switch (e.kind) {
    case 'command':
      return onCommand(s, e.conn, e.wire);
    case 'started':
      return onStarted(s, e);
    case 'exit':
      return onExit(s, e);
    case 'restart_due':
      return onRestartDue(s, e.name);
    case 'block_added': {
      const n = e.header.name;
      if (e.error !== undefined) return { state: s, effects: [fail(e.conn, e.header, e.error)] };
      const r = addBlock(s.resources, n, e.size);
      if (!r.ok) return { state: s, effects: [fail(e.conn, e.header, r.error)] };
      return { state: { ...s, resources: r.value }, effects: [audit(n, { kind: 'block_add', value: e.size }), done(e.conn, e.header, 'added block device')] };
    }
    case 'block_removed': {
      if (e.error !== undefined) return { state: s, effects: [fail(e.conn, e.header, e.error)] };
      const r = removeBlock(s.resources, e.header.name);
      if (!r.ok) return { state: s, effects: [fail(e.conn, e.header, r.error)] };
      return { state: { ...s, resources: r.value }, effects: [audit(e.header.name, { kind: 'block_remove', value: null }), done(e.conn, e.header, 'removed block')] };
    }
    case 'block_transferred': {
      // the device was marked in use for the transfer
      const r = setBlockActive(s.resources, e.header.name, false);
      const state = r.ok ? { ...s, resources: r.value } : s;
      const effects: Effect[] = [];
      if (e.op === 'set' && e.error === undefined) effects.push(...blockReplaced(state, e.header.name));
      if (e.op === 'set') effects.push(e.error === undefined ? done(e.conn, e.header, 'set block device') : fail(e.conn, e.header, e.error));
      return { state, effects };
    }
    case 'launch': {
      // the state file may come from an older version or upstream, whose admission consulted
      // only the policy of the unikernel's own path: that rule decides, an ancestor is warned of
      const v = validateConfig(e.config);
      const a = v.ok ? checkUnikernel(s.resources, e.name, e.config, { ownPolicyOnly: true }) : v;
      if (!a.ok) return { state: s, effects: [{ kind: 'warn', message: `could not start ${text(e.name)} (startup): ${a.error}` }] };
      const strict = checkUnikernel(s.resources, e.name, e.config);
      const effects: Effect[] = strict.ok ? [] : [{ kind: 'warn', message: `${text(e.name)} from the state file exceeds a policy above its own (${strict.error}); started anyway` }];
      effects.push({ kind: 'create', origin: { kind: 'startup' }, name: e.name, config: e.config, failures: 0 });
      return { state: s, effects };
    }
    case 'shutdown': {
      const effects: Effect[] = [];
      for (const [k, r] of s.resources.unikernels.all()) effects.push({ kind: 'kill', name: nameOfKey(k), pid: r.pid });
      const state = { ...s, shuttingDown: true, restarting: new Map() };
      if (s.resources.unikernels.isEmpty) effects.push({ kind: 'exit_daemon' });
      return { state, effects };
    }
    default: {
      const never: never = e;
      return never;
    }
  }
}

function onCommand(s: VmmdState, conn: ConnId, w: Wire): Step {
  const h = w.header;
  const nothing = (effects: Effect[]): Step => ({ state: s, effects });
  if (w.payload.kind !== 'command') return nothing([fail(conn, h, 'unknown command')]);
  if (s.shuttingDown) return nothing([fail(conn, h, 'vmmd is shutting down')]);
  const cmd: Command = w.payload.value;
  switch (cmd.kind) {
    case 'unikernel':
      return onUnikernel(s, conn, h, cmd.value);
    case 'policy':
      return onPolicy(s, conn, h, cmd.value);
    case 'block':
      return onBlock(s, conn, h, cmd.value);
    case 'stats':
      if (cmd.value.kind === 'initial') return nothing([{ kind: 'stats_attach', conn, header: h }]);
      return nothing([fail(conn, h, 'unknown command')]);
    case 'console':
      return nothing([fail(conn, h, 'unknown command')]);
    default: {
      const never: never = cmd;
      return never;
    }
  }
}

type UnikernelCommand = Extract<Command, { kind: 'unikernel' }>['value'];

function onUnikernel(s: VmmdState, conn: ConnId, h: Header, cmd: UnikernelCommand): Step {
  const n = h.name;
  const key = text(n);
  const nothing = (effects: Effect[]): Step => ({ state: s, effects });
  switch (cmd.kind) {
    case 'info':
      return nothing([close(conn, reply(h, { kind: 'unikernel_info', value: infoList(s, n) }))]);
    case 'info_v5':
      return nothing([close(conn, reply(h, { kind: 'unikernel_info_v5', value: legacyInfo(infoList(s, n)) }))]);
    case 'info_v4':
      return nothing([close(conn, reply(h, { kind: 'unikernel_info_v4', value: legacyInfo(infoList(s, n)) }))]);
    case 'get': {
      const r = n.label === undefined ? undefined : findUnikernel(s.resources, n);
      if (r === undefined) return nothing([fail(conn, h, 'get: no unikernel found')]);
      const img = getImage(r.config, cmd.value);
      if (!img.ok) return nothing([fail(conn, h, img.error)]);
      return nothing([close(conn, reply(h, { kind: 'unikernel_image', value: img.value }))]);
    }
    case 'create':
    case 'create_v3':
    case 'create_v4': {
      if (n.label === undefined) return nothing([fail(conn, h, `unikernel name ${key} has no label`)]);
      if (findUnikernel(s.resources, n) !== undefined) return nothing([fail(conn, h, 'Unikernel with same name is already running')]);
      if (s.restarting.has(key)) return nothing([fail(conn, h, 'Unikernel with same name is restarting (destroy or force-create it)')]);
      const v = validateConfig(cmd.value);
      if (!v.ok) return nothing([fail(conn, h, v.error)]);
      const a = checkUnikernel(s.resources, n, cmd.value);
      if (!a.ok) return nothing([fail(conn, h, a.error)]);
      return nothing([{ kind: 'create', origin: { kind: 'command', conn, header: h }, name: n, config: cmd.value, failures: 0 }]);
    }
    case 'force_create':
    case 'force_create_v3':
    case 'force_create_v4': {
      if (n.label === undefined) return nothing([fail(conn, h, `unikernel name ${key} has no label`)]);
      const v = validateConfig(cmd.value);
      if (!v.ok) return nothing([fail(conn, h, v.error)]);
      const a = checkUnikernelReplacing(s.resources, n, cmd.value);
      if (!a.ok) return nothing([fail(conn, h, a.error)]);
      const r = findUnikernel(s.resources, n);
      if (r === undefined) {
        const restarting = new Map(s.restarting);
        restarting.delete(key);
        return { state: { ...s, restarting }, effects: [{ kind: 'create', origin: { kind: 'command', conn, header: h }, name: n, config: cmd.value, failures: 0 }] };
      }
      return park(s, n, r.pid, { kind: 'create', conn, header: h, config: cmd.value });
    }
    case 'destroy': {
      const r = n.label === undefined ? undefined : findUnikernel(s.resources, n);
      if (r !== undefined) return park(s, n, r.pid, { kind: 'destroy', conn, header: h });
      if (s.restarting.has(key)) {
        const restarting = new Map(s.restarting);
        restarting.delete(key);
        const state = { ...s, restarting };
        return { state, effects: [save(state), audit(n, { kind: 'destroy', value: null }), done(conn, h, 'destroyed: removed from restarting')] };
      }
      return nothing([fail(conn, h, 'destroy: not found')]);
    }
    case 'restart': {
      const r = n.label === undefined ? undefined : findUnikernel(s.resources, n);
      if (r === undefined) {
        if (s.restarting.has(key)) {
          const restarting = new Map(s.restarting);
          restarting.delete(key);
          return { state: { ...s, restarting }, effects: [audit(n, { kind: 'destroy', value: null }), done(conn, h, 'destroyed: removed from restarting')] };
        }
        return nothing([fail(conn, h, 'destroy: not found')]);
      }
      const args = cmd.value;
      let config = r.config;
      if (args.kind !== 'no_arguments') {
        config = applyRestartArgs(r.config, args.value, s.options.restartArgs);
        const v = validateConfig(config);
        if (!v.ok) return nothing([fail(conn, h, v.error)]);
      }
      const a = checkUnikernelReplacing(s.resources, n, config);
      if (!a.ok) return nothing([fail(conn, h, a.error)]);
      if (args.kind !== 'no_arguments' && config.typ === 'solo5') {
        const p = prepareImage(config);
        if (!p.ok) return nothing([fail(conn, h, p.error)]);
      }
      return park(s, n, r.pid, { kind: 'create', conn, header: h, config });
    }
    default: {
      const never: never = cmd;
      return never;
    }
  }
}

/** Parks a command until the process exits, and sends SIGTERM. */
function park(s: VmmdState, n: Name, pid: number, w: Waiter): Step {
  const waiters = new Map(s.waiters);
  const key = text(n);
  const before = waiters.get(key) ?? [];
  waiters.set(key, [...before, w]);
  // one SIGTERM is enough; a second command for the same process only joins the wait
  return { state: { ...s, waiters }, effects: before.length === 0 ? [{ kind: 'kill', name: n, pid }] : [] };
}

type PolicyCommand = Extract<Command, { kind: 'policy' }>['value'];

function onPolicy(s: VmmdState, conn: ConnId, h: Header, cmd: PolicyCommand): Step {
  const path: Path = h.name.path;
  const nothing = (effects: Effect[]): Step => ({ state: s, effects });
  const warn: Effect[] = h.name.label === undefined ? [] : [{ kind: 'warn', message: `policy command for ${text(h.name)}: the label is ignored` }];
  switch (cmd.kind) {
    case 'info': {
      const list = s.resources.policies.listing(path).map(([k, p]) => ({ name: relativeName({ path: k }, path), policy: p }));
      return nothing([close(conn, reply(h, { kind: 'policies', value: list }))]);
    }
    case 'add': {
      const r = insertPolicy(s.resources, path, cmd.value);
      if (!r.ok) return nothing([...warn, fail(conn, h, r.error)]);
      if (r.value.kind === 'unchanged') return nothing([...warn, { kind: 'reply', conn, wire: replyString(h, 'no modification of policy'), then: 'continue' }]);
      const state = { ...s, resources: r.value.resources };
      return { state, effects: [...warn, save(state), audit({ path }, { kind: 'policy_add', value: null }), { kind: 'reply', conn, wire: replyString(h, 'added policy'), then: 'continue' }] };
    }
    case 'remove': {
      const r = removePolicy(s.resources, path);
      if (!r.ok) return nothing([...warn, fail(conn, h, r.error)]);
      const state = { ...s, resources: r.value };
      return { state, effects: [...warn, save(state), audit({ path }, { kind: 'policy_remove', value: null }), done(conn, h, 'removed policy')] };
    }
    default: {
      const never: never = cmd;
      return never;
    }
  }
}

type BlockCommand = Extract<Command, { kind: 'block' }>['value'];

function onBlock(s: VmmdState, conn: ConnId, h: Header, cmd: BlockCommand): Step {
  const n = h.name;
  const nothing = (effects: Effect[]): Step => ({ state: s, effects });
  if (cmd.kind !== 'info' && n.label === undefined) return nothing([fail(conn, h, `block device name ${text(n)} has no label`)]);
  /** Marks the device in use while its content moves, so no unikernel starts on it meanwhile. */
  const busy = (effect: Effect): Step => {
    const r = setBlockActive(s.resources, n, true);
    return r.ok ? { state: { ...s, resources: r.value }, effects: [effect] } : nothing([fail(conn, h, r.error)]);
  };
  switch (cmd.kind) {
    case 'info': {
      if (n.label !== undefined) {
        const b = findBlock(s.resources, n);
        return nothing([close(conn, reply(h, { kind: 'block_devices', value: b === undefined ? [] : [{ name: n, size: b.size, active: b.active }] }))]);
      }
      // strictly below the trie node: the device at it (`:dept` for `dept:`) is one level up
      const list = s.resources.blockDevices.listing(n.path, true).map(([k, b]) => ({ name: relativeName(nameOfKey(k), n.path), size: b.size, active: b.active }));
      return nothing([close(conn, reply(h, { kind: 'block_devices', value: list }))]);
    }
    case 'add': {
      if (findBlock(s.resources, n) !== undefined) return nothing([fail(conn, h, 'block device with same name already exists')]);
      const r = addBlock(s.resources, n, cmd.value);
      if (!r.ok) return nothing([fail(conn, h, r.error)]);
      return nothing([{ kind: 'block_create', conn, header: h, name: n, size: cmd.value }]);
    }
    case 'remove': {
      const c = checkBlockIdle(s.resources, n, 'remove block');
      if (!c.ok) return nothing([fail(conn, h, c.error)]);
      return nothing([{ kind: 'block_delete', conn, header: h, name: n }]);
    }
    case 'set': {
      const c = checkBlockIdle(s.resources, n, 'set block');
      if (!c.ok) return nothing([fail(conn, h, c.error)]);
      return busy({ kind: 'block_upload', conn, header: h, name: n, sizeBytes: c.value.size * MB, compressed: cmd.value });
    }
    case 'dump': {
      const c = checkBlockIdle(s.resources, n, 'dump block');
      if (!c.ok) return nothing([fail(conn, h, c.error)]);
      if (cmd.value < 0 || cmd.value > 9) return nothing([fail(conn, h, `invalid compression level ${cmd.value} (0 to 9)`)]);
      return busy({ kind: 'block_dump', conn, header: h, name: n, level: cmd.value });
    }
    case 'dump_old': {
      const c = checkBlockIdle(s.resources, n, 'dump block');
      if (!c.ok) return nothing([fail(conn, h, c.error)]);
      if (cmd.value < 0 || cmd.value > 9) return nothing([fail(conn, h, `invalid compression level ${cmd.value} (0 to 9)`)]);
      return nothing([{ kind: 'block_read', conn, header: h, name: n, level: cmd.value }]);
    }
    case 'set_old': {
      const c = checkBlockIdle(s.resources, n, 'set block');
      if (!c.ok) return nothing([fail(conn, h, c.error)]);
      const data = inflateIf(cmd.value.compress, cmd.value.data);
      if (!data.ok) return nothing([fail(conn, h, data.error)]);
      if (data.value.length > c.value.size * MB) return nothing([fail(conn, h, 'data exceeds block size')]);
      return nothing([{ kind: 'block_write', conn, header: h, name: n, data: data.value, sizeBytes: c.value.size * MB, create: false }]);
    }
    case 'add_old': {
      if (findBlock(s.resources, n) !== undefined) return nothing([fail(conn, h, 'block device with same name already exists')]);
      const r = addBlock(s.resources, n, cmd.value.size);
      if (!r.ok) return nothing([fail(conn, h, r.error)]);
      const data = inflateIf(cmd.value.compress, cmd.value.data ?? new Uint8Array(0));
      if (!data.ok) return nothing([fail(conn, h, data.error)]);
      if (data.value.length > cmd.value.size * MB) return nothing([fail(conn, h, 'data exceeds block size')]);
      return nothing([{ kind: 'block_write', conn, header: h, name: n, data: data.value, sizeBytes: cmd.value.size * MB, create: true }]);
    }
    default: {
      const never: never = cmd;
      return never;
    }
  }
}

/**
 * The audit events of a block set: the event log has no kind of its own for it, so the
 * replaced device is logged as removed and added again with its size (WIRE.md §8.1).
 */
export function blockReplaced(s: VmmdState, n: Name): Effect[] {
  const b = findBlock(s.resources, n);
  return [audit(n, { kind: 'block_remove', value: null }), audit(n, { kind: 'block_add', value: b?.size ?? 0 })];
}

function inflateIf(compressed: boolean, data: Uint8Array): Result<Uint8Array> {
  if (!compressed) return ok(data);
  try {
    return ok(new Uint8Array(inflateSync(data)));
  } catch (e) {
    return err(`failed to uncompress: ${(e as Error).message}`);
  }
}

function onStarted(s: VmmdState, e: Extract<Event, { kind: 'started' }>): Step {
  const answer = (msg: Effect | undefined): Effect[] => (msg === undefined ? [] : [msg]);
  const o = e.origin;
  if (!e.result.ok) {
    const effects: Effect[] = [];
    if (o.kind === 'command') effects.push(fail(o.conn, o.header, e.result.error));
    else {
      effects.push({ kind: 'warn', message: `could not start ${text(e.name)} (${o.kind === 'restart' ? `restart, ${o.reason}` : 'startup'}): ${e.result.error}` });
      // dropped from the persisted state
      if (!s.shuttingDown) effects.push(save(s));
    }
    return { state: s, effects };
  }
  const res = e.result;
  const info = unikernelInfo(s, e.name, { config: e.config, digest: res.digest, started: res.started });
  rememberedUnikernelInfo.remember(info);
  // one literal with every field (no spread): all entries share one hidden class
  const entry: Running = { config: e.config, pid: res.pid, taps: res.taps, started: res.started, digest: res.digest, failures: e.failures, info };
  const added = addUnikernel(s.resources, e.name, entry, { ownPolicyOnly: o.kind === 'startup' });
  if (!added.ok) {
    // cannot happen while the shell holds the lock during create; refuse loudly rather than over-commit
    const effects: Effect[] = [{ kind: 'kill', name: e.name, pid: res.pid }, { kind: 'warn', message: `${text(e.name)}: ${added.error}` }];
    if (o.kind === 'command') effects.push(fail(o.conn, o.header, consoleFailed()));
    return { state: s, effects };
  }
  const state: VmmdState = { ...s, resources: added.value };
  const effects: Effect[] = [];
  // a restart-on-failure restart leaves the state file alone: it still holds the unikernel
  const persist = !(o.kind === 'restart' && o.reason === 'fail-behaviour');
  if (persist) effects.push(save(state));
  effects.push({ kind: 'stats_add', name: e.name, pid: res.pid, taps: e.config.bridges.map((d, i) => ({ bridge: d.netif, tap: res.taps[i] })) });
  // every start is preceded by what caused it: a command (create) or vmmd itself (exec: a
  // restart on failure or with add-name, or the relaunch at vmmd's start)
  if (o.kind === 'command') effects.push(audit(e.name, { kind: 'create', value: null }));
  else effects.push(audit(e.name, { kind: 'exec', value: { pid: res.pid, argv: [...res.argv], taps: e.config.bridges.map((d, i) => ({ bridge: d.bridge ?? d.netif, tap: res.taps[i] })) } }));
  effects.push({
    kind: 'log',
    event: {
      kind: 'unikernel_start',
      value: {
        name: e.name, digest: res.digest, pid: res.pid,
        taps: e.config.bridges.map((d, i) => ({ bridge: d.bridge ?? d.netif, tap: res.taps[i] })),
        blocks: e.config.blocks.map((b) => ({ name: b.blockName, device: hostBlockName(e.name, b) })),
      },
    },
  });
  effects.push(...answer(o.kind === 'command' ? done(o.conn, o.header, 'created unikernel') : undefined));
  return { state, effects };
}

function onExit(s: VmmdState, e: Extract<Event, { kind: 'exit' }>): Step {
  const r = findUnikernel(s.resources, e.name);
  if (r === undefined || r.pid !== e.pid) return { state: s, effects: [{ kind: 'warn', message: `exit of unknown process ${e.pid} (${text(e.name)})` }] };
  const removed = removeUnikernel(s.resources, e.name);
  let state: VmmdState = removed.ok ? { ...s, resources: removed.value } : s;
  const status = e.exit.kind === 'exit' ? { kind: 'exit' as const, value: e.exit.code } : { kind: e.exit.kind, value: e.exit.signal };
  const effects: Effect[] = [
    { kind: 'cleanup', name: e.name, taps: r.taps },
    { kind: 'stats_remove', name: e.name },
    { kind: 'log', event: { kind: 'unikernel_stop', value: { name: e.name, pid: e.pid, status } } },
  ];
  const key = text(e.name);
  const waiting = s.waiters.get(key);
  if (waiting !== undefined && waiting.length > 0) {
    const waiters = new Map(s.waiters);
    waiters.delete(key);
    const restarting = new Map(s.restarting);
    restarting.delete(key);
    state = { ...state, waiters, restarting };
    const last = waiting[waiting.length - 1];
    if (waiting.some((w) => w.kind === 'destroy')) effects.push(audit(e.name, { kind: 'destroy', value: null }));
    for (const w of waiting.slice(0, -1)) {
      if (w.kind === 'destroy') effects.push(done(w.conn, w.header, 'destroyed unikernel'));
      else effects.push(fail(w.conn, w.header, 'superseded by a later command for the same unikernel'));
    }
    if (last.kind === 'destroy') {
      if (!state.shuttingDown) effects.push(save(state));
      effects.push(done(last.conn, last.header, 'destroyed unikernel'));
    } else if (state.shuttingDown) {
      effects.push(fail(last.conn, last.header, 'vmmd is shutting down'));
    } else {
      effects.push({ kind: 'create', origin: { kind: 'command', conn: last.conn, header: last.header }, name: e.name, config: last.config, failures: 0 });
    }
    return finishShutdown(state, effects);
  }
  if (state.shuttingDown) return finishShutdown(state, effects);
  if (!exitHandlerArmed(r.config)) return { state, effects: [...effects, save(state)] };
  const d = decideAfterExit(r.config, e.exit);
  if (d.action === 'stop') return { state, effects: [...effects, save(state)] };
  const quick = e.now - r.started < s.options.backoff.stableMs;
  const failures = d.reason === 'add-name' ? r.failures : quick ? r.failures + 1 : 1;
  const delay = d.reason === 'add-name' ? 0 : backoffDelay(s.options.backoff, failures);
  if (delay === 0) {
    const a = checkUnikernel(state.resources, e.name, d.config);
    if (!a.ok) return { state, effects: [...effects, { kind: 'warn', message: `could not restart ${key}: ${a.error}` }, save(state)] };
    effects.push({ kind: 'create', origin: { kind: 'restart', reason: d.reason }, name: e.name, config: d.config, failures });
    return { state, effects };
  }
  const restarting = new Map(state.restarting);
  restarting.set(key, { name: e.name, config: d.config, failures, due: e.now + delay });
  state = { ...state, restarting };
  effects.push({ kind: 'warn', message: `${key} exited ${failures} times in a row quickly; restarting in ${delay} ms` });
  effects.push({ kind: 'timer', name: e.name, delayMs: delay });
  return { state, effects };
}

function finishShutdown(s: VmmdState, effects: Effect[]): Step {
  if (s.shuttingDown && s.resources.unikernels.isEmpty) effects.push({ kind: 'exit_daemon' });
  return { state: s, effects };
}

function onRestartDue(s: VmmdState, n: Name): Step {
  const key = text(n);
  const p = s.restarting.get(key);
  // destroyed, force-created or restarted meanwhile
  if (p === undefined || s.shuttingDown) return { state: s, effects: [] };
  const restarting = new Map(s.restarting);
  restarting.delete(key);
  const state = { ...s, restarting };
  if (findUnikernel(s.resources, n) !== undefined) return { state, effects: [] };
  const a = checkUnikernel(s.resources, n, p.config);
  if (!a.ok) return { state, effects: [{ kind: 'warn', message: `could not restart ${key}: ${a.error}` }, save(state)] };
  return { state, effects: [{ kind: 'create', origin: { kind: 'restart', reason: 'fail-behaviour' }, name: n, config: p.config, failures: p.failures }] };
}

/** The `n` of `console add(n)`. */
export { consoleLimit } from '../core/resources.js';
