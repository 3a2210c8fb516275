/**
 * Framing (WIRE.md §1.2): every message is a 4-octet big-endian length followed by that
 * many octets of body. The length is read as a *signed* 32-bit integer and a value <= 0
 * means "end of stream" (no body follows), as upstream's readers do.
 *
 * FrameReader is a pure incremental parser: push whatever the transport delivered, then
 * call next() until it says 'need-more'. It never throws on input.
 *
 * The raw-chunk sub-protocol of `block set` (§2.4) uses the same reader: chunks are
 * frames whose bodies are not DER, and `00 00 00 00` marks the end of the data. Both the
 * end marker and an end of stream come back as `{ kind: 'end', length }`; a caller that
 * needs to tell them apart looks at `length` (0 = the explicit end marker, negative = a
 * length with the top bit set). Upstream treats both the same, and so does every caller
 * of the DER protocol. After an 'end' the reader stays usable: octets that followed the
 * marker are still buffered and next() goes on parsing them. The transport's own end of
 * file is not seen here; at EOF a caller checks `buffered` to tell a clean end (0) from
 * a truncated frame.
 *
 * A body is received into one buffer of its announced length, allocated once its header was
 * read (and, with a FrameAdmission, once its first octets were shown and accepted), so that a
 * large frame costs its size once and nothing is grown by concatenation.
 */
import { limits } from './limits.js';

export type FrameResult =
  | { kind: 'frame'; body: Uint8Array }
  | { kind: 'end'; length: number }
  | { kind: 'need-more' }
  | { kind: 'error'; error: string };

/** nextPiece's results: a frame's announced length, then its body in pieces. */
export type PieceResult =
  | { kind: 'start'; length: number }
  /** `rest`: octets of this frame's body still to come. */
  | { kind: 'piece'; body: Uint8Array; rest: number }
  | { kind: 'end'; length: number }
  | { kind: 'need-more' }
  | { kind: 'error'; error: string };

/** Largest body a writer may emit: the length field is a signed 32-bit integer. */
export const MAX_WIRE_FRAME = 0x7fffffff;

/**
 * Admission of each frame before its body is buffered: `admit` sees the announced length and
 * the first min(length, peekBytes) octets of the body (a prefix of a longer body is read
 * before the rest is accepted), and returns undefined to accept or the reason to refuse
 * (the reader then fails with that reason). It is called once per frame, from next().
 */
export interface FrameAdmission {
  readonly peekBytes: number;
  admit(length: number, prefix: Uint8Array): string | undefined;
}

export class FrameReader {
  /** Unread chunks are chunks[first..]; an index rather than shift() keeps a trickle of tiny chunks linear. */
  private chunks: Uint8Array[] = [];
  private first = 0;
  /** Offset of the first unread octet in chunks[first]. */
  private head = 0;
  private total = 0;
  private failed: string | undefined;
  /**
   * The body of the frame being received, allocated at its accepted length once its header
   * was read; octets are copied into it as they arrive, so a large frame costs one buffer of
   * its size (no list of chunks and final copy, no growing by concatenation).
   */
  private body: Uint8Array | undefined;
  private fill = 0;
  /** nextPiece: octets of the current frame's body not yet returned. */
  private bodyLeft = 0;

  /**
   * @param maxFrameBytes largest body accepted; a longer announced length is an error.
   * @param admission asked about every frame before its body is buffered (see FrameAdmission).
   */
  constructor(readonly maxFrameBytes: number = limits.maxFrameBytes, private readonly admission?: FrameAdmission) {}

  /** Adds received octets. The reader keeps a reference: do not modify the chunk afterwards. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const b = this.body;
    if (b !== undefined && this.fill < b.length) {
      // while a body is incomplete nothing else is queued: the octets go straight into it
      const k = Math.min(chunk.length, b.length - this.fill);
      b.set(k === chunk.length ? chunk : chunk.subarray(0, k), this.fill);
      this.fill += k;
      if (k === chunk.length) return;
      chunk = chunk.subarray(k);
    }
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Octets received but not yet returned in a frame (with the length octets of a frame begun). */
  get buffered(): number {
    return this.total + (this.body === undefined ? 0 : 4 + this.fill);
  }

  /** Drops everything buffered, so that the memory goes with the connection rather than with the reader object. */
  discard(): void {
    this.chunks = [];
    this.first = 0;
    this.head = 0;
    this.total = 0;
    this.body = undefined;
    this.fill = 0;
    this.bodyLeft = 0;
  }

