/**
 * vmmd_console: reads each unikernel's console FIFO into a ring buffer and streams the
 * lines to subscribers (SEMANTICS.md §7, WIRE.md §2.3). The state and its bounds live in
 * registry.ts and ring.ts; this file does the IO.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { type Name, isPath, nameToString } from '../core/name.js';
import { limits } from '../core/limits.js';
import { type Header, decodeWire, failure, reply, replyEmpty, replyString } from '../core/wire/wire.js';
import type { SinceCount } from '../core/wire/console.js';
import { fifoPath } from '../core/unikernel.js';
import { FramedConn } from '../transport/conn.js';
import { ConsoleRegistry } from './registry.js';
import { type ConsoleFramePrefix, type ConsoleLine, LineSplitter, consoleFrames, consoleFramePrefix, timeTlv } from './ring.js';
import { type Logger, serveConnection } from '../daemon/server.js';

export interface ConsoleDaemonOptions {
  tmpdir: string;
  maxSubscribers: number;
  log: Logger;
  maxInactiveRings?: number;
  maxRings?: number;
  /** Octets queued for one subscriber before it is dropped. */
  subscriberBufferBytes?: number;
  /** How long a subscriber may hold up the reading of a FIFO before it is dropped. */
  subscriberStallMs?: number;
}

interface Subscriber {
  readonly conn: FramedConn;
  readonly name: Name;
  readonly prefix: ConsoleFramePrefix;
  closed: boolean;
}

interface FifoReader {
  readonly socket: net.Socket;
  readonly splitter: LineSplitter;
}

export class ConsoleDaemon {
  readonly registry: ConsoleRegistry<Subscriber>;
  private readonly readers = new Map<string, FifoReader>();
  private readonly bufferLimit: number;
  private readonly highWater: number;
  private readonly stallMs: number;
  /** Lines read in total (for measurements). */
  linesRead = 0;

  constructor(readonly o: ConsoleDaemonOptions) {
    this.registry = new ConsoleRegistry<Subscriber>({
      maxSubscribers: o.maxSubscribers,
      maxInactiveRings: o.maxInactiveRings,
      maxRings: o.maxRings,
    });
    this.bufferLimit = o.subscriberBufferBytes ?? limits.subscriberBufferBytes;
    this.highWater = Math.floor(this.bufferLimit / 4);
    this.stallMs = o.subscriberStallMs ?? limits.subscriberStallMs;
  }

  /** Serves one client connection until it closes. */
  async handle(socket: net.Socket): Promise<void> {
    return serveConnection(socket, this.o.log, decodeWire, async (conn, w) => {
      const { header: h, payload } = w;
      if (payload.kind !== 'command' || payload.value.kind !== 'console') {
        this.o.log('warning', `closing a connection: unexpected ${payload.kind === 'command' ? `${payload.value.kind} command` : payload.kind} message`);
        await this.send(conn, failure(h, 'unexpected command'));
        return false;
      }
      const cmd = payload.value.value;
      switch (cmd.kind) {
        case 'add':
          // the connection stays open for further adds (vmmd keeps it)
          await this.send(conn, await this.add(h, cmd.value));
          return true;
        case 'subscribe':
          await this.subscribe(conn, h, cmd.value);
          return false;
        case 'list_inactive':
          if (!isPath(h.name)) await this.send(conn, failure(h, 'name used'));
          else await this.send(conn, reply(h, { kind: 'consoles', value: this.registry.listInactive(h.name.path) }));
          return false;
        default: {
          const never: never = cmd;
          return never;
        }
      }
    });
  }

  private async send(conn: FramedConn, w: Parameters<FramedConn['writeMessage']>[0]): Promise<void> {
    try {
      await conn.writeMessage(w);
    } catch {
      // the peer went away; its connection is closed by the caller
    }
  }

  private closeSubscribers(subs: Subscriber[], why: string): void {
    for (const s of subs) {
      if (s.closed) continue;
      s.closed = true;
      this.o.log('info', `closing a subscriber of ${nameToString(s.name)}: ${why}`);
      s.conn.close();
    }
  }

  private async add(h: Header, n: bigint): Promise<ReturnType<typeof replyEmpty>> {
    if (isPath(h.name)) return failure(h, 'path used instead of name');
    const name = h.name;
    const key = nameToString(name);
    const path = fifoPath(this.o.tmpdir, name);
    let socket: net.Socket;
    try {
      // a plain fd, not a FileHandle: the socket below owns and closes it
      const fd = await new Promise<number>((resolve, reject) =>
        fs.open(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK, (e, f) => (e ? reject(e) : resolve(f))));
      const isFifo = await new Promise<boolean>((resolve) => fs.fstat(fd, (e, st) => resolve(!e && st.isFIFO())));
      if (!isFifo) {
        fs.close(fd, () => undefined);
        this.o.log('error', `${path} is not a FIFO`);
        return failure(h, 'opening');
      }
      // a net.Socket reads a FIFO through the event loop (no thread blocked in read(2))
      socket = new net.Socket({ fd, readable: true, writable: false });
    } catch (e) {
      this.o.log('error', `opening ${path}: ${(e as Error).message}`);
      return failure(h, 'opening');
    }
    const r = this.registry.add(name, n);
    if (!r.ok) {
      socket.destroy();
      this.o.log('warning', `console add ${key}: ${r.error}`);
      return failure(h, r.error);
    }
    this.closeSubscribers(r.close, 'its console was dropped');
    for (const d of r.dropped) this.o.log('debug', `dropped the console of ${nameToString(d)} (inactive)`);
    // a previous reader of the same name (not yet at end of file) is replaced
    const old = this.readers.get(key);
    if (old !== undefined) {
      this.readers.delete(key);
      old.socket.destroy();
    }
    const reader: FifoReader = { socket, splitter: new LineSplitter() };
    this.readers.set(key, reader);
    socket.on('data', (chunk: Buffer) => this.onRead(name, reader, chunk));
    const finish = (why?: string): void => {
      if (this.readers.get(key) !== reader) return;
      this.readers.delete(key);
      if (why !== undefined) this.o.log('warning', `reading the console of ${key}: ${why}`);
      const d = this.registry.deactivate(name);
      this.closeSubscribers(d.close, 'its console was dropped');
      for (const x of d.dropped) this.o.log('debug', `dropped the console of ${nameToString(x)} (inactive)`);
    };
    socket.on('end', () => {
      finish();
      socket.destroy();
    });
    socket.on('error', (e) => finish(e.message));
    socket.on('close', () => finish());
    this.o.log('debug', `reading the console of ${key} from ${path}`);
    return replyEmpty(h);
  }

