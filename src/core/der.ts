/**
 * Strict, bounded DER reading and writing for the wire codec.
 *
 * Reading validates the TLV structure of one complete value (definite minimal lengths,
 * minimal tags, exact nesting, no trailing bytes, primitive/constructed form of
 * universal types, the content rules of BOOLEAN, NULL and INTEGER, bounds on depth,
 * element count and size) and builds a light tree pointing into the input.
 *
 * Why not asn1js here: it is lenient (BER forms, trailing bytes, throws on some short
 * inputs) and, measured in bench/codec.ts, 100 times slower than this walk on large
 * messages, almost all of it allocation: an info reply for 10,000 unikernels took
 * seconds to encode or decode through it. asn1js remains the oracle in the tests
 * (our output must re-serialise identically through it); x509.ts reads certificates
 * from this tree as well.
 */
import { type Result, ok, err } from './result.js';
import { limits } from './limits.js';

export interface DerLimits {
  maxDepth: number;
  maxElements: number;
  maxBytes: number;
}

export const defaultDerLimits: DerLimits = {
  maxDepth: limits.maxDerDepth,
  maxElements: limits.maxDerElements,
  maxBytes: limits.maxFrameBytes,
};

class DerError extends Error {}

export interface Tlv {
  cls: number; // 0 universal, 1 application, 2 context, 3 private
  constructed: boolean;
  tag: number;
  headerLength: number;
  length: number;
}

// The header just read by scanHeader (module scratch: reading a header allocates nothing).
let hCls = 0;
let hConstructed = false;
let hTag = 0;
let hLength = 0;
let hHeaderLength = 0;

