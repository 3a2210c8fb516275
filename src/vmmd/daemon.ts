/**
 * vmmd's effectful shell: the command socket, the tender processes, FIFOs, taps, block files,
 * the state file, and the connections to the console, stats and log daemons. Decisions are
 * made by src/state/vmmd.ts; this module feeds it events one at a time and carries out the
 * effects it returns. A `create` effect (the create pipeline) completes before the next event
 * is handled: that is upstream's global lock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { createDeflate, createInflate, deflateSync } from 'node:zlib';
import { type Result, ok, err } from '../core/result.js';
import { limits } from '../core/limits.js';
import { type Name, type Path, nameToString, parseName } from '../core/name.js';
import { consoleLimit, emptyResources, findUnikernel } from '../core/resources.js';
import { type Platform, type ProcessExit, blockDir, blockFilePath, fifoPath, imagePath, tenderArgv } from '../core/unikernel.js';
import { tenderBase } from '../core/solo5.js';
import { decodeState, type StateDump } from '../core/wire/state.js';
import { StateEncoder } from '../state/persist.js';
import { type Header, type Wire, command, decodeWire, failure, reply, replyEmpty, data } from '../core/wire/wire.js';
import { encodeLogWire, logEventName, logMessage, type LogEvent } from '../core/wire/log.js';
import { makeHeader } from '../core/wire/wire.js';
import { decodeStatusWire, encodeStatusWire } from '../core/wire/status.js';
import { FramedConn, connectUnix } from '../transport/conn.js';
import { peekMessage } from '../core/wire/peek.js';
import { wireSignal } from '../core/signals.js';
import { requireDirectory, setSocketMode } from '../daemon/server.js';
import {
  type ConnId, type CreateOrigin, type Effect, type Event, type StartResult, type VmmdOptions, type VmmdState, MB,
  blockReplaced, consoleFailed, handle, initialState, prepareImage, restore, statusList, withScannedBlock,
} from '../state/vmmd.js';
import {
  bridgeExists, createTap, destroyTap, discoverRootPolicy, ensureFifo, ensureFifos, findTender, openFifoForWriting, whichInPath,
  processStartTime, tenderProcesses, writeFileAtomic,
} from './host.js';

export interface DaemonOptions extends VmmdOptions {
  /** Use the socket inherited from systemd (fd 3) instead of binding vmmd.sock. */
  readonly systemdSocket: boolean;
  readonly allowZvolFor?: Path;
  /** Writes one log line (stderr in the binary). */
  readonly logLine: (level: 'info' | 'warning' | 'error', msg: string) => void;
  /** Refuse to start without the console daemon (upstream); tests may relax it. */
  readonly requireConsole: boolean;
  /** The connection limits (default: limits.ts); tests shorten them through connLimitsFromEnv. */
  readonly connLimits?: Partial<ConnLimits>;
}

/** The limits of vmmd's command socket (src/core/limits.ts). */
export interface ConnLimits {
  vmmdConnections: number;
  vmmdFirstFrameMs: number;
  vmmdIdleMs: number;
  vmmdCommandBytes: number;
  vmmdBufferBytes: number;
}

/** Name of the variable with JSON overrides of the connection limits, for tests only. */
export const TEST_LIMITS_ENV = 'ALBATROSS_VMMD_TEST_LIMITS';

