/**
 * An Albatross host as vmmd_web reaches it. `LocalInstance`: the daemons' Unix sockets under
 * --tmpdir, as vmmc_local talks to them. Every command is one connection: the command, the
 * raw chunks of an upload after it, then the answers its mode calls for.
 */
import * as path from 'node:path';
import type { FramedConn } from '../transport/conn.js';
import { connectUnix } from '../transport/conn.js';
import type { Name, Path } from '../core/name.js';
import { type Command, type Wire, command, commandEndpoint, makeHeader } from '../core/wire/wire.js';
import type { SinceCount } from '../core/wire/console.js';
import { type LogWire, decodeLogWire, encodeLogWire, logMessage } from '../core/wire/log.js';
import { type Result, ok, err } from '../core/result.js';
import { type Held, writeHeldChunks, writeHeldCommand } from './upload.js';
import { type UnikernelStatus, decodeStatusWire, encodeStatusWire } from '../core/wire/status.js';

/** Prefix of an error of Instance.open that refuses the command itself (answered as a failure) rather than failing to reach the host. */
export const REFUSED = 'refused before connecting: ';

export const SOCKET = { vmmd: 'vmmd.sock', console: 'console.sock', stats: 'stat.sock', log: 'log.sock' } as const;

/** The outcome of one command: its answers, or why the daemon could not be asked. */
export type Outcome =
  | { kind: 'answers'; wires: Wire[] }
  | { kind: 'failure'; message: string; wires: Wire[] }
  | { kind: 'unreachable'; message: string };

/** How long a command may take before vmmd_web gives up on it. */
export const COMMAND_TIMEOUT_MS = 60_000;

export interface Instance {
  readonly name: string;
  readonly kind: 'local' | 'remote';
  /** Where it is, for listings (a directory or host:port). */
  readonly where: string;
  /**
   * The path a user's listings are made at on this instance, or undefined if the user has
   * nothing there (absent: the user's own path).
   */
  scope?(userPath: Path): Path | undefined;
  /** A connection on which `cmd` has been sent (locally) or travels in the certificate (remotely). */
  open(name: Name, cmd: Command): Promise<Result<FramedConn>>;
  /** A connection on which nothing is sent yet (local only: a create whose image is streamed from a file). */
  openRaw?(cmd: Command): Promise<Result<FramedConn>>;
  /** Event log subscription (local only). */
  openLog?(name: Name, since: SinceCount): Promise<Result<FramedConn>>;
  /**
   * vmmd's status of the unikernels at or below a path, or of one unikernel (WIRE.md §8.2):
   * running ones with pid and failures, those waiting to restart with failures and the next
   * start (local only). Names are relative to a path; one unikernel's is its own.
   */
  status?(n: Name): Promise<Result<UnikernelStatus[]>>;
}

export class LocalInstance implements Instance {
  readonly kind = 'local';
  constructor(readonly name: string, readonly tmpdir: string) {}

  get where(): string {
    return this.tmpdir;
  }

  socket(daemon: keyof typeof SOCKET): string {
    return path.join(this.tmpdir, 'util', SOCKET[daemon]);
  }

  /** A connection to the daemon that serves `cmd`, on which nothing is sent yet (a create whose image is streamed). */
  openRaw(cmd: Command): Promise<Result<FramedConn>> {
    return connectUnix(this.socket(commandEndpoint(cmd).daemon));
  }

  async open(name: Name, cmd: Command): Promise<Result<FramedConn>> {
    const c = await connectUnix(this.socket(commandEndpoint(cmd).daemon));
    if (!c.ok) return c;
    try {
      await c.value.writeMessage(command(name, cmd));
    } catch (e) {
      c.value.close();
      return err(`cannot send the command: ${(e as Error).message}`);
    }
    return c;
  }

  async status(n: Name): Promise<Result<UnikernelStatus[]>> {
    const c = await connectUnix(this.socket('vmmd'));
    if (!c.ok) return c;
    try {
      await c.value.write(encodeStatusWire({ header: makeHeader(n), payload: { kind: 'command', value: { kind: 'status', value: null } } }));
      const r = await c.value.read(COMMAND_TIMEOUT_MS);
      if (r.kind === 'end') return err('vmmd closed the connection without answering the status query (a vmmd without it)');
      if (r.kind === 'error') return err(`status: ${r.error}`);
      const m = decodeStatusWire(r.body);
      if (!m.ok) return err(`status: ${m.error}`);
      const pl = m.value.payload;
      if (pl.kind === 'failure') return err(`status: ${pl.value}`);
      if (pl.kind !== 'reply') return err('status: unexpected answer');
      return ok(pl.value);
    } catch (e) {
      return err(`status: ${(e as Error).message}`);
    } finally {
      c.value.close();
    }
  }

