/**
 * The pure parts of the console daemon (SEMANTICS.md §7): the ring buffer of one
 * unikernel's console, the line splitter that turns FIFO reads into bounded lines, and
 * the direct encoding of `data console` frames (the hot path: one frame per line per
 * subscriber, so it bypasses the generic codec; a test checks it against encodeWire).
 */
import { type Time, formatGeneralizedTime } from '../core/asn.js';
import { limits } from '../core/limits.js';

/**
 * One console line as read. The line holds the raw bytes the unikernel wrote (not
 * necessarily UTF-8) as a latin1 string, one character per byte: compact in memory (a
 * one-byte string, no Buffer object per line) and copied into frames without decoding.
 */
export interface ConsoleLine {
  timestamp: Time;
  line: string;
}

/** Fixed-capacity ring of lines, oldest overwritten. */
export class Ring {
  private readonly lines: string[];
  private readonly times: Float64Array;
  /** Index of the next write. */
  private next = 0;
  private count = 0;

  constructor(readonly capacity: number = limits.consoleRingLines) {
    this.lines = new Array<string>(capacity).fill('');
    this.times = new Float64Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  push(timestamp: Time, line: string): void {
    this.lines[this.next] = line;
    this.times[this.next] = timestamp;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** All buffered lines, oldest first. */
  all(): ConsoleLine[] {
    const out: ConsoleLine[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) {
      const j = (start + i) % this.capacity;
      out.push({ timestamp: this.times[j], line: this.lines[j] });
    }
    return out;
  }

  /** The last `n` lines, oldest first; a negative n means everything buffered, a huge n is clamped. */
  last(n: number): ConsoleLine[] {
    const all = this.all();
    if (n < 0 || n >= all.length) return all;
    return n === 0 ? [] : all.slice(all.length - n);
  }

  /** Buffered lines with a timestamp at or after `t`, oldest first (an early date gives everything). */
  since(t: Time): ConsoleLine[] {
    return this.all().filter((l) => l.timestamp >= t);
  }

  /** Bytes held by the lines (for measurements). */
  bytes(): number {
    let b = 0;
    for (const l of this.lines) b += l.length;
    return b;
  }
}

const TRUNCATED = ' [truncated]';

/**
 * Splits what is read from a FIFO into lines (latin1 strings of the raw bytes): an
 * unterminated remainder waits for the next read; empty lines are dropped; a line
 * reaching `maxBytes` without a newline is cut there, suffixed with ` [truncated]`, and
 * the rest of it up to the next newline is discarded. Never holds more than `maxBytes`
 * octets between reads.
 */
export class LineSplitter {
  private partial = '';
  private discarding = false;

  constructor(readonly maxBytes: number = limits.consoleLineBytes) {}

  /** The complete lines contained in `chunk` (together with what was kept from before). */
  push(chunk: Uint8Array): string[] {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const out: string[] = [];
    let pos = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(10, pos);
      const end = nl < 0 ? buf.length : nl;
      if (this.discarding) {
        if (nl >= 0) this.discarding = false;
        pos = end + 1;
        continue;
      }
      const room = this.maxBytes - this.partial.length;
      if (end - pos >= room) {
        // the line reaches the limit: cut, mark, discard the rest up to the newline
        out.push(this.partial + buf.toString('latin1', pos, pos + room) + TRUNCATED);
        this.partial = '';
        // the rest of the line is discarded: here if its newline is in this chunk, else later
        this.discarding = nl < 0;
        pos = end + 1;
        continue;
      }
      if (nl < 0) {
        this.partial += buf.toString('latin1', pos, end);
        break;
      }
      const line = this.partial + buf.toString('latin1', pos, end);
      this.partial = '';
      if (line.length > 0) out.push(line);
      pos = end + 1;
    }
    return out;
  }

  /** Octets of an unterminated line held for the next read. */
  get pending(): number {
    return this.partial.length;
  }

  /** Forgets any unterminated remainder (the FIFO was closed). */
  reset(): void {
    this.partial = '';
    this.discarding = false;
  }
}

// ------------------------------------------------------------------ direct encoding

function lengthOctets(n: number): number[] {
  if (n < 0x80) return [n];
  if (n < 0x100) return [0x81, n];
  if (n < 0x10000) return [0x82, n >> 8, n & 0xff];
  if (n < 0x1000000) return [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return [0x84, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

/** What stays the same in every frame for one (version, name): precomputed once. */
export interface ConsoleFramePrefix {
  /** DER of the header SEQUENCE. */
  header: Buffer;
}

/** Header { version, sequence 0 (8 octets), name text } as DER. */
export function consoleFramePrefix(version: number, nameText: string): ConsoleFramePrefix {
  const nameBytes = Buffer.from(nameText, 'utf8');
  const inner = Buffer.concat([
    Buffer.from([0x02, 0x01, version]),
    Buffer.from([0x04, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]),
    Buffer.from([0x0c, ...lengthOctets(nameBytes.length)]),
    nameBytes,
  ]);
  return { header: Buffer.concat([Buffer.from([0x30, ...lengthOctets(inner.length)]), inner]) };
}

/** The GeneralizedTime TLV of a timestamp (computed once per read, shared by its lines). */
export function timeTlv(t: Time): Buffer {
  const s = Buffer.from(formatGeneralizedTime(t), 'latin1');
  return Buffer.concat([Buffer.from([0x18, s.length]), s]);
}

const lenSize = (n: number): number => (n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 5);

/** Writes a DER length at `p`; returns the next position. */
function putLength(out: Buffer, p: number, n: number): number {
  if (n < 0x80) {
    out[p] = n;
    return p + 1;
  }
  const k = lenSize(n) - 1;
  out[p++] = 0x80 | k;
  for (let i = k - 1; i >= 0; i--) out[p++] = (n >>> (8 * i)) & 0xff;
  return p;
}

/**
 * The frames (4-octet length + DER body) of `Wire{header, data console(timestamp, line)}`
 * for several lines read together, in one buffer: the same octets encodeWire produces,
 * written to every subscriber of the same version with one write. (The hot path of the
 * daemon: sizes are computed without allocating.)
 */
export function consoleFrames(prefix: ConsoleFramePrefix, time: Buffer, lines: readonly string[]): Buffer {
  const hl = prefix.header.length;
  const tl = time.length;
  let total = 0;
  for (const l of lines) {
    const dataSeq = tl + 1 + lenSize(l.length) + l.length;
    const inner3 = 1 + lenSize(dataSeq) + dataSeq;
    const inner2 = 1 + lenSize(inner3) + inner3;
    const body = hl + 1 + lenSize(inner2) + inner2;
    total += 4 + 1 + lenSize(body) + body;
  }
  const out = Buffer.allocUnsafe(total);
  let p = 0;
  for (const line of lines) {
    const n = line.length;
    const dataSeq = tl + 1 + lenSize(n) + n;
    const inner3 = 1 + lenSize(dataSeq) + dataSeq;
    const inner2 = 1 + lenSize(inner3) + inner3;
    const body = hl + 1 + lenSize(inner2) + inner2;
    out.writeUInt32BE(1 + lenSize(body) + body, p);
    p += 4;
    out[p++] = 0x30;
    p = putLength(out, p, body);
    p += prefix.header.copy(out, p);
    out[p++] = 0xa3;
    p = putLength(out, p, inner2);
    out[p++] = 0xa3;
    p = putLength(out, p, inner3);
    out[p++] = 0x30;
    p = putLength(out, p, dataSeq);
    p += time.copy(out, p);
    out[p++] = 0x0c;
    p = putLength(out, p, n);
    p += out.write(line, p, n, 'latin1');
  }
  return out;
}

/** The frame of one line. */
export const consoleFrame = (prefix: ConsoleFramePrefix, time: Buffer, line: string): Buffer => consoleFrames(prefix, time, [line]);
