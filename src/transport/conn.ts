/**
 * Framed connections over any byte stream (Unix socket, TCP, TLS, stdin/stdout):
 * reads whole frames with the pure FrameReader, writes frames with back-pressure,
 * and connects to a daemon's socket with an error that names the cause.
 */
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { type FrameAdmission, FrameReader, type FrameResult, type PieceResult, frame } from '../core/frame.js';
import { type Result, ok, err } from '../core/result.js';
import { limits } from '../core/limits.js';
import { decodeWire, encodeWire, type Wire } from '../core/wire/wire.js';

export type ReadResult =
  | { kind: 'frame'; body: Uint8Array }
  /** `marker`: a zero-length frame (end of a raw chunk upload) rather than end of stream. */
  | { kind: 'end'; marker?: boolean }
  | { kind: 'error'; error: string };

/** readPiece's results: a frame's announced length, then its body in pieces (see FrameReader.nextPiece). */
export type PieceReadResult =
  | { kind: 'start'; length: number }
  | { kind: 'piece'; body: Uint8Array; rest: number }
  | { kind: 'end'; marker?: boolean }
  | { kind: 'error'; error: string };

export type MessageResult = { kind: 'message'; wire: Wire } | { kind: 'end' } | { kind: 'error'; error: string };

export class FramedConn {
  private readonly reader: FrameReader;
  private waiting: ((r: ReadResult | PieceReadResult) => void) | undefined;
  /** What the pending read asks the reader for: whole frames, or pieces of at most n octets. */
  private step: () => FrameResult | PieceResult = () => this.reader.next();
  private closed: string | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();

  /** @param admission asked about each frame before its body is buffered (vmmd's bounds, src/core/frame.ts). */
  constructor(readonly stream: Duplex, maxFrame: number = limits.maxFrameBytes, admission?: FrameAdmission) {
    this.reader = new FrameReader(maxFrame, admission);
    stream.on('data', (chunk: Buffer) => {
      this.reader.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.pump();
    });
    stream.on('end', () => this.finish('eof'));
    stream.on('close', () => this.finish('closed'));
    stream.on('error', (e: Error) => this.finish(e.message));
    // read only while a read is pending: a peer cannot make us buffer unboundedly
    stream.pause();
  }

  private finish(why: string): void {
    if (this.closed === undefined) this.closed = why;
    this.pump();
  }

  private pump(): void {
    const w = this.waiting;
    if (w === undefined) return;
    const r = this.step();
    if (r.kind === 'need-more') {
      if (this.closed === undefined) {
        this.stream.resume();
        return;
      }
      this.waiting = undefined;
      const buffered = this.reader.buffered;
      // the connection is over: what was buffered of an unfinished frame goes now
      this.reader.discard();
      if (this.closed !== 'eof' && this.closed !== 'closed') w({ kind: 'error', error: this.closed });
      else if (buffered > 0) w({ kind: 'error', error: `connection closed in the middle of a frame (${buffered} bytes)` });
      else w({ kind: 'end' });
      return;
    }
    this.waiting = undefined;
    this.stream.pause();
    if (r.kind === 'frame') w({ kind: 'frame', body: r.body });
    else if (r.kind === 'start' || r.kind === 'piece') w(r);
    else if (r.kind === 'end') w(r.length === 0 ? { kind: 'end', marker: true } : { kind: 'end' });
    else w({ kind: 'error', error: r.error });
  }

  /** The next frame, end of stream, or an error. At most one read may be pending. */
  read(timeoutMs?: number): Promise<ReadResult> {
    return this.wait(() => this.reader.next(), timeoutMs) as Promise<ReadResult>;
  }

  /**
   * A frame too large to hold, read as it arrives: first its announced length (`start`,
   * before any of its body is read), then pieces of at most `max` octets. End of stream
   * in the middle of a body comes back as `end`: the caller knows what was left.
   */
  readPiece(max: number, timeoutMs?: number): Promise<PieceReadResult> {
    return this.wait(() => this.reader.nextPiece(max), timeoutMs) as Promise<PieceReadResult>;
  }

  private wait(step: () => FrameResult | PieceResult, timeoutMs: number | undefined): Promise<ReadResult | PieceReadResult> {
    if (this.waiting !== undefined) throw new Error('FramedConn.read: a read is already pending');
    this.step = step;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      this.waiting = (r) => {
        if (timer !== undefined) {
          clearTimeout(timer);
          this.timers.delete(timer);
        }
        resolve(r);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.timers.delete(timer as NodeJS.Timeout);
          if (this.waiting !== undefined) {
            this.waiting = undefined;
            resolve({ kind: 'error', error: `timed out after ${timeoutMs} ms` });
          }
        }, timeoutMs);
        this.timers.add(timer);
      }
      this.pump();
    });
  }

  /** The next frame decoded as a wire message. */
  async readMessage(timeoutMs?: number): Promise<MessageResult> {
    const r = await this.read(timeoutMs);
    if (r.kind !== 'frame') return r;
    const w = decodeWire(r.body);
    return w.ok ? { kind: 'message', wire: w.value } : { kind: 'error', error: w.error };
  }

  /** Writes one frame; resolves once the stream accepted it (back-pressure). */
  write(body: Uint8Array): Promise<void> {
    return this.writeBytes(frame(body));
  }

  writeMessage(w: Wire): Promise<void> {
    return this.write(encodeWire(w));
  }

  /** The end-of-data marker of the raw chunk sub-protocol (a frame of length 0). */
  writeEnd(): Promise<void> {
    return this.writeBytes(new Uint8Array(4));
  }

  writeBytes(b: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.stream.destroyed || !this.stream.writable) {
        reject(new Error('connection closed'));
        return;
      }
      this.stream.write(b, (e) => (e ? reject(e) : resolve()));
    });
  }

  get isClosed(): boolean {
    return this.closed !== undefined;
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    // a pending read learns of the close (and drops the octets) through pump()
    if (this.waiting === undefined) this.reader.discard();
    // ending a stream that has ended (or is destroyed) again makes an error object, stack trace included
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
    this.stream.destroy();
  }
}

const DAEMON_OF_SOCKET: Record<string, string> = {
  'vmmd.sock': 'vmmd',
  'console.sock': 'vmmd_console',
  'stat.sock': 'vmmd_stats',
  'log.sock': 'vmmd_log',
};

/** Explains a connect error in the operator's terms. */
export function describeConnectError(path: string, e: NodeJS.ErrnoException): string {
  const base = path.split('/').pop() ?? path;
  const daemon = DAEMON_OF_SOCKET[base];
  const hint = daemon ? `: is ${daemon} running?` : '';
  switch (e.code) {
    case 'ECONNREFUSED':
      return `connection refused at ${path}${hint}`;
    case 'ENOENT':
      return `no socket at ${path}${hint}`;
    case 'EACCES':
      return `permission denied on ${path}: the socket's group must include this user`;
    default:
      return `cannot connect to ${path}: ${e.message}`;
  }
}

/** Connects to a Unix socket; the error names the path and the likely cause. */
export function connectUnix(path: string, maxFrame?: number): Promise<Result<FramedConn>> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path });
    const onError = (e: NodeJS.ErrnoException): void => resolve(err(describeConnectError(path, e)));
    s.once('error', onError);
    s.once('connect', () => {
      s.off('error', onError);
      resolve(ok(new FramedConn(s, maxFrame)));
    });
  });
}
