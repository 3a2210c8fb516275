/**
 * The one-command proxy shared by the TLS handler and the local handler (CERTS.md §5):
 * optional bulk image upload, routing to the daemon's socket, installing the chain's
 * policies, sending the command, relaying block data, collecting the answer in the
 * command's mode and writing the final reply. Exactly one command per call.
 *
 * Nothing here writes to stdout or stderr: under inetd those are the client's socket.
 * What happened is returned as an outcome, and the caller logs it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Name, type Path, nameToString } from '../core/name.js';
import { limits } from '../core/limits.js';
import type { Delegation } from '../core/certs.js';
import {
  type Command, type Header, type Payload, type Wire, WIRE_VERSION, commandEndpoint, decodeWire, describeCommand, encodeWire,
} from '../core/wire/wire.js';
import { type UnikernelConfig } from '../core/wire/common.js';
import { type LogEvent, decodeLogWire, encodeLogWire, logMessage } from '../core/wire/log.js';
import { decodeStatusWire, encodeStatusWire } from '../core/wire/status.js';
import { type LeafCommand, type OwnLeafCommand, describeLeafCommand, isWireCommand } from '../core/wire/leaf.js';
import type { Result } from '../core/result.js';
import { LogSender, logSocketPath } from '../log/client.js';
import { type FramedConn, connectUnix } from '../transport/conn.js';
import { frame } from '../core/frame.js';
// upload.js is loaded by the commands that upload an image, not by every handler process
import type { HeldImage, UploadBudget } from './upload.js';

export interface ProxyRequest {
  name: Name;
  /** Deepest first; installed in this order before a vmmd command. */
  policies: readonly Delegation[];
  /** Wire version of the final reply and of forwarded messages. */
  version: number;
  /** Upstream's Command, or our status query / log subscription (a leaf certificate's, leaf.ts). */
  command: LeafCommand;
}

export interface ProxyOptions {
  /** The daemons' run directory; sockets are in `<tmpdir>/util/`. */
  tmpdir: string;
  /** Deadline for each chunk of a bulk upload from the client (ms). */
  commandTimeoutMs?: number;
  /** Deadline for each answer of a daemon in single and dump mode (ms); 0 = none. */
  idleTimeoutMs?: number;
  /** Largest image upload accepted from the client (block data is streamed, vmmd bounds it). */
  maxUploadBytes?: number;
  /** Octets that image uploads in progress may hold together (default: the process's budget). */
  uploadBudget?: UploadBudget;
  /** Aborting closes the daemon connection, which ends whatever the proxy waits for. */
  signal?: AbortSignal;
}

/**
 * What happened: `replied` says whether a final reply was written to the client;
 * `result` is a short description for the log (`success`, `failure: ...`, `aborted: ...`).
 */
export interface ProxyOutcome {
  replied: boolean;
  ok: boolean;
  result: string;
}

export const SOCKET_OF_DAEMON = { vmmd: 'vmmd.sock', console: 'console.sock', stats: 'stat.sock' } as const;

/** One process-wide counter for every message we originate towards a daemon (CERTS.md §5). */
let sequence = 0n;
let sequenceStep = 1n;
const nextSequence = (): bigint => {
  const s = sequence;
  sequence = BigInt.asIntN(64, sequence + sequenceStep);
  return s;
};

/**
 * Worker `index` of `count` processes that send to the same daemons (vmmd_tls --workers)
 * numbers its messages index, index + count, ...: no two share a sequence number.
 */
export function interleaveSequence(index: number, count: number): void {
  sequence = BigInt(index);
  sequenceStep = BigInt(count);
}

const hdr = (version: number, name: Name, seq: bigint): Header => ({ version, sequence: seq, name });
const pathName = (p: Path): Name => ({ path: [...p] });

/** A create whose image travels after the handshake (CERTS.md §5 step 2)? */
function configOfCreate(cmd: Command): UnikernelConfig | undefined {
  if (cmd.kind !== 'unikernel') return undefined;
  const u = cmd.value;
  switch (u.kind) {
    case 'create':
    case 'force_create':
    case 'create_v3':
    case 'force_create_v3':
    case 'create_v4':
    case 'force_create_v4':
      return u.value;
    default:
      return undefined;
  }
}

