/**
 * vmmd_log: appends the events of vmmd and the TLS handlers to the log file, durably
 * (write + fsync before the answer), and streams them to subscribers (SEMANTICS.md §10,
 * with albatross-ts additions: a sequence number per event in the header of `data`,
 * size-bounded rotation keeping one older file, recovery from a torn last record).
 *
 * Files: `<logfile>` (current), `<logfile>.1` (the previous one), `<logfile>.seq` (the
 * sequence number of the current file's first record, replaced atomically at rotation).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { promisify } from 'node:util';
import { writeFileAtomic } from '../io/files.js';

import { type Name, nameToString, root } from '../core/name.js';
import { limits } from '../core/limits.js';
import { type Result, ok, err } from '../core/result.js';
import { type Header, WIRE_VERSION } from '../core/wire/common.js';
import { type LogEntry, type LogWire, decodeLogWire, encodeLogRecord, encodeLogWire, logEventName, logMessage } from '../core/wire/log.js';
import type { SinceCount } from '../core/wire/console.js';
import { frame } from '../core/frame.js';
import { FramedConn } from '../transport/conn.js';
import { History, type SequencedEntry, recoverLog, selectHistory, subscriptionMatches } from './store.js';
import { type Logger, serveConnection } from '../daemon/server.js';

const write = promisify(fs.write);
const fsync = promisify(fs.fsync);

export interface LogDaemonOptions {
  logfile: string;
  /** Rotate when the current file would grow beyond this many bytes. */
  maxSize: number;
  log: Logger;
  historyEntries?: number;
  /** Octets of records kept in memory for that history (default limits.logHistoryBytes). */
  historyBytes?: number;
}

interface Subscriber {
  conn: FramedConn;
  name: Name;
  closed: boolean;
  /**
   * The history not yet written, then the live events that came meanwhile (kept in order
   * behind it); undefined once it is written. It is written as the subscriber reads, so
   * a history larger than what one subscriber may leave unread is not a reason to drop it.
   */
  backlog?: SequencedEntry[];
  next: number;
  /** Octets of the live events waiting in the backlog (dropped beyond subscriberBufferBytes). */
  liveBytes: number;
}

interface Pending {
  entry: LogEntry;
  done: (r: Result<bigint>) => void;
}