/** Reads one TLV header at `pos` into the scratch variables; throws DerError with the offset on malformed input. */
function scanHeader(b: Uint8Array, pos: number, end: number): void {
  const start = pos;
  if (pos >= end) throw new DerError(`at byte ${pos}: truncated (expected a tag)`);
  const id = b[pos++];
  let tag = id & 0x1f;
  if (tag === 0x1f) {
    tag = 0;
    let first = true;
    for (;;) {
      if (pos >= end) throw new DerError(`at byte ${pos}: truncated tag`);
      const c = b[pos++];
      if (first && c === 0x80) throw new DerError(`at byte ${start}: non-minimal tag number`);
      first = false;
      tag = tag * 128 + (c & 0x7f);
      if (tag > 0xffffff) throw new DerError(`at byte ${start}: tag number too large`);
      if ((c & 0x80) === 0) break;
    }
    if (tag < 31) throw new DerError(`at byte ${start}: non-minimal tag number`);
  }
  if (pos >= end) throw new DerError(`at byte ${pos}: truncated (expected a length)`);
  const l0 = b[pos++];
  let length: number;
  if (l0 < 0x80) length = l0;
  else if (l0 === 0x80) throw new DerError(`at byte ${pos - 1}: indefinite length is not DER`);
  else {
    const n = l0 & 0x7f;
    if (n > 4) throw new DerError(`at byte ${pos - 1}: length of ${n} octets is too large`);
    if (pos + n > end) throw new DerError(`at byte ${pos}: truncated length`);
    if (b[pos] === 0) throw new DerError(`at byte ${pos - 1}: non-minimal length`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + b[pos++];
    if (length < 0x80) throw new DerError(`at byte ${pos - n - 1}: non-minimal length`);
  }
  hCls = id >> 6;
  hConstructed = (id & 0x20) !== 0;
  hTag = tag;
  hLength = length;
  hHeaderLength = pos - start;
}

/** Reads one TLV header at `pos`; throws DerError with the offset on malformed input. */
export function readHeader(b: Uint8Array, pos: number, end: number): Tlv {
  scanHeader(b, pos, end);
  return { cls: hCls, constructed: hConstructed, tag: hTag, headerLength: hHeaderLength, length: hLength };
}

/**
 * One parsed DER value: its tag, where its content lies in `bytes`, and its children.
 *
 * The whole input is checked before the first node is made, so nodes are built on demand
 * without further checks: `children` makes the child nodes each time it is read (read it
 * once), and a decoder walking the tree keeps only the nodes on its current path alive.
 * Large messages thus never hold a tree of every element at once.
 */
export interface DerNode {
  readonly cls: number;
  readonly tag: number;
  /** cls * 2^24 + tag, for quick comparisons. */
  readonly key: number;
  readonly constructed: boolean;
  readonly bytes: Uint8Array;
  /** Offsets in `bytes`: the identifier octet, the first content octet, one past the end. */
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
  /** Children of a constructed value (empty for a primitive one), made anew on each read. */
  readonly children: DerNode[];
}

const NO_CHILDREN: DerNode[] = [];

class CheckedNode implements DerNode {
  constructor(
    readonly bytes: Uint8Array,
    readonly key: number,
    readonly constructed: boolean,
    readonly start: number,
    readonly contentStart: number,
    readonly end: number,
  ) {}

  get cls(): number {
    return Math.floor(this.key / 0x1000000);
  }

  get tag(): number {
    return this.key % 0x1000000;
  }

  get children(): DerNode[] {
    if (!this.constructed) return NO_CHILDREN;
    const out: DerNode[] = [];
    let p = this.contentStart;
    while (p < this.end) {
      const k = nodeAt(this.bytes, p, this.end);
      out.push(k);
      p = k.end;
    }
    return out;
  }
}

/** The node at `pos` of input that has passed `check` (so it cannot fail). */
function nodeAt(b: Uint8Array, pos: number, end: number): CheckedNode {
  scanHeader(b, pos, end);
  const contentStart = pos + hHeaderLength;
  return new CheckedNode(b, hCls * 0x1000000 + hTag, hConstructed, pos, contentStart, contentStart + hLength);
}

/** The strict walk over one value at `pos`: every rule of parseDer; returns the value's end. */
function check(b: Uint8Array, pos: number, end: number, depth: number, lim: DerLimits, count: { elements: number }): number {
  const start = pos;
  scanHeader(b, pos, end);
  pos += hHeaderLength;
  const length = hLength;
  const constructed = hConstructed;
  const tag = hTag;
  if (++count.elements > lim.maxElements) throw new DerError(`more than ${lim.maxElements} elements`);
  if (pos + length > end)
    throw new DerError(`at byte ${start}: truncated (length ${length}, only ${end - pos} bytes left)`);
  const cend = pos + length;
  if (hCls === 0) {
    if (tag === 0) throw new DerError(`at byte ${start}: tag 0 (end-of-contents) is not DER`);
    if (tag === 16 || tag === 17) {
      if (!constructed) throw new DerError(`at byte ${start}: SEQUENCE/SET must be constructed`);
    } else if (constructed) {
      throw new DerError(`at byte ${start}: constructed form of universal type ${tag} is not DER`);
    }
    switch (tag) {
      case 1:
        if (length !== 1) throw new DerError(`at byte ${start}: BOOLEAN must have length 1`);
        if (b[pos] !== 0 && b[pos] !== 0xff) throw new DerError(`at byte ${start}: BOOLEAN must be 00 or FF`);
        break;
      case 5:
        if (length !== 0) throw new DerError(`at byte ${start}: NULL must be empty`);
        break;
      case 2:
        if (length === 0) throw new DerError(`at byte ${start}: empty INTEGER`);
        if (length > 1 && ((b[pos] === 0 && (b[pos + 1] & 0x80) === 0) || (b[pos] === 0xff && (b[pos + 1] & 0x80) !== 0)))
          throw new DerError(`at byte ${start}: non-minimal INTEGER`);
        break;
    }
  }
  if (constructed) {
    if (depth + 1 > lim.maxDepth) throw new DerError(`at byte ${start}: nesting deeper than ${lim.maxDepth}`);
    let p = pos;
    while (p < cend) p = check(b, p, cend, depth + 1, lim, count);
  }
  return cend;
}

/**
 * Checks that `b` is exactly one well-formed DER value within the limits and returns its
 * tree. Content is not copied: nodes point into `b`.
 */
export function parseDer(b: Uint8Array, lim: DerLimits = defaultDerLimits): Result<DerNode> {
  if (b.length === 0) return err('empty input');
  if (b.length > lim.maxBytes) return err(`message of ${b.length} bytes exceeds the limit of ${lim.maxBytes} bytes`);
  try {
    const end = check(b, 0, b.length, 0, lim, { elements: 0 });
    if (end !== b.length) return err(`trailing bytes: ${b.length - end} bytes after the value at byte ${end}`);
    return ok(nodeAt(b, 0, b.length));
  } catch (e) {
    if (e instanceof DerError) return err(e.message);
    throw e;
  }
}

/** Checks that `b` is exactly one well-formed DER value within the limits. */
export function checkDer(b: Uint8Array, lim: DerLimits = defaultDerLimits): Result<void> {
  const r = parseDer(b, lim);
  return r.ok ? ok(undefined) : r;
}

// ------------------------------------------------------------------ writing

/**
 * A value ready to be written as DER: identifier octet and content (primitive octets,
 * constructed children, or an already encoded TLV). Lengths are computed once, and the
 * whole message is written into one buffer.
 */
export interface DerOut {
  /** Identifier octet (all tags of our grammars are below 31); -1 for `raw`. */
  readonly id: number;
  /** Content length in octets (for `raw`: the whole TLV's length). */
  readonly len: number;
  readonly prim?: Uint8Array;
  readonly kids?: readonly DerOut[];
  readonly raw?: Uint8Array;
}

const lengthOctets = (n: number): number => (n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 5);
export const outLength = (o: DerOut): number => (o.raw !== undefined ? o.raw.length : 1 + lengthOctets(o.len) + o.len);

export const outPrimitive = (id: number, content: Uint8Array): DerOut => ({ id, len: content.length, prim: content });
export function outConstructed(id: number, kids: readonly DerOut[]): DerOut {
  let len = 0;
  for (const k of kids) len += outLength(k);
  return { id, len, kids };
}
export const outRaw = (tlv: Uint8Array): DerOut => ({ id: -1, len: tlv.length, raw: tlv });

/** Octets of the identifier and length of a TLV with `len` octets of content. */
export const headerLength = (len: number): number => 1 + lengthOctets(len);

/** Writes a TLV's identifier octet and (minimal) length at `pos`; returns the position after them. */
export function writeHeader(buf: Uint8Array, pos: number, id: number, len: number): number {
  buf[pos++] = id;
  if (len < 0x80) buf[pos++] = len;
  else {
    const k = lengthOctets(len) - 1;
    buf[pos++] = 0x80 | k;
    for (let i = k - 1; i >= 0; i--) buf[pos++] = Math.floor(len / 2 ** (8 * i)) & 0xff;
  }
  return pos;
}

/** Copies `src` into `buf` at `pos`; short ones by hand, which is cheaper than a call to set(). */
export function put(src: Uint8Array, buf: Uint8Array, pos: number): number {
  const n = src.length;
  if (n <= 32) for (let i = 0; i < n; i++) buf[pos + i] = src[i];
  else buf.set(src, pos);
  return pos + n;
}

function writeOut(o: DerOut, buf: Uint8Array, pos: number): number {
  if (o.raw !== undefined) return put(o.raw, buf, pos);
  pos = writeHeader(buf, pos, o.id, o.len);
  if (o.prim !== undefined) return put(o.prim, buf, pos);
  for (const k of o.kids ?? []) pos = writeOut(k, buf, pos);
  return pos;
}

/** The DER octets of a prepared value. */
export function derBytes(o: DerOut): Uint8Array {
  const buf = new Uint8Array(outLength(o));
  writeOut(o, buf, 0);
  return buf;
}