/**
 * May the command hold its connection for long: a subscription or dump (the answer is a
 * stream), or an upload that follows the handshake? Its login event is sent at once; the
 * others' login travels with their logout, once the client has its answer.
 */
export function lastingCommand(cmd: LeafCommand): boolean {
  if (!isWireCommand(cmd)) return cmd.kind === 'log';
  const config = configOfCreate(cmd);
  return commandEndpoint(cmd).mode !== 'single' || (config !== undefined && config.image.length === 0) || blockUploadFollows(cmd);
}

/** Does raw block data follow the command (CERTS.md §5 step 6)? */
function blockUploadFollows(cmd: Command): boolean {
  if (cmd.kind !== 'block') return false;
  const b = cmd.value;
  if (b.kind === 'set') return true;
  if (b.kind === 'add_old') return b.value.data !== undefined && b.value.data.length === 0;
  if (b.kind === 'set_old') return b.value.data.length === 0;
  return false;
}

const describePayload = (p: Payload): string => {
  switch (p.kind) {
    case 'reply':
      return p.value.kind === 'string' ? `reply ${JSON.stringify(p.value.value)}` : `reply ${p.value.kind}`;
    case 'failure':
      return `failure ${JSON.stringify(p.value)}`;
    case 'command':
      return `command ${describeCommand(p.value)}`;
    case 'data':
      return `data ${p.value.kind}`;
    default: {
      const never: never = p;
      return never;
    }
  }
};

/**
 * A connection to a daemon's socket that aborting the request closes; `release` closes it
 * and forgets the abort signal.
 */
async function connectDaemon(socket: string, signal: AbortSignal | undefined): Promise<Result<{ conn: FramedConn; release: () => void }>> {
  const c = await connectUnix(socket);
  if (!c.ok) return c;
  const conn = c.value;
  const abort = (): void => conn.close();
  signal?.addEventListener('abort', abort);
  if (signal?.aborted) conn.close();
  return {
    ok: true,
    value: {
      conn,
      release: () => {
        signal?.removeEventListener('abort', abort);
        conn.close();
      },
    },
  };
}

/** Copies raw chunks from the client to the daemon until the end marker or EOF, then writes the marker. */
async function relayBlockData(client: FramedConn, daemon: FramedConn, timeoutMs: number | undefined): Promise<string | undefined> {
  for (;;) {
    const r = await client.read(timeoutMs);
    if (r.kind === 'error') return 'reading tls chunk';
    if (r.kind === 'end') break;
    try {
      await daemon.write(r.body);
    } catch {
      return 'writing block data';
    }
  }
  try {
    await daemon.writeEnd();
  } catch {
    return 'writing block data';
  }
  return undefined;
}

/** An uploaded image, the placeholder the command carries instead, and how to send the command with it. */
interface Held {
  image: HeldImage;
  mark: Uint8Array;
  write: typeof import('./upload.js').writeWithHeldImage;
}

/**
 * Runs one command for `client` and writes the final reply (CERTS.md §5 steps 2-8).
 * The caller closes the client connection afterwards.
 */