function readIf(path: string): Uint8Array | undefined {
  try {
    return fs.readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export interface LoadedLog {
  entries: SequencedEntry[];
  /** Sequence number of the next record. */
  nextSeq: bigint;
  /** Sequence number of the current file's first record. */
  base: bigint;
  /** Valid length of the current file (a torn tail beyond it). */
  validLength: number;
  torn: number;
  skipped: string[];
}

/** Reads the rotated and the current file (either may be missing). */
export function loadLog(logfile: string): LoadedLog {
  const old = readIf(`${logfile}.1`);
  const cur = readIf(logfile);
  const o = old === undefined ? undefined : recoverLog(old);
  const c = cur === undefined ? undefined : recoverLog(cur);
  const seqText = readIf(`${logfile}.seq`);
  const parsed = seqText === undefined ? NaN : Number(Buffer.from(seqText).toString('latin1').trim());
  const oldCount = BigInt(o?.entries.length ?? 0);
  const base = Number.isSafeInteger(parsed) && parsed >= 0 ? BigInt(parsed) : oldCount;
  const entries: SequencedEntry[] = [];
  let s = base - oldCount;
  for (const e of o?.entries ?? []) entries.push({ seq: s++, entry: e });
  s = base;
  for (const e of c?.entries ?? []) entries.push({ seq: s++, entry: e });
  return {
    entries,
    nextSeq: s,
    base,
    validLength: c?.validLength ?? 0,
    torn: c?.torn ?? 0,
    skipped: [...(o?.skipped ?? []).map((m) => `${logfile}.1: ${m}`), ...(c?.skipped ?? []).map((m) => `${logfile}: ${m}`)],
  };
}

export class LogDaemon {
  private fd = -1;
  private size = 0;
  private base = 0n;
  private nextSeq = 0n;
  private readonly history: History;
  private readonly subscribers = new Set<Subscriber>();
  private queue: Pending[] = [];
  private flushing = false;

  constructor(readonly o: LogDaemonOptions) {
    this.history = new History(o.historyEntries ?? limits.logHistoryEntries, o.historyBytes ?? limits.logHistoryBytes);
  }

  /** Opens the log, cutting off a torn last record, and appends the startup event. */
  async start(): Promise<Result<void>> {
    let loaded: LoadedLog;
    try {
      loaded = loadLog(this.o.logfile);
      for (const m of loaded.skipped) this.o.log('warning', `skipped a record: ${m}`);
      this.fd = fs.openSync(this.o.logfile, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o600);
      if (loaded.torn > 0) {
        this.o.log('warning', `${this.o.logfile}: cutting off ${loaded.torn} bytes of an incomplete last record`);
        fs.ftruncateSync(this.fd, loaded.validLength);
        fs.fsyncSync(this.fd);
      }
      this.size = loaded.validLength;
    } catch (e) {
      return err(`cannot open the log file ${this.o.logfile}: ${(e as Error).message}`);
    }
    this.base = loaded.base;
    this.nextSeq = loaded.nextSeq;
    for (const x of loaded.entries) this.history.push(x, encodeLogRecord(x.entry).length);
    const r = await this.append({ timestamp: Date.now(), event: { kind: 'startup', value: null } });
    return r.ok ? ok(undefined) : r;
  }

  /** SIGHUP: reopen the file (after an external rotation) and log it. */
  async reopen(): Promise<void> {
    try {
      const fd = fs.openSync(this.o.logfile, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o600);
      fs.closeSync(this.fd);
      this.fd = fd;
      this.size = fs.fstatSync(fd).size;
      if (this.size === 0) {
        // a new file (the old one was moved away): its first record is the next one
        this.base = this.nextSeq;
        writeFileAtomic(`${this.o.logfile}.seq`, `${this.base}\n`);
      }
    } catch (e) {
      this.o.log('error', `reopening ${this.o.logfile}: ${(e as Error).message}`);
    }
    await this.append({ timestamp: Date.now(), event: { kind: 'hup', value: null } });
  }

  /** Appends one entry durably; resolves with its sequence number once it is on disk. */
  append(entry: LogEntry): Promise<Result<bigint>> {
    return new Promise((done) => {
      this.queue.push({ entry, done });
      void this.flush();
    });
  }

  /** Group commit: everything queued meanwhile goes in one write and one fsync. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const records = batch.map((p) => encodeLogRecord(p.entry));
        const bytes = Buffer.concat(records);
        let failed: string | undefined;
        try {
          if (this.size > 0 && this.size + bytes.length > this.o.maxSize) this.rotate();
          let off = 0;
          while (off < bytes.length) {
            const { bytesWritten } = await write(this.fd, bytes, off, bytes.length - off, this.size + off);
            off += bytesWritten;
          }
          await fsync(this.fd);
          this.size += bytes.length;
        } catch (e) {
          failed = (e as Error).message;
          this.o.log('error', `writing ${this.o.logfile}: ${failed}`);
          // keep the file consistent: drop what may have been written of this batch
          try {
            fs.ftruncateSync(this.fd, this.size);
          } catch {
            // nothing better to do; the next start cuts a torn record
          }
        }
        for (const [i, p] of batch.entries()) {
          if (failed !== undefined) {
            p.done(err(`log file not written: ${failed}`));
            continue;
          }
          const x: SequencedEntry = { seq: this.nextSeq++, entry: p.entry };
          this.history.push(x, records[i].length);
          this.broadcast(x);
          p.done(ok(x.seq));
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private rotate(): void {
    const count = this.nextSeq - this.base;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    fs.renameSync(this.o.logfile, `${this.o.logfile}.1`);
    this.fd = fs.openSync(this.o.logfile, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o600);
    this.base += count;
    writeFileAtomic(`${this.o.logfile}.seq`, `${this.base}\n`);
    this.size = 0;
    this.o.log('info', `rotated ${this.o.logfile} (${count} records) to ${this.o.logfile}.1`);
  }

  private dataMessage(x: SequencedEntry): Buffer {
    const name = logEventName(x.entry.event) ?? root;
    const h: Header = { version: WIRE_VERSION, sequence: x.seq, name };
    return Buffer.from(frame(encodeLogWire(logMessage.data(h, x.entry.timestamp, x.entry.event))));
  }

  /** Writes the backlog while the subscriber's unread octets stay below half its limit, then waits for it to drain. */
  private pump(s: Subscriber): void {
    const backlog = s.backlog;
    if (backlog === undefined || s.closed) return;
    const stream = s.conn.stream;
    while (s.next < backlog.length) {
      if (stream.destroyed) return;
      if (stream.writableLength > limits.subscriberBufferBytes / 2) {
        stream.once('drain', () => this.pump(s));
        return;
      }
      this.send(s, this.dataMessage(backlog[s.next++]));
      if (s.closed) return;
    }
    s.backlog = undefined;
  }

  private send(s: Subscriber, bytes: Buffer): void {
    if (s.closed) return;
    const stream = s.conn.stream;
    if (stream.destroyed) return;
    stream.write(bytes);
    if (stream.writableLength > limits.subscriberBufferBytes) this.drop(s);
  }

  private drop(s: Subscriber): void {
    this.o.log('warning', `dropping a subscriber of ${nameToString(s.name)}: more than ${limits.subscriberBufferBytes} bytes unread`);
    s.closed = true;
    s.backlog = undefined;
    this.subscribers.delete(s);
    s.conn.close();
  }

  private broadcast(x: SequencedEntry): void {
    let bytes: Buffer | undefined;
    for (const s of this.subscribers) {
      if (!subscriptionMatches(s.name, x.entry.event)) continue;
      bytes ??= this.dataMessage(x);
      if (s.backlog !== undefined) {
        s.backlog.push(x);
        s.liveBytes += bytes.length;
        if (s.liveBytes > limits.subscriberBufferBytes) this.drop(s);
        continue;
      }
      this.send(s, bytes);
    }
  }

  private async reply(conn: FramedConn, m: LogWire): Promise<boolean> {
    try {
      await conn.write(encodeLogWire(m));
      return true;
    } catch {
      return false;
    }
  }

  /** Serves one connection: events (answered after they are on disk) or one subscription. */
  async handle(socket: net.Socket): Promise<void> {
    return serveConnection(socket, this.o.log, decodeLogWire, async (conn, w) => {
      const { header: h, payload } = w;
      switch (payload.kind) {
        case 'data': {
          const a = await this.append({ timestamp: payload.value.timestamp, event: payload.value.event });
          const ans = a.ok ? logMessage.replyEmpty(h) : logMessage.failure(h, a.error);
          return this.reply(conn, ans);
        }
        case 'command':
          await this.subscribe(conn, h, payload.value.value);
          return false;
        case 'reply':
        case 'failure':
          await this.reply(conn, logMessage.failure(h, 'unexpected message'));
          return false;
        default: {
          const never: never = payload;
          return never;
        }
      }
    });
  }

  private async subscribe(conn: FramedConn, h: Header, since: SinceCount): Promise<void> {
    const s: Subscriber = { conn, name: h.name, closed: false, next: 0, liveBytes: 0 };
    if (!(await this.reply(conn, logMessage.replyEmpty(h)))) return;
    s.backlog = selectHistory(this.history.all(), h.name, since);
    this.subscribers.add(s);
    this.pump(s);
    if (s.closed) return;
    // clients send nothing more: anything readable ends the subscription
    await conn.read();
    s.closed = true;
    s.backlog = undefined;
    this.subscribers.delete(s);
  }

  close(): void {
    for (const s of this.subscribers) s.conn.close();
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}