/** Overrides of the connection limits from TEST_LIMITS_ENV (positive integers of the named limits only). */
export function connLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): Result<Partial<ConnLimits>> {
  const text = env[TEST_LIMITS_ENV];
  if (text === undefined || text === '') return ok({});
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return err(`${TEST_LIMITS_ENV}: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null) return err(`${TEST_LIMITS_ENV}: expected an object of limits`);
  const out: Partial<ConnLimits> = {};
  const names: (keyof ConnLimits)[] = ['vmmdConnections', 'vmmdFirstFrameMs', 'vmmdIdleMs', 'vmmdCommandBytes', 'vmmdBufferBytes'];
  for (const [k, x] of Object.entries(v)) {
    if (!names.includes(k as keyof ConnLimits)) return err(`${TEST_LIMITS_ENV}: unknown limit ${k} (known: ${names.join(', ')})`);
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x <= 0) return err(`${TEST_LIMITS_ENV}: ${k} must be a positive integer`);
    out[k as keyof ConnLimits] = x;
  }
  return ok(out);
}

/** Octets of a long frame's body (its header and command tags) read before the rest is accepted. */
const PEEK_BYTES = 4096;

/** What vmmd knows of a client connection while it reads from it. */
interface Peer {
  /** Complete frames received. */
  frames: number;
  /** A command is awaited (readCommand), and no long message has been admitted for it. */
  waiting: boolean;
  /** Since when the connection waits: its accept, or its last answer. */
  waitSince: number;
  /** Commands, or the raw chunks of a block upload. */
  mode: 'command' | 'chunks';
  /** During an uncompressed block upload: the octets still fitting in the device. */
  chunkRoom?: number;
  /** Octets of the receive budget held by the frame being received (or just handled). */
  reserved: number;
  /** The frame being received was refused at its start: why, and the header to answer. */
  refused?: { header?: Header; message: string };
  /** Refused and being closed: the first to go when room is needed. */
  closing: boolean;
  deadline?: NodeJS.Timeout;
}

/**
 * One tender started by this daemon, recorded under <tmpdir>/tender/<name> (fsynced) before
 * its exec, so that a restarted vmmd frees its taps and files. The process itself is
 * recognised by the image on its command line (tenderProcesses), which needs no pid: there is
 * no moment at which a tender runs that a restarted vmmd would not find.
 */
interface RuntimeRecord {
  name: string;
  image: string;
  taps: string[];
}

const platformOf = (): Platform => (process.platform === 'freebsd' ? 'freebsd' : 'linux');
export const defaultPlatform = platformOf;

const CONSOLE_TIMEOUT_MS = 10_000;
/** How long a tender may take to exit after SIGTERM before it gets SIGKILL. */
const KILL_GRACE_MS = 10_000;

export class Vmmd {
  private state: VmmdState;
  private readonly queue: Event[] = [];
  private draining = false;
  private readonly conns = new Map<ConnId, FramedConn>();
  /** The connections read as clients (not the stats daemon's once it is attached). */
  private readonly peers = new Map<ConnId, Peer>();
  /** Octets reserved by frames being received, over all connections (limits.vmmdBufferBytes). */
  private receiving = 0;
  private readonly lim: ConnLimits;
  private nextConn = 1;
  private server: net.Server | undefined;
  private console: FramedConn | undefined;
  private consoleSeq = 1n;
  private consoleRetry: NodeJS.Timeout | undefined;
  private stats: { conn: FramedConn; seq: bigint } | undefined;
  private log: FramedConn | undefined;
  private logSeq = 1n;
  private logLastTry = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Pids of the tenders started by this daemon that have not exited. */
  private readonly children = new Set<number>();
  private readonly stateEncoder = new StateEncoder();
  /** While set, state file writes are held back and only the last one is carried out. */
  private deferredSave: { last?: Effect } | undefined;
  private stopping = false;
  /** Test hook: where vmmd kills itself (VMMD_TEST_CRASH_AT, see crashPoint). */
  private readonly crashAt = parseCrashAt(process.env.VMMD_TEST_CRASH_AT);
  private crashHits = 0;
  private exitResolve: (() => void) | undefined;
  readonly exited: Promise<void>;

  constructor(private readonly o: DaemonOptions) {
    this.state = initialState(o, emptyResources(o.allowZvolFor === undefined ? {} : { zvolPath: o.allowZvolFor }));
    this.lim = {
      vmmdConnections: limits.vmmdConnections,
      vmmdFirstFrameMs: limits.vmmdFirstFrameMs,
      vmmdIdleMs: limits.vmmdIdleMs,
      vmmdCommandBytes: limits.vmmdCommandBytes,
      vmmdBufferBytes: limits.vmmdBufferBytes,
      ...o.connLimits,
    };
    this.exited = new Promise((r) => (this.exitResolve = r));
  }

  private get util(): string { return path.join(this.o.tmpdir, 'util'); }
  private get socketPath(): string { return path.join(this.util, 'vmmd.sock'); }
  private get runtimeDir(): string { return path.join(this.o.tmpdir, 'tender'); }
  private get stateFile(): string { return path.join(this.o.dbdir, 'state'); }
  private warn(msg: string): void { this.o.logLine('warning', msg); }
  private info(msg: string): void { this.o.logLine('info', msg); }

  /**
   * Test hook for crash safety: with VMMD_TEST_CRASH_AT="<point> [<filter>...] [#<n>]" vmmd
   * sends itself SIGKILL the n-th time (default first) it reaches `point` with every filter
   * among `attrs` (a unikernel name, a create origin). Without the variable it does nothing.
   */
  private crashPoint(point: string, ...attrs: string[]): void {
    const c = this.crashAt;
    if (c === undefined || c.point !== point || !c.filters.every((f) => attrs.includes(f))) return;
    if (++this.crashHits < c.nth) return;
    this.o.logLine('warning', `VMMD_TEST_CRASH_AT: SIGKILL at ${[point, ...attrs].join(' ')}`);
    process.kill(process.pid, 'SIGKILL');
  }

  // ------------------------------------------------------------------ startup

  /** SEMANTICS.md §5.8; a fatal problem is returned as an error. */
  async start(): Promise<Result<void>> {
    for (const [what, dir] of [['--tmpdir', this.o.tmpdir], ['--dbdir', this.o.dbdir]] as const) {
      const d = requireDirectory(what, dir);
      if (!d.ok) return d;
    }
    fs.mkdirSync(this.util, { recursive: true });
    fs.mkdirSync(path.join(this.o.tmpdir, 'fifo'), { recursive: true });
    fs.mkdirSync(this.runtimeDir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(blockDir(this.o.dbdir), { recursive: true, mode: 0o700 });
    // a live socket means another vmmd owns these unikernels: touch nothing (a stale file is replaced later)
    const probe = await connectUnix(this.socketPath);
    if (probe.ok) {
      probe.value.close();
      return err(`another vmmd is listening on ${this.socketPath}`);
    }
    this.scanBlocks();
    // SEMANTICS.md §5.8 step 3: the programs every create needs
    const [pin, net] = this.o.platform === 'linux' ? ['taskset', 'ip'] : ['cpuset', 'ifconfig'];
    if (whichInPath(pin) === undefined) return err(`${pin} not found in PATH: it pins every unikernel to its CPUs`);
    if (whichInPath(net) === undefined) this.warn(`${net} not found in PATH: unikernels with network devices cannot be created`);
    const root = await discoverRootPolicy(this.o.platform, blockDir(this.o.dbdir));
    const t0 = performance.now();
    const dump = this.readState();
    if (!dump.ok) return dump;
    try {
      if (fs.existsSync(this.stateFile)) fs.copyFileSync(this.stateFile, `${this.stateFile}.started`);
    } catch (e) {
      this.warn(`copying the state file to state.started: ${(e as Error).message}`);
    }
    const t1 = performance.now();
    const r = restore(this.state, dump.value, root);
    if (!r.ok) return r;
    for (const w of r.value.warnings) this.warn(w);
    this.state = r.value.state;
    const t2 = performance.now();
    await this.stopLeftovers();
    const c = await this.connectConsole();
    if (!c.ok) {
      if (this.o.requireConsole) return c;
      this.warn(c.error);
      this.scheduleConsoleRetry();
    }
    const t3 = performance.now();
    const ms = (x: number): string => `${x.toFixed(1)} ms`;
    this.info(
      `state: ${dump.value.unikernels.length} unikernels and ${dump.value.policies.length} policies restored in ${ms(t3 - t0)} ` +
        `(read, decode and copy to state.started ${ms(t1 - t0)}, policies and start order ${ms(t2 - t1)}, leftovers and console ${ms(t3 - t2)}); relaunching`,
    );
    this.deferredSave = {};
    await ensureFifos(r.value.creates.map((u) => fifoPath(this.o.tmpdir, u.name)));
    for (const u of r.value.creates) await this.push({ kind: 'launch', name: u.name, config: u.config });
    // the FIFOs made above for unikernels that did not start
    for (const u of r.value.creates) if (findUnikernel(this.state.resources, u.name) === undefined) this.removeFiles(u.name);
    const pending = this.deferredSave.last;
    this.deferredSave = undefined;
    if (pending !== undefined) await this.perform(pending);
    if (r.value.creates.length > 0) {
      this.info(`relaunched ${this.state.resources.unikernels.size} of ${r.value.creates.length} unikernels in ${((performance.now() - t3) / 1000).toFixed(1)} s`);
    }
    const l = await this.listen();
    if (!l.ok) return l;
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void this.push({ kind: 'shutdown' }));
    this.info(`listening on ${this.o.systemdSocket ? 'the systemd socket' : this.socketPath}`);
    return ok(undefined);
  }

  private scanBlocks(): void {
    const dir = blockDir(this.o.dbdir);
    for (const f of fs.readdirSync(dir)) {
      if (f.endsWith(BLOCK_UPLOAD_SUFFIX)) {
        // a block set cut short by a crash: the device itself was never touched
        this.warn(`removing ${path.join(dir, f)}: an unfinished block set`);
        fs.rmSync(path.join(dir, f), { force: true });
        continue;
      }
      const n = parseName(f);
      let size = -1;
      try {
        const st = fs.statSync(path.join(dir, f));
        if (st.isFile()) size = st.size;
      } catch {
        /* vanished */
      }
      if (!n.ok || n.value.label === undefined || size <= 0 || size % MB !== 0) {
        this.warn(`skipping ${path.join(dir, f)}: not a block device (name or size)`);
        continue;
      }
      this.state = withScannedBlock(this.state, n.value, size / MB);
    }
  }

  /** The state file, or its backup when it is missing or damaged. */
  private readState(): Result<StateDump> {
    const read = (f: string): Result<StateDump> | undefined => {
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(f);
      } catch {
        return undefined;
      }
      const d = decodeState(bytes);
      return d.ok ? ok(d.value.dump) : err(`couldn't parse state ${f}: ${d.error}`);
    };
    const main = read(this.stateFile);
    if (main !== undefined && main.ok) return main;
    const bak = read(`${this.stateFile}.bak`);
    if (bak !== undefined && bak.ok) {
      this.warn(`${main === undefined ? `${this.stateFile} is missing` : main.error}; using the backup ${this.stateFile}.bak`);
      return bak;
    }
    if (main !== undefined) return main;
    this.warn(`no state file ${this.stateFile}, starting with an empty state`);
    return ok({ unikernels: [], policies: [] });
  }

  /**
   * Tenders left running by a vmmd that was killed: every process running an image of this
   * tmpdir (by its command line, with or without a record: one exec'd just before the kill has
   * no other trace) is stopped (SIGTERM, then SIGKILL); the taps and files named by the
   * records under <tmpdir>/tender are freed. The relaunch from the state file then never
   * duplicates a unikernel, and nothing runs that vmmd does not list.
   */
  private async stopLeftovers(): Promise<void> {
    const files: string[] = [];
    const records: RuntimeRecord[] = [];
    for (const f of fs.readdirSync(this.runtimeDir)) {
      const file = path.join(this.runtimeDir, f);
      files.push(file);
      try {
        const r = JSON.parse(fs.readFileSync(file, 'utf8')) as RuntimeRecord;
        if (typeof r.name === 'string' && Array.isArray(r.taps)) records.push(r);
      } catch {
        /* a temporary file of a write cut short: removed below */
      }
    }
    const running = await tenderProcesses(path.dirname(imagePath(this.o.tmpdir, { path: [], label: 'x' })));
    const alive = (p: { pid: number; startTime: string }): boolean => processStartTime(p.pid) === p.startTime;
    for (const p of running) {
      this.warn(`stopping ${path.basename(p.image).slice(0, -'.img'.length)} (pid ${p.pid}) left running by a previous vmmd`);
      try { process.kill(p.pid, 'SIGTERM'); } catch { /* gone */ }
    }
    if (running.length > 0) this.crashPoint('leftovers:signalled');
    for (let i = 0; i < 250 && running.some(alive); i++) await sleep(20);
    for (const p of running) {
      if (alive(p)) {
        try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    for (const r of records) {
      for (const t of r.taps) await destroyTap(this.o.platform, t);
      const n = parseName(r.name);
      if (n.ok) this.removeFiles(n.value);
    }
    for (const p of running) fs.rmSync(p.image, { force: true });
    for (const f of files) fs.rmSync(f, { force: true });
  }

  private async listen(): Promise<Result<void>> {
    if (!this.o.systemdSocket) fs.rmSync(this.socketPath, { force: true });
    const server = net.createServer({ pauseOnConnect: false }, (s) => this.accept(s));
    this.server = server;
    return new Promise((resolve) => {
      server.once('error', (e) => resolve(err(`listening on ${this.socketPath}: ${e.message}`)));
      if (this.o.systemdSocket) {
        if (process.env.LISTEN_PID !== String(process.pid) || process.env.LISTEN_FDS !== '1') {
          resolve(err('--systemd-socket-activation: expected exactly one socket from systemd (LISTEN_PID/LISTEN_FDS)'));
          return;
        }
        server.listen({ fd: 3 }, () => resolve(ok(undefined)));
        return;
      }
      server.listen({ path: this.socketPath, backlog: 511 }, () => {
        setSocketMode(this.socketPath);
        resolve(ok(undefined));
      });
    });
  }

  // ------------------------------------------------------------------ connections

  /**
   * A new connection. At the cap, the connection that has waited longest without sending a
   * command (or, failing one, without sending a further command) makes room; only when every
   * connection is past that (running a command, uploading) is the new one refused.
   */
  private accept(s: net.Socket): void {
    if (this.stopping) {
      s.destroy();
      return;
    }
    if (this.conns.size >= this.lim.vmmdConnections && !this.evictOne()) {
      this.warn(`connection refused: ${this.conns.size} connections open, each running or uploading a command`);
      s.destroy();
      return;
    }
    const id = this.nextConn++;
    const c = new FramedConn(s, limits.maxFrameBytes, { peekBytes: PEEK_BYTES, admit: (length, prefix) => this.admit(id, length, prefix) });
    this.conns.set(id, c);
    this.peers.set(id, { frames: 0, waiting: false, waitSince: Date.now(), mode: 'command', reserved: 0, closing: false });
    s.on('close', () => {
      this.conns.delete(id);
      this.dropPeer(id);
    });
    s.on('error', () => { /* reported by FramedConn */ });
    void this.readCommand(id);
  }

  /** Closes the connection that best makes room for a new one; false when none may go. */
  private evictOne(): boolean {
    let victim: ConnId | undefined;
    let rank = 3;
    let since = 0;
    for (const [id, p] of this.peers) {
      if (!p.waiting && !p.closing) continue;
      // refused ones first, then those that never sent a command, then those idle between commands
      const r = p.closing ? 0 : p.frames === 0 ? 1 : 2;
      if (r < rank || (r === rank && p.waitSince < since)) {
        victim = id;
        rank = r;
        since = p.waitSince;
      }
    }
    if (victim === undefined) return false;
    const why = rank === 0 ? 'was refused' : rank === 1 ? 'sent no complete command' : 'sent no further command';
    this.warn(`connection ${victim}: closed to make room for a new one (${this.conns.size} connections open; it ${why} in ${Date.now() - since} ms)`);
    this.closeConn(victim);
    return true;
  }

  private closeConn(id: ConnId): void {
    const c = this.conns.get(id);
    this.conns.delete(id);
    this.dropPeer(id);
    if (c !== undefined) {
      c.close();
      c.stream.destroy();
    }
  }

  private dropPeer(id: ConnId): void {
    const p = this.peers.get(id);
    if (p === undefined) return;
    this.peers.delete(id);
    if (p.deadline !== undefined) clearTimeout(p.deadline);
    this.release(p);
  }

  private release(p: Peer): void {
    if (p.reserved > this.lim.vmmdCommandBytes) this.scheduleCollect();
    this.receiving -= p.reserved;
    p.reserved = 0;
  }

  private collectTimer: NodeJS.Timeout | undefined;

  /**
   * A large frame's buffer is garbage once its message is handled or its connection closed,
   * but V8 frees an ArrayBuffer's memory only in a full collection, which an idle daemon may
   * not run for hours: 400 MB of an abandoned upload stayed resident (bench/RESULTS.md,
   * flood). So one collection follows a second after the last large frame was let go.
   */
  private scheduleCollect(): void {
    if (this.collectTimer !== undefined) clearTimeout(this.collectTimer);
    this.collectTimer = setTimeout(() => {
      this.collectTimer = undefined;
      fullCollection()?.();
    }, 1000);
    this.collectTimer.unref();
  }

  /** Closes the connection unless it is done within `ms` (cleared by the next setDeadline or clearDeadline). */
  private setDeadline(id: ConnId, p: Peer, ms: number, what: string): void {
    if (p.deadline !== undefined) clearTimeout(p.deadline);
    p.deadline = setTimeout(() => {
      p.deadline = undefined;
      this.warn(`connection ${id}: closed, it ${what} within ${ms} ms`);
      this.closeConn(id);
    }, ms);
  }

  private clearDeadline(p: Peer): void {
    if (p.deadline !== undefined) clearTimeout(p.deadline);
    p.deadline = undefined;
  }

  /**
   * Admission of a frame at its header (FramedConn calls this before buffering the body):
   * a command is at most vmmdCommandBytes unless it carries an image or block data (read from
   * its first octets); a raw chunk of an uncompressed upload fits in the device; and a frame
   * longer than vmmdCommandBytes must fit in what is left of the receive budget. A refusal is
   * answered by readCommand or upload.
   */
  private admit(id: ConnId, length: number, prefix: Uint8Array): string | undefined {
    const small = this.lim.vmmdCommandBytes;
    const p = this.peers.get(id);
    // the stats daemon's answers on the inverted connection
    if (p === undefined) return length > small ? `message of ${length} bytes exceeds the limit of ${small} bytes` : undefined;
    this.release(p);
    p.refused = undefined;
    const refuse = (message: string, header?: Header): string => {
      p.refused = header === undefined ? { message } : { header, message };
      return message;
    };
    let what = 'block data chunk';
    if (p.mode === 'chunks') {
      // upstream's answer once the octets were written; here before they are buffered
      if (p.chunkRoom !== undefined && length > p.chunkRoom) return refuse('stream exceeds size');
    } else if (length > small) {
      const m = peekMessage(prefix);
      if (!m.ok) return refuse(`message of ${length} bytes refused at its start: ${m.error}`);
      if (!m.value.carriesData) {
        return refuse(`${m.value.what} message of ${length} bytes exceeds the limit of ${small} bytes for a message without an image or block data`, m.value.header);
      }
      what = m.value.what;
      if (this.receiving + length > this.lim.vmmdBufferBytes) {
        return refuse(
          `${what} message of ${length} bytes refused: vmmd is receiving ${this.receiving} bytes on other connections ` +
            `and buffers at most ${this.lim.vmmdBufferBytes}; try again later`,
          m.value.header,
        );
      }
    }
    if (p.mode === 'chunks' && length > small && this.receiving + length > this.lim.vmmdBufferBytes) {
      return refuse(`block data chunk of ${length} bytes refused: vmmd is receiving ${this.receiving} bytes on other connections and buffers at most ${this.lim.vmmdBufferBytes}`);
    }
    p.reserved = length;
    this.receiving += length;
    if (p.waiting && length > small) {
      // an upload under way keeps the longer deadline, and no longer makes room for others
      p.waiting = false;
      this.setDeadline(id, p, this.lim.vmmdIdleMs, `did not send the rest of its ${length}-byte ${what} message`);
    }
    return undefined;
  }

  private async readCommand(id: ConnId): Promise<void> {
    const c = this.conns.get(id);
    const p = this.peers.get(id);
    if (c === undefined || p === undefined) return;
    this.release(p);
    p.mode = 'command';
    p.waiting = true;
    p.waitSince = Date.now();
    const first = p.frames === 0;
    this.setDeadline(id, p, first ? this.lim.vmmdFirstFrameMs : this.lim.vmmdIdleMs, first ? 'sent no command' : 'sent no further command');
    const r = await c.read();
    p.waiting = false;
    this.clearDeadline(p);
    // closed by a deadline or to make room: logged there
    if (!this.peers.has(id)) return;
    if (r.kind !== 'frame') {
      const refused = p.refused;
      if (refused !== undefined) {
        this.warn(`connection ${id}: ${refused.message}`);
        p.closing = true;
        if (refused.header !== undefined) {
          try {
            await c.writeMessage(failure(refused.header, refused.message));
          } catch {
            c.close();
            return;
          }
          closeGracefully(c);
          return;
        }
      } else if (r.kind === 'error') this.warn(`connection ${id}: ${r.error}`);
      c.close();
      return;
    }
    p.frames++;
    const w = decodeWire(r.body, { maxDepth: limits.maxDerDepth, maxElements: limits.maxDerElements, maxBytes: limits.maxFrameBytes });
    if (!w.ok) {
      // our clients' status query is not Wire (WIRE.md §8.2)
      const q = decodeStatusWire(r.body);
      if (q.ok && q.value.payload.kind === 'command') return this.answerStatus(id, q.value.header);
      this.warn(`connection ${id}: undecodable message (${w.error}), closing`);
      c.close();
      return;
    }
    await this.push({ kind: 'command', conn: id, wire: w.value });
    // the message is handled: its octets no longer count as being received
    this.release(p);
  }

  /** Answers a status query from the state as it is between two events, and closes. */
  private async answerStatus(id: ConnId, h: Header): Promise<void> {
    const c = this.conns.get(id);
    if (c === undefined) return;
    const p = this.peers.get(id);
    if (p !== undefined) p.closing = true;
    try {
      await c.writeBytes(frameOf(encodeStatusWire({ header: h, payload: { kind: 'reply', value: statusList(this.state, h.name) } })));
    } catch {
      c.close();
      return;
    }
    closeGracefully(c);
  }

  private async send(id: ConnId, w: Wire, then: 'close' | 'continue'): Promise<void> {
    const c = this.conns.get(id);
    if (c === undefined) return;
    try {
      await c.writeMessage(w);
    } catch {
      c.close();
      return;
    }
    if (then === 'close') {
      const p = this.peers.get(id);
      if (p !== undefined) p.closing = true;
      closeGracefully(c);
    } else void this.readCommand(id);
  }

  // ------------------------------------------------------------------ the event loop

  /** Queues an event; resolves once it (and everything queued before it) has been handled. */
  push(e: Event): Promise<void> {
    this.queue.push(e);
    return this.drain();
  }

  private drainPromise: Promise<void> = Promise.resolve();

  private drain(): Promise<void> {
    if (this.draining) return this.drainPromise;
    this.draining = true;
    this.drainPromise = (async () => {
      while (this.queue.length > 0) await this.process(this.queue.shift() as Event);
      this.draining = false;
    })();
    return this.drainPromise;
  }

  /** Handles one event and carries out its effects, in order. */
  private async process(e: Event): Promise<void> {
    const step = handle(this.state, e);
    this.state = step.state;
    for (const eff of step.effects) {
      try {
        await this.perform(eff);
      } catch (x) {
        this.o.logLine('error', `${eff.kind}: ${(x as Error).message}`);
      }
    }
  }

  private async perform(eff: Effect): Promise<void> {
    switch (eff.kind) {
      case 'reply':
        return this.send(eff.conn, eff.wire, eff.then);
      case 'create': {
        const result = await this.runCreate(eff.name, eff.config, eff.origin);
        return this.process({ kind: 'started', origin: eff.origin, name: eff.name, config: eff.config, failures: eff.failures, result });
      }
      case 'kill': {
        try {
          process.kill(eff.pid, 'SIGTERM');
        } catch (x) {
          this.warn(`kill ${eff.pid} (${nameToString(eff.name)}): ${(x as Error).message}`);
        }
        this.crashPoint('kill:sent', nameToString(eff.name));
        // a tender that ignores SIGTERM must not hold a destroy (or the shutdown) forever
        const t = setTimeout(() => {
          this.timers.delete(t);
          if (!this.children.has(eff.pid)) return;
          this.warn(`${nameToString(eff.name)} (pid ${eff.pid}) ignored SIGTERM for ${KILL_GRACE_MS / 1000} s, sending SIGKILL`);
          try { process.kill(eff.pid, 'SIGKILL'); } catch { /* gone */ }
        }, KILL_GRACE_MS);
        this.timers.add(t);
        return;
      }
      case 'cleanup': {
        this.removeFiles(eff.name);
        for (const t of eff.taps) {
          const r = await destroyTap(this.o.platform, t);
          if (!r.ok) {
            this.warn(r.error);
            break;
          }
        }
        fs.rmSync(path.join(this.runtimeDir, nameToString(eff.name)), { force: true });
        this.crashPoint('cleanup:done', nameToString(eff.name));
        return;
      }
      case 'save_state':
        if (this.deferredSave !== undefined) {
          // start-up relaunches: one write at the end instead of one per unikernel
          this.deferredSave.last = eff;
          return;
        }
        writeFileAtomic(this.stateFile, this.stateEncoder.encode(eff.dump), { backup: `${this.stateFile}.bak` });
        this.crashPoint('state:saved');
        return;
      case 'stats_add':
        return this.statsSend(eff.name, { kind: 'add', value: { vmmdev: '', pid: eff.pid, network: eff.taps.map((t) => ({ ...t })) } });
      case 'stats_remove':
        return this.statsSend(eff.name, { kind: 'remove', value: null });
      case 'stats_attach':
        return this.attachStats(eff.conn, eff.header);
      case 'log':
        return this.logEvent(eff.event);
      case 'warn':
        return this.warn(eff.message);
      case 'timer': {
        const t = setTimeout(() => {
          this.timers.delete(t);
          void this.push({ kind: 'restart_due', name: eff.name });
        }, eff.delayMs);
        this.timers.add(t);
        return;
      }
      case 'block_create': {
        const error = createBlockFile(blockFilePath(this.o.dbdir, eff.name), eff.size * MB);
        return this.process({ kind: 'block_added', conn: eff.conn, header: eff.header, size: eff.size, ...(error === undefined ? {} : { error }) });
      }
      case 'block_delete': {
        let error: string | undefined;
        try {
          fs.unlinkSync(blockFilePath(this.o.dbdir, eff.name));
        } catch (x) {
          if ((x as NodeJS.ErrnoException).code !== 'ENOENT') error = `remove block: ${(x as Error).message}`;
        }
        return this.process({ kind: 'block_removed', conn: eff.conn, header: eff.header, ...(error === undefined ? {} : { error }) });
      }
      case 'block_upload':
        void this.upload(eff.conn, eff.header, eff.name, eff.sizeBytes, eff.compressed).then((error) =>
          this.push({ kind: 'block_transferred', conn: eff.conn, header: eff.header, op: 'set', ...(error === undefined ? {} : { error }) }));
        return;
      case 'block_dump':
        void this.dump(eff.conn, eff.header, eff.name, eff.level).then(() =>
          this.push({ kind: 'block_transferred', conn: eff.conn, header: eff.header, op: 'dump' }));
        return;
      case 'block_write': {
        const file = blockFilePath(this.o.dbdir, eff.name);
        let error: string | undefined;
        if (eff.create) error = createBlockFile(file, eff.sizeBytes);
        if (error === undefined) {
          // as block set: the new content replaces the device only once it is written
          const tmp = eff.create ? file : blockUploadPath(file);
          try {
            fs.writeFileSync(tmp, eff.data, { mode: 0o600 });
            fs.truncateSync(tmp, eff.sizeBytes);
            if (tmp !== file) fs.renameSync(tmp, file);
          } catch {
            error = 'error writing to file descriptor';
            if (tmp !== file) fs.rmSync(tmp, { force: true });
          }
        }
        if (eff.create) return this.process({ kind: 'block_added', conn: eff.conn, header: eff.header, size: eff.sizeBytes / MB, ...(error === undefined ? {} : { error }) });
        if (error === undefined) for (const l of blockReplaced(this.state, eff.name)) await this.perform(l);
        return this.send(eff.conn, error === undefined ? reply(eff.header, { kind: 'string', value: 'set block device' }) : failure(eff.header, error), 'close');
      }
      case 'block_read': {
        let bytes: Uint8Array;
        try {
          bytes = fs.readFileSync(blockFilePath(this.o.dbdir, eff.name));
        } catch {
          return this.send(eff.conn, failure(eff.header, 'error opening block device'), 'close');
        }
        const image = eff.level === 0 ? bytes : new Uint8Array(deflateSync(bytes, { level: eff.level }));
        return this.send(eff.conn, reply(eff.header, { kind: 'old_block_device_image', value: { compressed: eff.level !== 0, image } }), 'close');
      }
      case 'exit_daemon':
        return this.exitDaemon();
      default: {
        const never: never = eff;
        return never;
      }
    }
  }

  private removeFiles(n: Name): void {
    fs.rmSync(imagePath(this.o.tmpdir, n), { force: true });
    try {
      if (fs.lstatSync(fifoPath(this.o.tmpdir, n)).isFIFO()) fs.rmSync(fifoPath(this.o.tmpdir, n), { force: true });
    } catch {
      /* absent */
    }
  }

  // ------------------------------------------------------------------ create pipeline

  /**
   * SEMANTICS.md §5.2 steps 3-5: prepare (image, tender, FIFO, taps), console add, exec.
   * Resources made here are released again on failure; console and exec failures are
   * answered with upstream's `console failed` text (the cause is logged).
   */
  private async runCreate(n: Name, config: import('../core/wire/common.js').UnikernelConfig, origin: CreateOrigin): Promise<StartResult> {
    const o = this.o;
    const fifo = fifoPath(o.tmpdir, n);
    const img = imagePath(o.tmpdir, n);
    const taps: string[] = [];
    const record = path.join(this.runtimeDir, nameToString(n));
    const undo = async (): Promise<string | undefined> => {
      this.removeFiles(n);
      fs.rmSync(record, { force: true });
      for (const t of taps) {
        const r = await destroyTap(o.platform, t);
        if (!r.ok) return r.error;
      }
      return undefined;
    };
    const failWith = async (msg: string): Promise<StartResult> => {
      await undo();
      return { ok: false, error: msg };
    };
    this.info(`create ${nameToString(n)}: preparing`);
    const prep = prepareImage(config);
    if (!prep.ok) return { ok: false, error: prep.error };
    const tender = await findTender(tenderBase(prep.value.info.target), prep.value.info.abi, o.dbdir);
    if (!tender.ok) return { ok: false, error: tender.error };
    // the record (fsynced) comes before every file, tap and the exec: a vmmd killed from here on
    // frees them at its next start, and finds the tender by its command line
    const writeRecord = (): string | undefined => {
      try {
        const rec: RuntimeRecord = { name: nameToString(n), image: img, taps };
        writeFileAtomic(record, Buffer.from(JSON.stringify(rec)));
        return undefined;
      } catch (x) {
        return `recording ${record}: ${(x as Error).message}`;
      }
    };
    this.crashPoint('create:record', nameToString(n), origin.kind);
    const recorded = writeRecord();
    if (recorded !== undefined) return failWith(recorded);
    try {
      fs.writeFileSync(img, prep.value.image, { mode: 0o600 });
    } catch (x) {
      return failWith(`writing ${img}: ${(x as Error).message}`);
    }
    for (const d of config.bridges) {
      const b = d.bridge ?? d.netif;
      if (!(await bridgeExists(o.platform, b))) return failWith(`interface ${b} does not exist`);
    }
    const f = await ensureFifo(fifo);
    if (!f.ok) return failWith(f.error);
    for (const d of config.bridges) {
      const t = await createTap(o.platform, d.bridge ?? d.netif, taps);
      if (!t.ok) return failWith(t.error);
      taps.push(t.value);
    }
    if (taps.length > 0) {
      const again = writeRecord();
      if (again !== undefined) return failWith(again);
    }
    this.info(`create ${nameToString(n)}: console add`);
    const consoleAdd = await this.consoleAdd(n, consoleLimit(this.state.resources, n));
    if (!consoleAdd.ok) {
      this.warn(`${nameToString(n)}: console add failed: ${consoleAdd.error}`);
      const c = await undo();
      return { ok: false, error: consoleFailed(c) };
    }
    const argv = tenderArgv({ platform: o.platform, tender: tender.value, tmpdir: o.tmpdir, dbdir: o.dbdir, name: n, config, taps, dropPath: o.dropPath });
    if (!argv.ok) return failWith(argv.error);
    this.info(`create ${nameToString(n)}: exec`);
    this.crashPoint('create:exec', nameToString(n), origin.kind);
    const fd = await openFifoForWriting(fifo);
    if (!fd.ok) {
      this.warn(`${nameToString(n)}: ${fd.error}`);
      const c = await undo();
      return { ok: false, error: consoleFailed(c) };
    }
    const child = await spawnTender(argv.value, fd.value);
    fs.closeSync(fd.value);
    if (!child.ok) {
      this.warn(`${nameToString(n)}: ${child.error}`);
      const c = await undo();
      return { ok: false, error: consoleFailed(c) };
    }
    const pid = this.watchTender(child.value, n);
    this.crashPoint('create:spawned', nameToString(n), origin.kind);
    const started = Date.now();
    this.info(`started ${nameToString(n)} (pid ${pid}${origin.kind === 'command' ? '' : `, ${origin.kind}`}): ${argv.value.join(' ')}`);
    return { ok: true, pid, taps: taps.length === 0 ? NO_TAPS : taps, argv: argv.value, started, digest: prep.value.digest };
  }

  /**
   * Feeds the tender's exit back as an event. A method of its own, so that what the listener
   * keeps alive for the tender's lifetime is the name and pid, not the create pipeline's
   * locals (argv, closures).
   */
  private watchTender(ch: ChildProcess, n: Name): number {
    const pid = ch.pid as number;
    // the text of the name is smaller to keep than the name (an object and its path array)
    const text = nameToString(n);
    this.children.add(pid);
    ch.on('exit', (code, signal) => {
      this.children.delete(pid);
      const exit: ProcessExit = signal !== null ? { kind: 'signal', signal: wireSignal(signal, os.constants.signals) } : { kind: 'exit', code: code ?? 23 };
      const name = parseName(text);
      if (name.ok) void this.push({ kind: 'exit', name: name.value, pid, exit, now: Date.now() });
      else this.o.logLine('error', `exit of pid ${pid}: ${text}: ${name.error}`);
    });
    return pid;
  }

  // ------------------------------------------------------------------ console daemon

  private async connectConsole(): Promise<Result<void>> {
    const p = path.join(this.util, 'console.sock');
    const c = await connectUnix(p);
    if (!c.ok) return err(`Failed to connect to ${p}, is vmmd_console started? (${c.error})`);
    this.console = c.value;
    c.value.stream.on('close', () => {
      if (this.console === c.value) {
        this.console = undefined;
        if (!this.stopping) {
          this.warn('lost the connection to the console daemon; reconnecting');
          this.scheduleConsoleRetry();
        }
      }
    });
    return ok(undefined);
  }

  private scheduleConsoleRetry(): void {
    if (this.consoleRetry !== undefined || this.stopping) return;
    this.consoleRetry = setTimeout(async () => {
      this.consoleRetry = undefined;
      if (this.console !== undefined || this.stopping) return;
      const r = await this.connectConsole();
      if (r.ok) this.info('connected to the console daemon');
      else this.scheduleConsoleRetry();
    }, 1000);
  }

  private async consoleAdd(n: Name, limit: bigint): Promise<Result<void>> {
    if (this.console === undefined) {
      const r = await this.connectConsole();
      if (!r.ok) return r;
    }
    const c = this.console as FramedConn;
    const seq = this.consoleSeq++;
    try {
      await c.writeMessage(command(n, { kind: 'console', value: { kind: 'add', value: limit } }, seq));
    } catch (x) {
      return err(`writing to the console daemon: ${(x as Error).message}`);
    }
    const r = await c.readMessage(CONSOLE_TIMEOUT_MS);
    if (r.kind !== 'message') {
      c.close();
      return err(r.kind === 'end' ? 'console daemon closed the connection' : r.error);
    }
    if (r.wire.header.sequence !== seq) {
      c.close();
      return err(`console daemon answered sequence ${r.wire.header.sequence}, expected ${seq}`);
    }
    if (r.wire.payload.kind === 'reply') return ok(undefined);
    return err(r.wire.payload.kind === 'failure' ? r.wire.payload.value : `unexpected ${r.wire.payload.kind}`);
  }

  // ------------------------------------------------------------------ stats daemon (inverted connection)

  private async attachStats(id: ConnId, h: Header): Promise<void> {
    const c = this.conns.get(id);
    if (c === undefined) return;
    this.conns.delete(id);
    this.dropPeer(id);
    try {
      await c.writeMessage(replyEmpty(h));
    } catch {
      c.close();
      return;
    }
    if (this.stats !== undefined) this.stats.conn.close();
    const st = { conn: c, seq: h.sequence + 1n };
    this.stats = st;
    // answers ("added"/"removed") are read and dropped; the connection ends when the peer closes
    void (async () => {
      for (;;) {
        const r = await c.read();
        if (r.kind !== 'frame') break;
      }
      if (this.stats === st) this.stats = undefined;
      c.close();
    })();
    for (const [k, r] of this.state.resources.unikernels.all()) {
      const n: Name = k.length === 0 ? { path: [] } : { path: k.slice(0, -1), label: k[k.length - 1] };
      await this.statsSend(n, { kind: 'add', value: { vmmdev: '', pid: r.pid, network: r.config.bridges.map((d, i) => ({ bridge: d.netif, tap: r.taps[i] })) } });
    }
  }

  private async statsSend(n: Name, cmd: import('../core/wire/stats.js').StatsCmd): Promise<void> {
    const st = this.stats;
    if (st === undefined) return;
    const seq = st.seq++;
    try {
      await st.conn.writeMessage(command(n, { kind: 'stats', value: cmd }, seq));
    } catch {
      if (this.stats === st) this.stats = undefined;
    }
  }

  // ------------------------------------------------------------------ log daemon

  private async logEvent(e: LogEvent): Promise<void> {
    if (this.log === undefined) {
      if (Date.now() - this.logLastTry < 5000) return;
      this.logLastTry = Date.now();
      const c = await connectUnix(path.join(this.util, 'log.sock'));
      if (!c.ok) return;
      const conn = c.value;
      this.log = conn;
      void (async () => {
        for (;;) {
          const r = await conn.read();
          if (r.kind !== 'frame') break;
        }
        if (this.log === conn) this.log = undefined;
        conn.close();
      })();
    }
    const name = logEventName(e) ?? { path: [] };
    try {
      await this.log.writeBytes(frameOf(encodeLogWire(logMessage.data(makeHeader(name, this.logSeq++), Date.now(), e))));
    } catch {
      this.log = undefined;
    }
  }

  // ------------------------------------------------------------------ block streaming

  /** `block set` (WIRE.md §2.4): returns the failure message, or undefined on success. */
  private async upload(id: ConnId, _h: Header, n: Name, sizeBytes: number, compressed: boolean): Promise<string | undefined> {
    const c = this.conns.get(id);
    const p = this.peers.get(id);
    if (c === undefined || p === undefined) return 'connection closed';
    p.mode = 'chunks';
    // the content goes to a file of its own, which replaces the device only once the stream
    // is complete: a failed or cut stream leaves the device as it was
    const file = blockFilePath(this.o.dbdir, n);
    const tmp = blockUploadPath(file);
    let fd: number;
    try {
      fs.rmSync(tmp, { force: true });
      fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    } catch (x) {
      this.warn(`block set ${nameToString(n)}: ${(x as Error).message}`);
      return 'error opening block device';
    }
    let written = 0;
    let error: string | undefined;
    const writeOut = (b: Uint8Array): void => {
      if (error !== undefined) return;
      if (written + b.length > sizeBytes) {
        error = 'stream exceeds size';
        return;
      }
      try {
        fs.writeSync(fd, b);
      } catch {
        error = 'error writing to file descriptor';
        return;
      }
      written += b.length;
    };
    const inflater = compressed ? createInflate() : undefined;
    const inflated: Promise<void> = inflater === undefined ? Promise.resolve() : new Promise((resolve) => {
      inflater.on('data', (b: Buffer) => writeOut(b));
      inflater.on('end', () => resolve());
      inflater.on('error', () => {
        if (error === undefined) error = 'error writing to file descriptor';
        resolve();
      });
    });
    for (;;) {
      this.release(p);
      if (!compressed) p.chunkRoom = sizeBytes - written;
      const r = await c.read(this.lim.vmmdIdleMs);
      if (r.kind === 'end') break;
      if (r.kind === 'error') {
        this.warn(`connection ${id}: block set: ${r.error}`);
        error ??= p.refused?.message ?? 'error while reading stream';
        break;
      }
      if (inflater !== undefined) {
        if (!inflater.write(r.body)) await new Promise((res) => inflater.once('drain', res));
      } else writeOut(r.body);
      if (error !== undefined) break;
    }
    if (inflater !== undefined) {
      inflater.end();
      await inflated;
    }
    try {
      if (error === undefined) {
        fs.ftruncateSync(fd, sizeBytes);
        fs.fsyncSync(fd);
      }
    } catch {
      error ??= 'error writing to file descriptor';
    }
    try {
      fs.closeSync(fd);
    } catch {
      error ??= 'error writing to file descriptor';
    }
    try {
      if (error === undefined) fs.renameSync(tmp, file);
    } catch (x) {
      this.warn(`block set ${nameToString(n)}: replacing ${file}: ${(x as Error).message}`);
      error = 'error writing to file descriptor';
    }
    if (error !== undefined) fs.rmSync(tmp, { force: true });
    return error;
  }

  /** `block dump` (WIRE.md §2.5): reply, data chunks, end marker. */
  private async dump(id: ConnId, h: Header, n: Name, level: number): Promise<void> {
    const c = this.conns.get(id);
    if (c === undefined) return;
    try {
      const stream = fs.createReadStream(blockFilePath(this.o.dbdir, n), { highWaterMark: 65536 });
      await new Promise<void>((resolve, reject) => {
        stream.once('open', () => resolve());
        stream.once('error', reject);
      }).catch(async () => {
        await c.writeMessage(failure(h, 'error opening block device'));
        throw new Error('open');
      });
      await c.writeMessage(reply(h, { kind: 'block_device_image', value: level !== 0 }));
      const source: AsyncIterable<Buffer> = level === 0 ? stream : stream.pipe(createDeflate({ level }));
      for await (const chunk of source) {
        await c.writeMessage(data(h, { kind: 'block', value: { kind: 'chunk', value: new Uint8Array(chunk) } }));
      }
      await c.writeMessage(data(h, { kind: 'block', value: { kind: 'eof', value: null } }));
    } catch {
      /* the peer went away, or the failure was sent */
    }
    c.close();
  }

  // ------------------------------------------------------------------ shutdown

  private exitDaemon(): void {
    if (this.stopping) return;
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    if (this.consoleRetry !== undefined) clearTimeout(this.consoleRetry);
    this.server?.close();
    if (!this.o.systemdSocket) fs.rmSync(this.socketPath, { force: true });
    for (const c of this.conns.values()) c.close();
    for (const id of [...this.peers.keys()]) this.dropPeer(id);
    this.console?.close();
    this.stats?.conn.close();
    this.log?.close();
    this.info('all unikernels stopped, exiting');
    this.exitResolve?.();
  }
}

const NO_TAPS: readonly string[] = Object.freeze([]);

let gcFunction: (() => void) | null | undefined;

/**
 * V8's full garbage collection, made reachable on first use (the `gc` of a fresh context
 * after --expose-gc); null where the runtime refuses.
 */
function fullCollection(): (() => void) | null {
  if (gcFunction === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      const f: unknown = vm.runInNewContext('gc');
      gcFunction = typeof f === 'function' ? (f as () => void) : null;
    } catch {
      gcFunction = null;
    }
  }
  return gcFunction;
}