  async openLog(name: Name, since: SinceCount): Promise<Result<FramedConn>> {
    const c = await connectUnix(this.socket('log'));
    if (!c.ok) return c;
    try {
      await c.value.write(encodeLogWire(logMessage.subscribe(makeHeader(name), since)));
    } catch (e) {
      c.value.close();
      return err(`cannot send the subscription: ${(e as Error).message}`);
    }
    return c;
  }
}

const CHUNK = 64 * 1024;

/** Writes `data` as raw chunks and the end marker (block set). */
async function writeChunks(conn: FramedConn, data: Uint8Array, stop: () => boolean): Promise<void> {
  try {
    for (let off = 0; off < data.length; off += CHUNK) {
      await new Promise((r) => setImmediate(r));
      if (stop() || conn.isClosed) return;
      await conn.write(data.subarray(off, off + CHUNK));
    }
    if (!stop() && !conn.isClosed) await conn.writeEnd();
  } catch {
    // the daemon answered early and closed: its answer says why
  }
}

/** A create's image held in a file: the command carries `mark` in its place (see src/web/upload.ts). */
export interface HeldImage {
  mark: Uint8Array;
  image: Held;
}

/** Sends the command with its image copied from the file; false (and the connection closed) if that failed. */
async function sendHeld(c: Result<FramedConn>, name: Name, cmd: Command, held: HeldImage): Promise<Result<FramedConn>> {
  if (!c.ok) return c;
  try {
    await writeHeldCommand(c.value, command(name, cmd), held.mark, held.image);
    return c;
  } catch (e) {
    c.value.close();
    return err(`cannot send the command: ${(e as Error).message}`);
  }
}

/**
 * Runs one command and collects its answers: one for `single`, up to the end marker of the
 * data for `dump`. A failure answer ends it. `upload` is streamed as raw chunks after the
 * command (from memory or a file); `held`, a create's image, is copied from its file into the
 * command's frame (local instances).
 */
export async function runCommand(inst: Instance, name: Name, cmd: Command, upload?: Uint8Array | Held, held?: HeldImage): Promise<Outcome> {
  let c: Result<FramedConn>;
  if (held !== undefined) {
    if (inst.openRaw === undefined) return { kind: 'failure', message: `${inst.name}: a streamed image needs a local instance`, wires: [] };
    c = await sendHeld(await inst.openRaw(cmd), name, cmd, held);
  } else c = await inst.open(name, cmd);
  if (!c.ok) return c.error.startsWith(REFUSED) ? { kind: 'failure', message: c.error, wires: [] } : { kind: 'unreachable', message: c.error };
  const conn = c.value;
  const { mode } = commandEndpoint(cmd);
  let answered = false;
  const up = upload === undefined ? Promise.resolve()
    : upload instanceof Uint8Array ? writeChunks(conn, upload, () => answered)
      : writeHeldChunks(conn, upload, () => answered, CHUNK);
  const wires: Wire[] = [];
  try {
    for (;;) {
      const m = await conn.readMessage(COMMAND_TIMEOUT_MS);
      if (m.kind === 'end') {
        if (wires.length === 0) return { kind: 'unreachable', message: 'the daemon closed the connection without an answer' };
        return mode === 'dump' ? { kind: 'unreachable', message: 'the connection ended before the end of the data' } : { kind: 'answers', wires };
      }
      if (m.kind === 'error') return { kind: 'unreachable', message: `communication failure: ${m.error}` };
      const p = m.wire.payload;
      wires.push(m.wire);
      if (p.kind === 'failure') return { kind: 'failure', message: p.value, wires };
      if (mode === 'single' || mode === 'read') return { kind: 'answers', wires };
      if (p.kind === 'data' && p.value.kind === 'block' && p.value.value.kind === 'eof') return { kind: 'answers', wires };
    }
  } finally {
    answered = true;
    await up;
    conn.close();
  }
}

/** Reads log messages from a subscription, decoded. */
export async function readLog(conn: FramedConn, timeoutMs?: number): Promise<{ kind: 'message'; msg: LogWire } | { kind: 'end' | 'quiet' } | { kind: 'error'; error: string }> {
  const r = await conn.read(timeoutMs);
  if (r.kind === 'end') return { kind: 'end' };
  if (r.kind === 'error') return /timed out/.test(r.error) ? { kind: 'quiet' } : r;
  const m = decodeLogWire(r.body);
  return m.ok ? { kind: 'message', msg: m.value } : { kind: 'error', error: m.error };
}