export async function proxyCommand(client: FramedConn, req: ProxyRequest, opts: ProxyOptions): Promise<ProxyOutcome> {
  const maxUpload = opts.maxUploadBytes ?? limits.maxUploadBytes;
  const chunkTimeout = opts.commandTimeoutMs ?? limits.commandTimeoutMs;
  const leaf = req.command;

  const finalReply = async (payload: Payload): Promise<ProxyOutcome> => {
    const w: Wire = { header: hdr(req.version, req.name, 0n), payload };
    const ok = payload.kind !== 'failure';
    try {
      await client.writeMessage(w);
      return { replied: true, ok, result: describePayload(payload) };
    } catch (e) {
      return { replied: false, ok: false, result: `could not write the reply to the client: ${(e as Error).message}` };
    }
  };
  const fail = (msg: string): Promise<ProxyOutcome> => finalReply({ kind: 'failure', value: msg });
  if (!isWireCommand(leaf)) return observe(client, req, leaf, opts, finalReply, fail);
  let command: Command = leaf;

  // 2. bulk image upload, into a temporary file; the command carries a placeholder
  // that is replaced by the file's octets on the way to vmmd
  const config = configOfCreate(command);
  let held: Held | undefined;
  if (config !== undefined && config.image.length === 0) {
    const mb = Math.min(config.memory, ...req.policies.map((d) => d.policy.memory));
    const max = Math.min(maxUpload, mb * 1024 * 1024);
    const maxWhy = max === maxUpload ? `the limit of ${maxUpload} bytes` : `the ${mb} MB of memory the unikernel may have`;
    const { imagePlaceholder, processUploadBudget, readUploadToFile, writeWithHeldImage } = await import('./upload.js');
    const up = await readUploadToFile(client, { timeoutMs: chunkTimeout, max, maxWhy, budget: opts.uploadBudget ?? processUploadBudget });
    if (!up.ok) {
      if (!up.refusal) return { replied: false, ok: false, result: `aborted: ${up.error}` };
      return await fail(`image upload refused: ${up.error}`);
    }
    held = { image: up.image, mark: imagePlaceholder(), write: writeWithHeldImage };
    const withImage: UnikernelConfig = { ...config, image: held.mark };
    command = { kind: 'unikernel', value: { ...(command.value as { kind: 'create' }), value: withImage } } as Command;
  }
  try {
    return await routeAndRelay(client, req, opts, command, held, finalReply, fail);
  } finally {
    await held?.image.release();
  }
}

async function routeAndRelay(
  client: FramedConn, req: ProxyRequest, opts: ProxyOptions, command: Command, held: Held | undefined,
  finalReply: (p: Payload) => Promise<ProxyOutcome>, fail: (msg: string) => Promise<ProxyOutcome>,
): Promise<ProxyOutcome> {
  const idle = opts.idleTimeoutMs === 0 ? undefined : (opts.idleTimeoutMs ?? limits.idleTimeoutMs);
  const chunkTimeout = opts.commandTimeoutMs ?? limits.commandTimeoutMs;
  // 3. route
  const { daemon, mode } = commandEndpoint(command);
  const socket = join(opts.tmpdir, 'util', SOCKET_OF_DAEMON[daemon]);
  const c = await connectDaemon(socket, opts.signal);
  if (!c.ok) {
    const o = await fail("couldn't reach service");
    return { ...o, result: `${o.result} (${c.error})` };
  }
  const { conn, release } = c.value;
  try {
    // 4.-5. the policies, deepest first, and the command, on the same connection and in
    // one write (one wake-up of vmmd): vmmd reads and answers them in order, and closes the
    // connection after a policy it refuses without reading on, so the command then never
    // runs. A command carrying an uploaded image is written on its own after the answers.
    const frames: Uint8Array[] = [];
    if (daemon === 'vmmd') {
      for (const d of req.policies) {
        frames.push(frame(encodeWire({ header: hdr(WIRE_VERSION, pathName(d.path), nextSequence()), payload: { kind: 'command', value: { kind: 'policy', value: { kind: 'add', value: d.policy } } } } as Wire)));
      }
    }
    const commandWire: Wire = { header: hdr(WIRE_VERSION, req.name, nextSequence()), payload: { kind: 'command', value: command } };
    if (held === undefined) frames.push(frame(encodeWire(commandWire)));
    try {
      if (frames.length > 0) await conn.writeBytes(frames.length === 1 ? frames[0] : Buffer.concat(frames));
    } catch {
      return await fail(daemon === 'vmmd' && req.policies.length > 0 ? 'failed to write policy' : "couldn't write unikernel to VMMD");
    }
    if (daemon === 'vmmd') {
      for (let i = 0; i < req.policies.length; i++) {
        const a = await conn.readMessage(idle);
        if (a.kind !== 'message') return await fail('read error after writing policy');
        if (a.wire.payload.kind !== 'reply') {
          return await fail(`expected success when adding policy, got: ${describePayload(a.wire.payload)}`);
        }
      }
    }
    if (held !== undefined) {
      try {
        await held.write(conn, commandWire, held.mark, held.image);
      } catch {
        return await fail("couldn't write unikernel to VMMD");
      }
    }
    // 6. block data
    if (blockUploadFollows(command)) {
      const e = await relayBlockData(client, conn, chunkTimeout);
      if (e !== undefined) return await fail(e);
    }
    // 7. the answer
    switch (mode) {
      case 'single': {
        const a = await conn.readMessage(idle);
        if (a.kind !== 'message') return await fail('error reading from fd');
        return await finalReply(a.wire.payload);
      }
      case 'read':
      case 'dump':
        return await relayStream(client, conn, req, mode === 'dump' ? idle : undefined, finalReply);
      default: {
        const never: never = mode;
        return never;
      }
    }
  } finally {
    release();
  }
}

