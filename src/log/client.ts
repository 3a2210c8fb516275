/**
 * Talking to vmmd_log from other programs: subscribing to events (for `log` subcommands
 * and tests) and sending events (vmmd, the TLS handler).
 */
import { join } from 'node:path';
import type { Time } from '../core/asn.js';
import type { Name } from '../core/name.js';
import { type Result, ok, err } from '../core/result.js';
import { WIRE_VERSION } from '../core/wire/common.js';
import type { SinceCount } from '../core/wire/console.js';
import { type LogEntry, type LogEvent, decodeLogWire, encodeLogWire, logEventName, logMessage } from '../core/wire/log.js';
import { FramedConn, connectUnix } from '../transport/conn.js';
import { frame } from '../core/frame.js';

export const logSocketPath = (tmpdir: string): string => join(tmpdir, 'util', 'log.sock');

export interface LogSubscription {
  /** Resolves when the stream ends: undefined on a clean end or close(), else what went wrong. */
  ended: Promise<string | undefined>;
  close(): void;
}

/**
 * Subscribes to the events at or below `name` (root: everything): first the matching
 * history (`count` n = the last n, `since` t = those at or after t), then live events.
 * `onEvent` gets each event with its sequence number. The result is an error if the
 * daemon cannot be reached or refuses.
 */
export async function subscribeLog(
  tmpdir: string,
  name: Name,
  sinceOrCount: SinceCount,
  onEvent: (entry: LogEntry, seq: bigint) => void,
): Promise<Result<LogSubscription>> {
  const c = await connectUnix(logSocketPath(tmpdir));
  if (!c.ok) return c;
  const conn = c.value;
  try {
    await conn.write(encodeLogWire(logMessage.subscribe({ version: WIRE_VERSION, sequence: 0n, name }, sinceOrCount)));
  } catch (e) {
    conn.close();
    return err(`vmmd_log: ${(e as Error).message}`);
  }
  const first = await conn.read(10_000);
  if (first.kind !== 'frame') {
    conn.close();
    return err(`vmmd_log: ${first.kind === 'error' ? first.error : 'connection closed before an answer'}`);
  }
  const a = decodeLogWire(first.body);
  if (!a.ok) {
    conn.close();
    return err(`vmmd_log: ${a.error}`);
  }
  if (a.value.payload.kind === 'failure') {
    conn.close();
    return err(`vmmd_log: ${a.value.payload.value}`);
  }
  let closing = false;
  const ended = (async (): Promise<string | undefined> => {
    for (;;) {
      const r = await conn.read();
      if (r.kind === 'end') return undefined;
      if (r.kind === 'error') return closing ? undefined : r.error;
      const m = decodeLogWire(r.body);
      if (!m.ok) {
        conn.close();
        return m.error;
      }
      if (m.value.payload.kind === 'data') onEvent(m.value.payload.value, m.value.header.sequence);
    }
  })();
  return ok({
    ended,
    close: () => {
      closing = true;
      conn.close();
    },
  });
}

/**
 * One persistent connection to vmmd_log for sending events, as vmmd does: each event
 * gets the next sequence number and is acknowledged once it is on disk. A lost
 * connection is re-established on the next send.
 */
export class LogSender {
  private conn: FramedConn | undefined;
  private seq = 1n;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly tmpdir: string) {}

  /** Sends one event and waits for the daemon's acknowledgement. */
  send(event: LogEvent, timestamp: Time = Date.now()): Promise<Result<void>> {
    return this.sendAll([{ event, timestamp }]);
  }

  /** Sends events in one write (one wake-up of the daemon) and waits for each acknowledgement. */
  sendAll(events: readonly { event: LogEvent; timestamp: Time }[]): Promise<Result<void>> {
    const p = this.chain.then(() => this.sendNow(events));
    this.chain = p;
    return p;
  }

  private async sendNow(events: readonly { event: LogEvent; timestamp: Time }[]): Promise<Result<void>> {
    if (this.conn === undefined || this.conn.isClosed) {
      const c = await connectUnix(logSocketPath(this.tmpdir));
      if (!c.ok) return c;
      this.conn = c.value;
    }
    const conn = this.conn;
    const first = this.seq;
    const frames = events.map(({ event, timestamp }) => {
      const name: Name = logEventName(event) ?? { path: [] };
      return frame(encodeLogWire(logMessage.data({ version: WIRE_VERSION, sequence: this.seq++, name }, timestamp, event)));
    });
    try {
      await conn.writeBytes(frames.length === 1 ? frames[0] : Buffer.concat(frames));
    } catch (e) {
      this.drop();
      return err(`vmmd_log: ${(e as Error).message}`);
    }
    // every answer is read, also after a refusal: the next send must not find one
    let result: Result<void> = ok(undefined);
    for (let seq = first; seq < this.seq && !conn.isClosed; seq++) {
      const r = await this.ack(conn, seq);
      if (result.ok && !r.ok) result = r;
    }
    return result;
  }

  private async ack(conn: FramedConn, seq: bigint): Promise<Result<void>> {
    const r = await conn.read(30_000);
    if (r.kind !== 'frame') {
      this.drop();
      return err(`vmmd_log: ${r.kind === 'error' ? r.error : 'connection closed before an answer'}`);
    }
    const m = decodeLogWire(r.body);
    if (!m.ok) {
      this.drop();
      return err(`vmmd_log: ${m.error}`);
    }
    if (m.value.header.sequence !== seq) {
      this.drop();
      return err(`vmmd_log: answer for sequence ${m.value.header.sequence}, expected ${seq}`);
    }
    const p = m.value.payload;
    if (p.kind === 'failure') return err(`vmmd_log: ${p.value}`);
    return ok(undefined);
  }

  private drop(): void {
    this.conn?.close();
    this.conn = undefined;
  }

  close(): void {
    this.drop();
  }
}