function parseCrashAt(spec: string | undefined): { point: string; filters: string[]; nth: number } | undefined {
  if (spec === undefined || spec.trim() === '') return undefined;
  const [point, ...rest] = spec.trim().split(/\s+/);
  const nth = rest.find((t) => /^#\d+$/.test(t));
  return { point, filters: rest.filter((t) => t !== nth), nth: nth === undefined ? 1 : Number(nth.slice(1)) };
}

/** Errors of a tender's ChildProcess after it started (none are expected: we signal by pid). */
const ignoreChildError = (): void => {};

/** Spawns a tender with its stdio on `fd`; resolves once it runs, or with the spawn error. */
function spawnTender(argv: readonly string[], fd: number): Promise<Result<ChildProcess>> {
  return new Promise((resolve) => {
    const ch = spawn(argv[0], argv.slice(1), { stdio: [fd, fd, fd], detached: true });
    const failed = (x: Error): void => {
      ch.off('spawn', spawned);
      resolve(err(`cmd ${argv.join(' ')} exits: ${x.message}`));
    };
    const spawned = (): void => {
      // nothing of this promise stays referenced from the process for its lifetime
      ch.off('error', failed);
      ch.on('error', ignoreChildError);
      resolve(ok(ch));
    };
    ch.once('spawn', spawned);
    ch.once('error', failed);
  });
}

const frameOf = (body: Uint8Array): Uint8Array => {
  const b = new Uint8Array(4 + body.length);
  new DataView(b.buffer).setUint32(0, body.length);
  b.set(body, 4);
  return b;
};

/**
 * What a block set writes to before it replaces the device: beside it in the block directory
 * (so the rename stays on one file system), with a character no name may contain (`~`), so
 * the start-up scan never takes it for a device and removes it.
 */
const BLOCK_UPLOAD_SUFFIX = '~set';
const blockUploadPath = (file: string): string => `${file}${BLOCK_UPLOAD_SUFFIX}`;

/** Creates an empty block file of `bytes` (sparse); the error text is upstream's. */
function createBlockFile(file: string, bytes: number): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  } catch (x) {
    return (x as NodeJS.ErrnoException).code === 'EEXIST' ? 'file already exists' : `error creating block device: ${(x as Error).message}`;
  }
  try {
    fs.ftruncateSync(fd, bytes);
  } catch (x) {
    fs.closeSync(fd);
    return `error creating block device: ${(x as Error).message}`;
  }
  fs.closeSync(fd);
  return undefined;
}

/**
 * Closes after an answer without making the peer's pending writes fail: a client may still be
 * sending (a `block set` refused before its data, WIRE.md §2.4) and would lose the answer to
 * EPIPE. Our side is shut, what still arrives is discarded, and the socket goes when the peer
 * closes or after a grace period.
 */
function closeGracefully(c: FramedConn): void {
  const s = c.stream;
  s.removeAllListeners('data');
  s.on('data', () => {});
  s.end();
  s.resume();
  const t = setTimeout(() => s.destroy(), 5000);
  t.unref();
  s.once('close', () => clearTimeout(t));
  s.once('end', () => s.destroy());
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