/**
 * Forwards every daemon message to the client until the daemon closes (read mode) or the
 * block end marker arrives (dump mode). The client going away ends the relay too.
 */
async function relayStream(
  client: FramedConn, conn: FramedConn, req: ProxyRequest, idle: number | undefined,
  finalReply: (p: Payload) => Promise<ProxyOutcome>, relayed: (body: Uint8Array) => Relayed = relayedWire(req.version),
): Promise<ProxyOutcome> {
  let clientGone: string | undefined;
  let wake: (() => void) | undefined;
  const watchClient = async (): Promise<void> => {
    for (;;) {
      const r = await client.read();
      if (r.kind !== 'frame') {
        clientGone = r.kind === 'end' ? 'client closed the connection' : r.error;
        conn.close();
        wake?.();
        return;
      }
      // anything the client sends while subscribed is ignored
    }
  };
  void watchClient();
  let forwarded = 0;
  for (;;) {
    const r = await conn.read(idle);
    if (clientGone !== undefined) return { replied: false, ok: true, result: `${clientGone} after ${forwarded} messages` };
    if (r.kind !== 'frame') return finalReply({ kind: 'failure', value: 'exception while reading from fd' });
    const x = relayed(r.body);
    if (x.kind === 'bad') return finalReply({ kind: 'failure', value: 'exception while reading from fd' });
    if (x.kind === 'final') return finalReply(x.payload);
    try {
      await client.write(x.bytes);
      forwarded++;
    } catch {
      return { replied: false, ok: false, result: 'failure "exception" (writing to the client failed)' };
    }
  }
}

/** What becomes of one daemon message in a stream: forwarded, the final reply, or undecodable. */
type Relayed = { kind: 'forward'; bytes: Uint8Array } | { kind: 'final'; payload: Payload } | { kind: 'bad' };

/** Wire messages of a subscription or dump; the block end marker is the final reply. */
const relayedWire = (version: number) => (body: Uint8Array): Relayed => {
  const w = decodeWire(body);
  if (!w.ok) return { kind: 'bad' };
  if (w.value.payload.kind === 'data' && w.value.payload.value.kind === 'block' && w.value.payload.value.value.kind === 'eof') {
    return { kind: 'final', payload: w.value.payload };
  }
  // the certificate's version is 5, as is every message decodeWire accepts: forward the octets
  return { kind: 'forward', bytes: w.value.header.version === version ? body : encodeWire({ ...w.value, header: { ...w.value.header, version } }) };
};

/** Log messages of a subscription (WIRE.md §8.1): checked, forwarded as they are (version 5 only). */
const relayedLog = (body: Uint8Array): Relayed => (decodeLogWire(body).ok ? { kind: 'forward', bytes: body } : { kind: 'bad' });

// ------------------------------------------------------------------ status and event log

/** The reason given when vmmd closes on the status query: it does not know it. */
export const STATUS_UNKNOWN = 'vmmd closed the connection without answering the status query (a vmmd without it: upstream, or albatross-ts before it)';

/**
 * The leaf-only commands (WIRE.md §8.3): vmmd's status query, one answer relayed as a status
 * message; a vmmd_log subscription, relayed as a stream like console subscribe (no idle
 * deadline, the connection's total deadline). Nothing is installed: they only read, at or
 * below the name the chain gave them.
 */
