/**
 * A strict, bounded DER structure check that runs before asn1js (which is lenient:
 * it accepts BER forms and ignores trailing bytes). It validates the TLV structure of
 * one complete value: definite minimal lengths, minimal tags, exact nesting, no
 * trailing bytes, primitive/constructed form of universal types, the content rules
 * of BOOLEAN, NULL and INTEGER, and bounds on depth, element count and size.
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

const CONSTRUCTED_UNIVERSAL = new Set([16, 17]);

class DerError extends Error {}

export interface Tlv {
  cls: number; // 0 universal, 1 application, 2 context, 3 private
  constructed: boolean;
  tag: number;
  headerLength: number;
  length: number;
}

/** Reads one TLV header at `pos`; throws DerError with the offset on malformed input. */
export function readHeader(b: Uint8Array, pos: number, end: number): Tlv {
  const start = pos;
  if (pos >= end) throw new DerError(`at byte ${pos}: truncated (expected a tag)`);
  const id = b[pos++];
  const cls = id >> 6;
  const constructed = (id & 0x20) !== 0;
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
  return { cls, constructed, tag, headerLength: pos - start, length };
}

/** Checks that `b` is exactly one well-formed DER value within the limits. */
export function checkDer(b: Uint8Array, lim: DerLimits = defaultDerLimits): Result<void> {
  if (b.length === 0) return err('empty input');
  if (b.length > lim.maxBytes) return err(`message of ${b.length} bytes exceeds the limit of ${lim.maxBytes} bytes`);
  let elements = 0;
  const walk = (pos: number, end: number, depth: number): number => {
    const start = pos;
    const h = readHeader(b, pos, end);
    pos += h.headerLength;
    if (++elements > lim.maxElements) throw new DerError(`more than ${lim.maxElements} elements`);
    if (pos + h.length > end)
      throw new DerError(`at byte ${start}: truncated (length ${h.length}, only ${end - pos} bytes left)`);
    const cend = pos + h.length;
    if (h.cls === 0) {
      if (h.tag === 0) throw new DerError(`at byte ${start}: tag 0 (end-of-contents) is not DER`);
      if (CONSTRUCTED_UNIVERSAL.has(h.tag)) {
        if (!h.constructed) throw new DerError(`at byte ${start}: SEQUENCE/SET must be constructed`);
      } else if (h.constructed) {
        throw new DerError(`at byte ${start}: constructed form of universal type ${h.tag} is not DER`);
      }
      switch (h.tag) {
        case 1:
          if (h.length !== 1) throw new DerError(`at byte ${start}: BOOLEAN must have length 1`);
          if (b[pos] !== 0 && b[pos] !== 0xff) throw new DerError(`at byte ${start}: BOOLEAN must be 00 or FF`);
          break;
        case 5:
          if (h.length !== 0) throw new DerError(`at byte ${start}: NULL must be empty`);
          break;
        case 2:
          if (h.length === 0) throw new DerError(`at byte ${start}: empty INTEGER`);
          if (h.length > 1 && ((b[pos] === 0 && (b[pos + 1] & 0x80) === 0) || (b[pos] === 0xff && (b[pos + 1] & 0x80) !== 0)))
            throw new DerError(`at byte ${start}: non-minimal INTEGER`);
          break;
      }
    }
    if (h.constructed) {
      if (depth + 1 > lim.maxDepth) throw new DerError(`at byte ${start}: nesting deeper than ${lim.maxDepth}`);
      let p = pos;
      while (p < cend) p = walk(p, cend, depth + 1);
    }
    return cend;
  };
  try {
    const end = walk(0, b.length, 0);
    if (end !== b.length) return err(`trailing bytes: ${b.length - end} bytes after the value at byte ${end}`);
    return ok(undefined);
  } catch (e) {
    if (e instanceof DerError) return err(e.message);
    throw e;
  }
}
