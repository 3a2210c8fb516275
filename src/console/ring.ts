/**
 * The pure parts of the console daemon (SEMANTICS.md §7): the ring buffer of one
 * unikernel's console, the line splitter that turns FIFO reads into bounded lines, and
 * the direct encoding of `data console` frames (the hot path: one frame per line per
 * subscriber, so it bypasses the generic codec; a test checks it against encodeWire).
 */
import { type Time, formatGeneralizedTime } from '../core/asn.js';
import { limits } from '../core/limits.js';

/** One console line as read: raw bytes (not necessarily UTF-8, kept as the unikernel wrote them). */
export interface ConsoleLine {
  timestamp: Time;
  line: Uint8Array;
}

/** Fixed-capacity ring of lines, oldest overwritten. */
export class Ring {
  private readonly slots: (ConsoleLine | undefined)[];
  /** Index of the next write. */
  private next = 0;
  private count = 0;

  constructor(readonly capacity: number = limits.consoleRingLines) {
    this.slots = new Array<ConsoleLine | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  push(l: ConsoleLine): void {
    this.slots[this.next] = l;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** All buffered lines, oldest first. */
  all(): ConsoleLine[] {
    const out: ConsoleLine[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) out.push(this.slots[(start + i) % this.capacity] as ConsoleLine);
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
    for (const l of this.slots) if (l !== undefined) b += l.line.length;
    return b;
  }
}

const TRUNCATED = Buffer.from(' [truncated]');

/**
 * Splits what is read from a FIFO into lines: an unterminated remainder waits for the
 * next read; empty lines are dropped; a line reaching `maxBytes` without a newline is
 * cut there, suffixed with ` [truncated]`, and the rest of it up to the next newline is
 * discarded. Never holds more than `maxBytes` octets between reads.
 */
export class LineSplitter {
  private partial: Buffer[] = [];
  private partialLength = 0;
  private discarding = false;

  constructor(readonly maxBytes: number = limits.consoleLineBytes) {}

  /** The complete lines contained in `chunk` (together with what was kept from before). */
  push(chunk: Uint8Array): Uint8Array[] {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const out: Uint8Array[] = [];
    let pos = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(10, pos);
      const end = nl < 0 ? buf.length : nl;
      if (this.discarding) {
        if (nl >= 0) this.discarding = false;
        pos = end + 1;
        continue;
      }
      const room = this.maxBytes - this.partialLength;
      if (end - pos >= room) {
        // the line reaches the limit: cut, mark, discard the rest up to the newline
        const parts = [...this.partial, buf.subarray(pos, pos + room), TRUNCATED];
        out.push(Buffer.concat(parts));
        this.partial = [];
        this.partialLength = 0;
        // the rest of the line is discarded: here if its newline is in this chunk, else later
        this.discarding = nl < 0;
        pos = end + 1;
        continue;
      }
      if (nl < 0) {
        // keep a copy: the caller may reuse its buffer
        this.partial.push(Buffer.from(buf.subarray(pos, end)));
        this.partialLength += end - pos;
        break;
      }
      if (this.partialLength === 0) {
        if (end > pos) out.push(Buffer.from(buf.subarray(pos, end)));
      } else {
        this.partial.push(buf.subarray(pos, end));
        out.push(Buffer.concat(this.partial));
        this.partial = [];
        this.partialLength = 0;
      }
      pos = end + 1;
    }
    return out;
  }

  /** Octets of an unterminated line held for the next read. */
  get pending(): number {
    return this.partialLength;
  }

  /** Forgets any unterminated remainder (the FIFO was closed). */
  reset(): void {
    this.partial = [];
    this.partialLength = 0;
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
const tlvSize = (n: number): number => 1 + lengthOctets(n).length + n;

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

/**
 * A complete frame (4-octet length + DER body) of
 * `Wire{header, data console(timestamp, line)}`: the same octets encodeWire produces.
 */
export function consoleFrame(prefix: ConsoleFramePrefix, time: Buffer, line: Uint8Array): Buffer {
  const lineTlv = tlvSize(line.length);
  const dataSeq = time.length + lineTlv;
  const inner3 = tlvSize(dataSeq); // SEQUENCE { time, line }
  const inner2 = tlvSize(inner3); // [3] console
  const payload = tlvSize(inner2); // [3] data
  const body = prefix.header.length + payload;
  const total = tlvSize(body);
  const out = Buffer.allocUnsafe(4 + total);
  out.writeUInt32BE(total, 0);
  let p = 4;
  const put = (tag: number, len: number): void => {
    out[p++] = tag;
    for (const b of lengthOctets(len)) out[p++] = b;
  };
  put(0x30, body);
  prefix.header.copy(out, p);
  p += prefix.header.length;
  put(0xa3, inner2);
  put(0xa3, inner3);
  put(0x30, dataSeq);
  time.copy(out, p);
  p += time.length;
  put(0x0c, line.length);
  out.set(line, p);
  return out;
}