async function observe(
  client: FramedConn, req: ProxyRequest, cmd: OwnLeafCommand, opts: ProxyOptions,
  finalReply: (p: Payload) => Promise<ProxyOutcome>, fail: (msg: string) => Promise<ProxyOutcome>,
): Promise<ProxyOutcome> {
  const isLog = cmd.kind === 'log';
  const socket = isLog ? logSocketPath(opts.tmpdir) : join(opts.tmpdir, 'util', SOCKET_OF_DAEMON.vmmd);
  const c = await connectDaemon(socket, opts.signal);
  if (!c.ok) {
    if (isLog) return await fail(`the event log is not available: vmmd_log is not running (${c.error})`);
    const o = await fail("couldn't reach service");
    return { ...o, result: `${o.result} (${c.error})` };
  }
  const { conn, release } = c.value;
  try {
    const h = hdr(WIRE_VERSION, req.name, nextSequence());
    try {
      await conn.write(cmd.kind === 'log' ? encodeLogWire(logMessage.subscribe(h, cmd.value.value)) : encodeStatusWire({ header: h, payload: { kind: 'command', value: cmd.value } }));
    } catch {
      return await fail(isLog ? "couldn't write the subscription to vmmd_log" : "couldn't write the status query to VMMD");
    }
    if (isLog) return await relayStream(client, conn, req, undefined, finalReply, relayedLog);
    const idle = opts.idleTimeoutMs === 0 ? undefined : (opts.idleTimeoutMs ?? limits.idleTimeoutMs);
    const a = await conn.read(idle);
    if (a.kind === 'end') return await fail(STATUS_UNKNOWN);
    if (a.kind === 'error') return await fail('error reading from fd');
    const m = decodeStatusWire(a.body);
    if (!m.ok) return await fail(`vmmd's answer to the status query does not decode: ${m.error}`);
    const p = m.value.payload;
    if (p.kind === 'failure') return await fail(p.value);
    if (p.kind !== 'reply') return await fail('vmmd answered the status query with a command');
    try {
      await client.write(encodeStatusWire({ header: hdr(req.version, req.name, 0n), payload: p }));
      return { replied: true, ok: true, result: `status reply (${p.value.length} unikernels)` };
    } catch (e) {
      return { replied: false, ok: false, result: `could not write the reply to the client: ${(e as Error).message}` };
    }
  } finally {
    release();
  }
}

// ------------------------------------------------------------------ vmmd_log

/** Endpoint of a login/logout event: the peer's IPv4 address (0.0.0.0 for others) and port. */
export function logEndpoint(name: Name, address: string | undefined, port: number | undefined): { name: Name; ip: Uint8Array; port: number } {
  const m = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/i.exec(address ?? '');
  const ip = m ? new Uint8Array(m.slice(1, 5).map(Number)) : new Uint8Array(4);
  return { name, ip, port: port ?? 0 };
}

/**
 * Reports login/logout to vmmd_log if its socket exists; silent when it does not, fails,
 * or does not acknowledge within `timeoutMs` (the log is a record, not a gate, and a
 * slow log daemon must not hold client connections).
 */
export class EventLog {
  private readonly sender: LogSender;

  constructor(private readonly tmpdir: string, private readonly timeoutMs = 2000) {
    this.sender = new LogSender(tmpdir);
  }

  async send(event: LogEvent): Promise<void> {
    return this.sendAll([{ event, timestamp: Date.now() }]);
  }

  /** Events in one write, each with its time (one wake-up of vmmd_log). */
  async sendAll(events: readonly { event: LogEvent; timestamp: number }[]): Promise<void> {
    if (!existsSync(logSocketPath(this.tmpdir))) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.sender.sendAll(events).catch(() => undefined),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, this.timeoutMs); }),
    ]);
    if (timer !== undefined) clearTimeout(timer);
  }

  close(): void {
    this.sender.close();
  }
}

export const describeRequest = (req: ProxyRequest): string => `${nameToString(req.name)} ${describeLeafCommand(req.command)}`;