  /**
   * Back-pressure: while a subscriber has more than the high-water mark queued, the FIFO
   * is not read (the unikernel waits, as it would for upstream's blocking writes); a
   * subscriber that does not drain within the stall limit is dropped, so one stopped
   * reader holds up the others for at most that long.
   */
  private throttle(name: Name, reader: FifoReader, subs: Subscriber[]): void {
    const slow = subs.filter((s) => !s.closed && s.conn.stream.writableLength > this.highWater);
    if (slow.length === 0 || reader.socket.isPaused()) return;
    reader.socket.pause();
    const timer = setTimeout(() => {
      for (const s of slow) {
        if (s.closed || s.conn.stream.writableLength <= this.highWater) continue;
        this.o.log('warning', `dropping a subscriber of ${nameToString(s.name)}: it stopped reading (${s.conn.stream.writableLength} bytes unread)`);
        this.registry.unsubscribe(s.name, s);
        this.closeSubscribers([s], 'too slow');
      }
      check();
    }, this.stallMs);
    const check = (): void => {
      if (slow.some((s) => !s.closed && s.conn.stream.writableLength > this.highWater)) return;
      clearTimeout(timer);
      for (const s of slow) {
        s.conn.stream.off('drain', check);
        s.conn.stream.off('close', check);
      }
      if (this.readers.get(nameToString(name)) === reader) reader.socket.resume();
    };
    for (const s of slow) {
      s.conn.stream.on('drain', check);
      s.conn.stream.on('close', check);
    }
  }

  private onRead(name: Name, reader: FifoReader, chunk: Buffer): void {
    const lines = reader.splitter.push(chunk);
    if (lines.length === 0) return;
    const entry = this.registry.find(name);
    if (entry === undefined || entry.ring === undefined) return;
    const timestamp = Date.now();
    this.linesRead += lines.length;
    for (const line of lines) entry.ring.push(timestamp, line);
    if (entry.subscribers.length === 0) return;
    const time = timeTlv(timestamp);
    const subs = [...entry.subscribers];
    // every subscriber of one version gets the same octets: encode once per header
    const encoded = new Map<string, Buffer>();
    for (const s of subs) {
      if (s.closed) continue;
      const k = s.prefix.header.toString('latin1');
      let frames = encoded.get(k);
      if (frames === undefined) {
        frames = consoleFrames(s.prefix, time, lines);
        encoded.set(k, frames);
      }
      this.write(s, frames);
    }
    this.throttle(name, reader, subs);
  }

  /** Queues frames for a subscriber; one that has too much unread is dropped. */
  private write(s: Subscriber, frames: Buffer): boolean {
    const socket = s.conn.stream;
    if (s.closed || socket.destroyed) return false;
    socket.write(frames);
    if (socket.writableLength > this.bufferLimit) {
      this.o.log('warning', `dropping a subscriber of ${nameToString(s.name)}: more than ${this.bufferLimit} bytes unread`);
      this.registry.unsubscribe(s.name, s);
      this.closeSubscribers([s], 'too slow');
      return false;
    }
    return true;
  }

  private async subscribe(conn: FramedConn, h: Header, since: SinceCount): Promise<void> {
    if (isPath(h.name)) {
      await this.send(conn, failure(h, 'path used instead of name'));
      return;
    }
    const name = h.name;
    const sub: Subscriber = { conn, name, prefix: consoleFramePrefix(h.version, nameToString(name)), closed: false };
    const r = this.registry.subscribe(name, sub);
    this.closeSubscribers(r.close, `more than ${this.registry.maxSubscribers} subscribers`);
    try {
      await conn.writeMessage(replyString(h, r.status));
    } catch {
      this.registry.unsubscribe(name, sub);
      return;
    }
    const ring = r.entry.ring;
    if (r.status === 'subscribed' && ring !== undefined) {
      const history: ConsoleLine[] = since.kind === 'count' ? ring.last(since.value) : ring.since(since.value);
      // lines of one read share a timestamp: encode them together
      const parts: Buffer[] = [];
      for (let i = 0; i < history.length; ) {
        let j = i + 1;
        while (j < history.length && history[j].timestamp === history[i].timestamp) j++;
        parts.push(consoleFrames(sub.prefix, timeTlv(history[i].timestamp), history.slice(i, j).map((l) => l.line)));
        i = j;
      }
      if (parts.length > 0) this.write(sub, Buffer.concat(parts));
    }
    // clients send nothing: anything readable (data, end, error) ends the subscription
    if (!sub.closed) await conn.read();
    this.registry.unsubscribe(name, sub);
    sub.closed = true;
  }

  /** Stops reading every FIFO (for a clean shutdown). */
  close(): void {
    for (const r of this.readers.values()) r.socket.destroy();
    this.readers.clear();
  }
}