  next(): FrameResult {
    if (this.failed !== undefined) return { kind: 'error', error: this.failed };
    const b = this.body;
    if (b !== undefined) {
      if (this.fill < b.length) return { kind: 'need-more' };
      this.body = undefined;
      this.fill = 0;
      return { kind: 'frame', body: b };
    }
    if (this.total < 4) return { kind: 'need-more' };
    const l = this.peek(0, 4);
    const length = ((l[0] << 24) | (l[1] << 16) | (l[2] << 8) | l[3]) | 0; // signed
    if (length <= 0) {
      this.skip(4);
      return { kind: 'end', length };
    }
    if (length > this.maxFrameBytes) {
      this.failed = `frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes} bytes`;
      return { kind: 'error', error: this.failed };
    }
    const a = this.admission;
    if (a !== undefined) {
      const need = Math.min(length, a.peekBytes);
      if (this.total < 4 + need) return { kind: 'need-more' };
      const why = a.admit(length, this.peek(4, need));
      if (why !== undefined) {
        this.failed = why;
        return { kind: 'error', error: why };
      }
    }
    let body: Uint8Array;
    try {
      body = new Uint8Array(length);
    } catch {
      this.failed = `cannot allocate ${length} bytes for a frame`;
      return { kind: 'error', error: this.failed };
    }
    this.skip(4);
    const k = Math.min(length, this.total);
    this.takeInto(body, k);
    if (k === length) return { kind: 'frame', body };
    this.body = body;
    this.fill = k;
    return { kind: 'need-more' };
  }

  /**
   * The streaming form of next(), for frames too large to hold: `start` with the frame's
   * announced length as soon as its length octets are there (the body not awaited), then
   * the body in pieces of at most `max` octets as they arrive. End markers and errors as
   * next(). Do not call next() in the middle of a frame read this way.
   */
  nextPiece(max: number): PieceResult {
    if (this.bodyLeft > 0) {
      if (this.total === 0) return { kind: 'need-more' };
      const k = Math.min(max, this.bodyLeft, this.total);
      this.bodyLeft -= k;
      return { kind: 'piece', body: this.take(k), rest: this.bodyLeft };
    }
    return this.header();
  }

  /** Reads a frame's length octets for nextPiece. */
  private header(): PieceResult {
    if (this.failed !== undefined) return { kind: 'error', error: this.failed };
    if (this.total < 4) return { kind: 'need-more' };
    const l = this.peek(0, 4);
    const length = ((l[0] << 24) | (l[1] << 16) | (l[2] << 8) | l[3]) | 0; // signed
    this.skip(4);
    if (length <= 0) return { kind: 'end', length };
    if (length > this.maxFrameBytes) {
      this.failed = `frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes} bytes`;
      return { kind: 'error', error: this.failed };
    }
    this.bodyLeft = length;
    return { kind: 'start', length };
  }

  /** n octets from `offset` on (offset + n <= total), without consuming them: a view when they lie in one chunk. */
  private peek(offset: number, n: number): Uint8Array {
    let i = this.first;
    let off = this.head + offset;
    while (off >= this.chunks[i].length) {
      off -= this.chunks[i].length;
      i++;
    }
    const c0 = this.chunks[i];
    if (c0.length - off >= n) return c0.subarray(off, off + n);
    const out = new Uint8Array(n);
    let got = 0;
    for (; got < n; i++) {
      const c = this.chunks[i];
      while (off < c.length && got < n) out[got++] = c[off++];
      off = 0;
    }
    return out;
  }

  /** Takes n octets (n <= total): a view when they lie in one chunk, else a copy. */
  private take(n: number): Uint8Array {
    const c = this.chunks[this.first];
    if (c.length - this.head >= n) {
      const v = c.subarray(this.head, this.head + n);
      this.advance(n);
      return v;
    }
    const out = new Uint8Array(n);
    this.takeInto(out, n);
    return out;
  }

  /** Moves n octets (n <= total) into the start of `out`. */
  private takeInto(out: Uint8Array, n: number): void {
    let got = 0;
    while (got < n) {
      const c = this.chunks[this.first];
      const k = Math.min(n - got, c.length - this.head);
      out.set(c.subarray(this.head, this.head + k), got);
      got += k;
      this.advance(k);
    }
  }

  private skip(n: number): void {
    while (n > 0) {
      const k = Math.min(n, this.chunks[this.first].length - this.head);
      this.advance(k);
      n -= k;
    }
  }

  private advance(k: number): void {
    this.head += k;
    this.total -= k;
    if (this.head === this.chunks[this.first].length) {
      this.first++;
      this.head = 0;
      if (this.first === this.chunks.length) {
        this.chunks = [];
        this.first = 0;
      } else if (this.first >= 1024 && this.first * 2 >= this.chunks.length) {
        this.chunks = this.chunks.slice(this.first);
        this.first = 0;
      }
    }
  }
}

/** One frame: the 4-octet big-endian length, then the body. */
export function frame(body: Uint8Array): Uint8Array {
  if (body.length > MAX_WIRE_FRAME) throw new RangeError(`frame body of ${body.length} bytes is too large`);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** The end-of-data marker of the raw-chunk sub-protocol (a frame of length 0). */
export const endOfData = (): Uint8Array => new Uint8Array(4);

/** Splits complete frames out of a byte string (for tests and tools); stops at the first end or error. */
export function readFrames(bytes: Uint8Array, maxFrameBytes?: number): { frames: Uint8Array[]; last: FrameResult } {
  const r = new FrameReader(maxFrameBytes);
  r.push(bytes);
  const frames: Uint8Array[] = [];
  for (;;) {
    const x = r.next();
    if (x.kind !== 'frame') return { frames, last: x };
    frames.push(x.body);
  }
}
