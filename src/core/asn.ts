/**
 * A small combinator layer: each ASN.1 type is declared once as a Codec, and encoding
 * (to DER through der.ts's writer), strict decoding (from der.ts's checked tree) and a
 * JSON form (for vmmc_inspect) are all derived from that one declaration.
 *
 * Decoding is strict where upstream's encoder is canonical (minimal INTEGERs,
 * BOOLEAN 00/FF, exact SEQUENCE contents, known CHOICE tags) and lenient only where
 * the spec says upstream's decoder is (SET OF order, GeneralizedTime forms).
 */
import {
  type DerLimits, type DerNode, type DerOut, defaultDerLimits, derBytes, outConstructed, outPrimitive, outRaw, parseDer,
} from './der.js';
import { type Result, ok, err } from './result.js';
import { type Name, parseName, nameToString } from './name.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
/** A decoded DER value (the input of `decode`). */
export type Node = DerNode;
/** A value ready to be written (the output of `encode`). */
export type Out = DerOut;

/**
 * Thrown inside decoders only; converted to an error value at the boundary.
 * Decoders get the location of a value relative to their caller (usually ''), and each
 * combinator prefixes its step (`.field`, `[i]`, `.alternative`) while the error
 * unwinds: no location string is built for values that decode fine.
 */
export class DecodeError extends Error {
  constructor(public loc: string, public readonly detail: string) {
    super(`${loc}: ${detail}`);
  }
  /** The same error one step further out. */
  within(step: string): DecodeError {
    this.loc = step + this.loc;
    this.message = `${this.loc}: ${this.detail}`;
    return this;
  }
}

const fail = (at: string, msg: string): never => {
  throw new DecodeError(at, msg);
};

/** Tag key: class (0 universal .. 3 private) and number. */
export type TagKey = number;
export const tagKey = (cls: number, n: number): TagKey => cls * 0x1000000 + n;
export const ctx = (n: number): TagKey => tagKey(2, n);
const U = (n: number): TagKey => tagKey(0, n);

const CLASS_NAMES = ['UNIVERSAL', 'APPLICATION', '', 'PRIVATE'];
const UNIVERSAL_NAMES: Record<number, string> = {
  1: 'BOOLEAN', 2: 'INTEGER', 4: 'OCTET STRING', 5: 'NULL', 6: 'OBJECT IDENTIFIER', 12: 'UTF8String',
  16: 'SEQUENCE', 17: 'SET', 23: 'UTCTime', 24: 'GeneralizedTime',
};
export function describeTag(k: TagKey): string {
  const cls = Math.floor(k / 0x1000000);
  const n = k % 0x1000000;
  if (cls === 0) return UNIVERSAL_NAMES[n] ?? `UNIVERSAL ${n}`;
  if (cls === 2) return `[${n}]`;
  return `[${CLASS_NAMES[cls]} ${n}]`;
}

export const nodeTag = (n: Node): TagKey => n.key;
function nodeChildren(n: Node, at: string): Node[] {
  if (!n.constructed) fail(at, 'expected a constructed value');
  return n.children;
}
const nodeContent = (n: Node): Uint8Array => n.bytes.subarray(n.contentStart, n.end);
function expectTag(n: Node | undefined, k: TagKey, at: string, what: string): Node {
  if (n === undefined) return fail(at, `missing ${what}`);
  if (nodeTag(n) !== k) fail(at, `expected ${what} (${describeTag(k)}), got ${describeTag(nodeTag(n))}`);
  return n;
}

export interface Codec<T> {
  /** Human name of the type, used in error messages. */
  readonly what: string;
  /** The outer tags this type can start with (for CHOICE and OPTIONAL look-ahead). */
  readonly tags: ReadonlySet<TagKey>;
  encode(v: T): Out;
  decode(n: Node, at: string): T;
  toJson(v: T): Json;
  fromJson(j: Json | undefined, at: string): T;
}

export type TypeOf<C> = C extends Codec<infer T> ? T : never;

// ------------------------------------------------------------------ helpers

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
function unhex(j: Json | undefined, at: string): Uint8Array {
  if (typeof j !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(j)) return fail(at, 'expected a hex string');
  return new Uint8Array(Buffer.from(j, 'hex'));
}
function jsonBig(v: bigint): Json {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}
function bigOfJson(j: Json | undefined, at: string): bigint {
  if (typeof j === 'number' && Number.isSafeInteger(j)) return BigInt(j);
  if (typeof j === 'string' && /^-?[0-9]+$/.test(j)) return BigInt(j);
  return fail(at, 'expected an integer');
}
const primitive = (tag: number, content: Uint8Array): Out => outPrimitive(tag, content);

/** The DER bytes of an encoded value. */
export const derOf = (o: Out): Uint8Array => derBytes(o);

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

// ------------------------------------------------------------------ INTEGER

export const INT63_MIN = -(2n ** 62n);
export const INT63_MAX = 2n ** 62n - 1n;

function decodeIntegerContent(c: Uint8Array, at: string): bigint {
  if (c.length === 0) fail(at, 'empty INTEGER');
  if (c.length > 8) fail(at, `INTEGER of ${c.length} octets is out of range`);
  let v = 0n;
  for (const x of c) v = (v << 8n) | BigInt(x);
  if (c[0] & 0x80) v -= 1n << BigInt(8 * c.length);
  return v;
}

/** Minimal two's complement octets of an integer. */
export function integerContent(v: bigint | number): Uint8Array {
  if (typeof v === 'number') {
    if (v >= -0x80000000 && v <= 0x7fffffff && Number.isInteger(v)) return smallIntegerContent(v);
    v = BigInt(v);
  }
  if (v >= -128n && v <= 127n) return new Uint8Array([Number(v) & 0xff]);
  const out: number[] = [];
  let x = v;
  for (;;) {
    out.unshift(Number(x & 0xffn));
    const rest = x >> 8n;
    const sign = (out[0] & 0x80) !== 0;
    if ((rest === 0n && !sign) || (rest === -1n && sign)) break;
    x = rest;
  }
  return new Uint8Array(out);
}

function smallIntegerContent(v: number): Uint8Array {
  const n = v >= -0x80 && v < 0x80 ? 1 : v >= -0x8000 && v < 0x8000 ? 2 : v >= -0x800000 && v < 0x800000 ? 3 : 4;
  const out = new Uint8Array(n);
  for (let i = n - 1, x = v; i >= 0; i--, x >>= 8) out[i] = x & 0xff;
  return out;
}

function makeInteger<T>(
  what: string, min: bigint, max: bigint, to: (v: bigint) => T, from: (v: T) => bigint, toSmall: (v: number) => T,
): Codec<T> {
  const check = (v: bigint, at: string): bigint => {
    if (v < min || v > max) fail(at, `${what} ${v} out of range [${min}, ${max}]`);
    return v;
  };
  const minN = Number(min);
  const maxN = Number(max);
  const tag = U(2);
  return {
    what,
    tags: new Set([U(2)]),
    encode: (v) => {
      if (typeof v === 'number' && v >= -0x80000000 && v <= 0x7fffffff && Number.isInteger(v) && BigInt(v) >= min && BigInt(v) <= max)
        return primitive(2, smallIntegerContent(v));
      const b = from(v);
      if (b < min || b > max) throw new RangeError(`${what} ${b} out of range`);
      return primitive(2, integerContent(b));
    },
    decode: (n, at) => {
      const x = expectTag(n, tag, at, what);
      const b = x.bytes;
      const s = x.contentStart;
      const len = x.end - s;
      if (len < 1 || len > 6) return to(check(decodeIntegerContent(nodeContent(x), at), at));
      // up to 48 bits: exact in a double, no bigint needed
      let v = (b[s] << 24) >> 24;
      for (let i = s + 1; i < x.end; i++) v = v * 256 + b[i];
      if (v < minN || v > maxN) fail(at, `${what} ${v} out of range [${min}, ${max}]`);
      return toSmall(v);
    },
    toJson: (v) => jsonBig(from(v)),
    fromJson: (j, at) => to(check(bigOfJson(j, at), at)),
  };
}

/** INTEGER in upstream's 63-bit range, as bigint. */
export const bigInt: Codec<bigint> = makeInteger('INTEGER', INT63_MIN, INT63_MAX, (v) => v, (v) => v, BigInt);
/** INTEGER as a JavaScript number: values beyond ±(2^53-1) are refused. */
export const int: Codec<number> = makeInteger(
  'INTEGER', BigInt(Number.MIN_SAFE_INTEGER), BigInt(Number.MAX_SAFE_INTEGER), Number, BigInt, (v) => v);
/** INTEGER carrying a signed 32-bit value. */
export const int32: Codec<number> = makeInteger('INTEGER (32 bit)', -(2n ** 31n), 2n ** 31n - 1n, Number, BigInt, (v) => v);
/** INTEGER that must not be negative. */
export const uint: Codec<number> = makeInteger('INTEGER (>= 0)', 0n, BigInt(Number.MAX_SAFE_INTEGER), Number, BigInt, (v) => v);

// ------------------------------------------------------------------ simple types

const TRUE_OCTET = new Uint8Array([0xff]);
const FALSE_OCTET = new Uint8Array([0]);
const NO_OCTETS = new Uint8Array(0);

export const bool: Codec<boolean> = {
  what: 'BOOLEAN',
  tags: new Set([U(1)]),
  encode: (v) => primitive(1, v ? TRUE_OCTET : FALSE_OCTET),
  decode: (n, at) => {
    const c = nodeContent(expectTag(n, U(1), at, 'BOOLEAN'));
    if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) fail(at, 'BOOLEAN must be one octet 00 or FF');
    return c[0] === 0xff;
  },
  toJson: (v) => v,
  fromJson: (j, at) => (typeof j === 'boolean' ? j : fail(at, 'expected true or false')),
};

export const nul: Codec<null> = {
  what: 'NULL',
  tags: new Set([U(5)]),
  encode: () => primitive(5, NO_OCTETS),
  decode: (n, at) => {
    if (nodeContent(expectTag(n, U(5), at, 'NULL')).length !== 0) fail(at, 'NULL must be empty');
    return null;
  },
  toJson: () => null,
  fromJson: (j, at) => (j === null || j === undefined ? null : fail(at, 'expected null')),
};

export const octets: Codec<Uint8Array> = {
  what: 'OCTET STRING',
  tags: new Set([U(4)]),
  encode: (v) => primitive(4, v),
  decode: (n, at) => {
    const x = expectTag(n, U(4), at, 'OCTET STRING');
    if (x.constructed) fail(at, 'constructed OCTET STRING');
    return x.bytes.slice(x.contentStart, x.end);
  },
  toJson: (v) => hex(v),
  fromJson: (j, at) => unhex(j, at),
};

/** OCTET STRING of exactly `size` octets. */
export function sizedOctets(what: string, size: number): Codec<Uint8Array> {
  return refine(octets, what, (v, at) => {
    if (v.length !== size) fail(at, `${what} must be ${size} octets, got ${v.length}`);
  });
}

/** Int64: 8-octet big-endian two's complement in an OCTET STRING. */
export const int64: Codec<bigint> = {
  what: 'Int64',
  tags: new Set([U(4)]),
  encode: (v) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, BigInt.asIntN(64, v));
    return primitive(4, b);
  },
  decode: (n, at) => {
    const c = octets.decode(n, at);
    if (c.length !== 8) fail(at, `Int64 must be 8 octets, got ${c.length}`);
    return new DataView(c.buffer, c.byteOffset, 8).getBigInt64(0);
  },
  toJson: (v) => jsonBig(v),
  fromJson: (j, at) => {
    const v = bigOfJson(j, at);
    if (v < -(2n ** 63n) || v >= 2n ** 63n) fail(at, 'Int64 out of range');
    return v;
  },
};

// UTF8String: upstream does not validate UTF-8, so bytes that are not valid UTF-8
// are kept losslessly as lone surrogates U+DC80..U+DCFF (the "surrogateescape" idea).
const fatalDecoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

export function bytesToText(b: Uint8Array): string {
  try {
    return fatalDecoder.decode(b);
  } catch {
    let s = '';
    let i = 0;
    while (i < b.length) {
      const n = utf8SeqLength(b, i);
      if (n > 0) {
        s += fatalDecoder.decode(b.subarray(i, i + n));
        i += n;
      } else {
        s += String.fromCharCode(0xdc00 | b[i]);
        i += 1;
      }
    }
    return s;
  }
}
function utf8SeqLength(b: Uint8Array, i: number): number {
  const c = b[i];
  let n: number;
  if (c < 0x80) return 1;
  else if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) n = 3;
  else if (c >= 0xf0 && c <= 0xf4) n = 4;
  else return 0;
  if (i + n > b.length) return 0;
  try {
    fatalDecoder.decode(b.subarray(i, i + n));
    return n;
  } catch {
    return 0;
  }
}
/** Node's latin1 slice of any Uint8Array (what Buffer#toString('latin1') uses), if present. */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (this: Uint8Array, start: number, end: number) => string }).latin1Slice;

/** bytesToText of b[start..end), without copying when the text is ASCII (names, devices, arguments). */
function textAt(b: Uint8Array, start: number, end: number): string {
  for (let i = start; i < end; i++) if (b[i] >= 0x80) return bytesToText(b.subarray(start, end));
  return latin1Slice !== undefined ? latin1Slice.call(b, start, end) : Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}

const ESCAPED = /[\udc80-\udcff]/;
export function textToBytes(s: string): Uint8Array {
  if (s.length < 64) {
    // short ASCII strings (names, devices, arguments) without TextEncoder's overhead
    const out = new Uint8Array(s.length);
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      out[i] = c;
    }
    if (i === s.length) return out;
  }
  if (!ESCAPED.test(s)) return encoder.encode(s);
  const parts: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff && !(i > 0 && s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff)) {
      parts.push(c & 0xff);
    } else {
      const cp = s.codePointAt(i) as number;
      const ch = String.fromCodePoint(cp);
      for (const x of encoder.encode(ch)) parts.push(x);
      if (cp > 0xffff) i++;
    }
  }
  return new Uint8Array(parts);
}

export const utf8: Codec<string> = {
  what: 'UTF8String',
  tags: new Set([U(12)]),
  encode: (v) => primitive(12, textToBytes(v)),
  decode: (n, at) => {
    const x = expectTag(n, U(12), at, 'UTF8String');
    if (x.constructed) fail(at, 'constructed UTF8String');
    return textAt(x.bytes, x.contentStart, x.end);
  },
  toJson: (v) => v,
  fromJson: (j, at) => (typeof j === 'string' ? j : fail(at, 'expected a string')),
};

/** A Name in its textual form (WIRE.md §4.3): canonical on encode, validated on decode. */
export const name: Codec<Name> = {
  what: 'Name',
  tags: utf8.tags,
  encode: (v) => utf8.encode(nameToString(v)),
  decode: (n, at) => {
    const s = utf8.decode(n, at);
    const r = parseName(s);
    return r.ok ? r.value : fail(at, `${r.error} ${JSON.stringify(s)}`);
  },
  toJson: (v) => nameToString(v),
  fromJson: (j, at) => {
    const r = parseName(utf8.fromJson(j, at));
    return r.ok ? r.value : fail(at, r.error);
  },
};

// ------------------------------------------------------------------ time

/**
 * A point in time as milliseconds since the epoch. Upstream keeps sub-millisecond
 * precision and emits `.000` for a fraction below 1 ms; such a time is represented
 * with a fractional part (x.5) so that it re-encodes with a fraction.
 */
export type Time = number;

const pad = (n: number, w: number): string => String(n).padStart(w, '0');

export function formatGeneralizedTime(t: Time): string {
  const whole = Math.floor(t);
  const d = new Date(whole);
  const base = `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCDate(), 2)}${pad(d.getUTCHours(), 2)}${pad(d.getUTCMinutes(), 2)}${pad(d.getUTCSeconds(), 2)}`;
  const hasFraction = t !== whole || whole % 1000 !== 0;
  return hasFraction ? `${base}.${pad(((whole % 1000) + 1000) % 1000, 3)}Z` : `${base}Z`;
}

const GT_RE = /^(\d{4})(\d{2})(\d{2})(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,3}))?)?)?(Z|[+-]\d{4})?$/;

export function parseGeneralizedTime(s: string): Result<Time> {
  const m = GT_RE.exec(s);
  if (!m) return err(`invalid GeneralizedTime ${JSON.stringify(s)}`);
  const [, y, mo, d, h, mi = '0', se = '0', frac, zone] = m;
  const nums = [y, mo, d, h, mi, se].map(Number);
  if (nums[1] < 1 || nums[1] > 12 || nums[2] < 1 || nums[2] > 31 || nums[3] > 23 || nums[4] > 59 || nums[5] > 60)
    return err(`invalid GeneralizedTime ${JSON.stringify(s)}`);
  let t = Date.UTC(nums[0], nums[1] - 1, nums[2], nums[3], nums[4], nums[5]);
  if (nums[0] < 100) t = new Date(t).setUTCFullYear(nums[0]);
  if (frac !== undefined) {
    const ms = Number(frac); // upstream reads the digits as milliseconds
    t += ms === 0 ? 0.5 : ms;
  }
  if (zone !== undefined && zone !== 'Z') {
    const sign = zone[0] === '+' ? 1 : -1;
    const off = (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5))) * 60000;
    if (Number(zone.slice(1, 3)) > 23 || Number(zone.slice(3, 5)) > 59) return err(`invalid time zone ${zone}`);
    t -= sign * off;
  }
  return ok(t);
}

/**
 * parseGeneralizedTime of the forms upstream emits, `YYYYMMDDHHMMSSZ` and
 * `YYYYMMDDHHMMSS.fffZ` (years 100 and later), read from the octets without a string or a
 * regular expression; undefined for anything else, which then takes the general path
 * (with its error messages).
 */
function commonGeneralizedTime(b: Uint8Array, start: number, end: number): Time | undefined {
  const len = end - start;
  if ((len !== 15 && len !== 19) || b[end - 1] !== 0x5a) return undefined;
  const num = (i: number, w: number): number => {
    let v = 0;
    for (let k = start + i; k < start + i + w; k++) {
      const d = b[k] - 0x30;
      if (d < 0 || d > 9) return -1;
      v = v * 10 + d;
    }
    return v;
  };
  const y = num(0, 4);
  const mo = num(4, 2);
  const d = num(6, 2);
  const h = num(8, 2);
  const mi = num(10, 2);
  const se = num(12, 2);
  if (y < 100 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60) return undefined;
  const t = Date.UTC(y, mo - 1, d, h, mi, se);
  if (len === 15) return t;
  if (b[start + 14] !== 0x2e) return undefined;
  const ms = num(15, 3);
  if (ms < 0) return undefined;
  return t + (ms === 0 ? 0.5 : ms);
}

const ascii = (s: string): Uint8Array => encoder.encode(s);
const fromAscii = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

export const generalizedTime: Codec<Time> = {
  what: 'GeneralizedTime',
  tags: new Set([U(24)]),
  encode: (t) => primitive(24, ascii(formatGeneralizedTime(t))),
  decode: (n, at) => {
    const x = expectTag(n, U(24), at, 'GeneralizedTime');
    const quick = commonGeneralizedTime(x.bytes, x.contentStart, x.end);
    if (quick !== undefined) return quick;
    const r = parseGeneralizedTime(fromAscii(nodeContent(x)));
    return r.ok ? r.value : fail(at, r.error);
  },
  toJson: (t) => timeToJson(t),
  fromJson: (j, at) => timeOfJson(j, at),
};

/** ISO 8601 form for JSON; a fraction is shown exactly when the wire form has one. */
export function timeToJson(t: Time): string {
  const g = formatGeneralizedTime(t);
  return `${g.slice(0, 4)}-${g.slice(4, 6)}-${g.slice(6, 8)}T${g.slice(8, 10)}:${g.slice(10, 12)}:${g.slice(12)}`;
}
function timeOfJson(j: Json | undefined, at: string): Time {
  if (typeof j !== 'string') return fail(at, 'expected an ISO 8601 time');
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{3})?Z$/.exec(j);
  if (!m) return fail(at, `expected a time like 2024-01-02T03:04:05.678Z, got ${JSON.stringify(j)}`);
  const r = parseGeneralizedTime(`${m[1]}${m[2]}${m[3]}${m[4]}${m[5]}${m[6]}${m[7] ?? ''}Z`);
  return r.ok ? r.value : fail(at, r.error);
}

export function formatUtcTime(t: Time): string {
  const g = formatGeneralizedTime(Math.floor(t / 1000) * 1000);
  return `${g.slice(2, 14)}Z`;
}

/** UTCTime (`YYMMDDHHMMSSZ`), used by the older log family. */
export const utcTime: Codec<Time> = {
  what: 'UTCTime',
  tags: new Set([U(23)]),
  encode: (t) => primitive(23, ascii(formatUtcTime(t))),
  decode: (n, at) => {
    const s = fromAscii(nodeContent(expectTag(n, U(23), at, 'UTCTime')));
    const m = /^(\d{2})(\d{10})Z$/.exec(s);
    if (!m) return fail(at, `invalid UTCTime ${JSON.stringify(s)}`);
    const yy = Number(m[1]);
    const r = parseGeneralizedTime(`${yy >= 50 ? 19 : 20}${m[1]}${m[2]}Z`);
    return r.ok ? r.value : fail(at, r.error);
  },
  toJson: (t) => timeToJson(Math.floor(t / 1000) * 1000),
  fromJson: (j, at) => Math.floor(timeOfJson(j, at) / 1000) * 1000,
};

// ------------------------------------------------------------------ combinators

/** A codec with an extra check on decode (and from JSON). */
export function refine<T>(c: Codec<T>, what: string, check: (v: T, at: string) => void): Codec<T> {
  return {
    what,
    tags: c.tags,
    encode: c.encode,
    decode: (n, at) => {
      const v = c.decode(n, at);
      check(v, at);
      return v;
    },
    toJson: c.toJson,
    fromJson: (j, at) => {
      const v = c.fromJson(j, at);
      check(v, at);
      return v;
    },
  };
}

/**
 * A codec for B carried as A: `decode` maps A to B (and may fail), `encode` maps back.
 * The JSON form is A's unless `json` is given.
 */
export function map<A, B>(c: Codec<A>, what: string, to: (a: A, at: string) => B, from: (b: B) => A): Codec<B> {
  return {
    what,
    tags: c.tags,
    encode: (v) => c.encode(from(v)),
    decode: (n, at) => to(c.decode(n, at), at),
    toJson: (v) => c.toJson(from(v)),
    fromJson: (j, at) => to(c.fromJson(j, at), at),
  };
}

export const decodeFail = fail;

const contextId = (n: number): number => {
  if (n >= 31) throw new RangeError(`context tag [${n}] needs the high-tag form, which our grammars never use`);
  return 0xa0 | n;
};

export function explicit<T>(n: number, c: Codec<T>): Codec<T> {
  const k = ctx(n);
  const id = contextId(n);
  return {
    what: `[${n}] ${c.what}`,
    tags: new Set([k]),
    encode: (v) => outConstructed(id, [c.encode(v)]),
    decode: (node, at) => {
      const kids = nodeChildren(expectTag(node, k, at, `[${n}]`), at);
      if (kids.length !== 1) fail(at, `[${n}] must contain exactly one value, got ${kids.length}`);
      return c.decode(kids[0], at);
    },
    toJson: c.toJson,
    fromJson: c.fromJson,
  };
}

export interface Optional<T> {
  readonly optional: Codec<T>;
}
export const opt = <T>(c: Codec<T>): Optional<T> => ({ optional: c });

type Field = Codec<any> | Optional<any>;
type Fields = Record<string, Field>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type SeqValue<F extends Fields> = Simplify<
  { -readonly [K in keyof F as F[K] extends Optional<any> ? never : K]: F[K] extends Codec<infer T> ? T : never } & {
    -readonly [K in keyof F as F[K] extends Optional<any> ? K : never]?: F[K] extends Optional<infer T> ? T : never;
  }
>;

export interface SeqCodec<T> extends Codec<T> {
  encodeChildren(v: T): Out[];
  decodeChildren(kids: Node[], at: string): T;
}

/**
 * `c.decode(n, at)`, with `step` added to a DecodeError's location: a string (`.field`,
 * `.alternative`, made once per codec) or a list index, written `[i]` only on error.
 */
function decodeStep<T>(c: Codec<T>, n: Node, at: string, step: string | number): T {
  try {
    return c.decode(n, at);
  } catch (e) {
    if (e instanceof DecodeError) throw e.within(typeof step === 'number' ? `[${step}]` : step);
    throw e;
  }
}

/** SEQUENCE with named fields, in declaration order; optional fields by tag look-ahead. */
export function seq<F extends Fields>(what: string, fields: F): SeqCodec<SeqValue<F>> {
  const entries = Object.entries(fields).map(([k, f]) => {
    const optional = 'optional' in f;
    const codec: Codec<unknown> = optional ? (f as Optional<unknown>).optional : (f as Codec<unknown>);
    return { k, optional, codec, step: `.${k}` };
  });
  const encodeChildren = (v: SeqValue<F>): Out[] => {
    // sized for every field and cut to the ones present: growing from empty would allocate
    // room for 16 on the first push, for each of thousands of small sequences
    const out: Out[] = new Array(entries.length);
    let n = 0;
    const rec = v as Record<string, unknown>;
    for (const e of entries) {
      const x = rec[e.k];
      if (x === undefined) {
        if (!e.optional) throw new TypeError(`${what}.${e.k} is required`);
      } else out[n++] = e.codec.encode(x);
    }
    out.length = n;
    return out;
  };
  const decodeChildren = (kids: Node[], at: string): SeqValue<F> => {
    const out: Record<string, unknown> = {};
    let i = 0;
    for (const e of entries) {
      const kid = kids[i];
      if (e.optional) {
        if (kid !== undefined && e.codec.tags.has(nodeTag(kid))) {
          out[e.k] = decodeStep(e.codec, kid, at, e.step);
          i++;
        }
      } else {
        if (kid === undefined) fail(`${at}.${e.k}`, `missing ${e.codec.what}`);
        out[e.k] = decodeStep(e.codec, kid, at, e.step);
        i++;
      }
    }
    if (i < kids.length) fail(at, `unexpected ${describeTag(nodeTag(kids[i]))} after the last field of ${what}`);
    return out as SeqValue<F>;
  };
  return {
    what,
    tags: new Set([U(16)]),
    encodeChildren,
    decodeChildren,
    encode: (v) => outConstructed(0x30, encodeChildren(v)),
    decode: (n, at) => decodeChildren(nodeChildren(expectTag(n, U(16), at, what), at), at),
    toJson: (v) => {
      const o: { [k: string]: Json } = {};
      const rec = v as Record<string, unknown>;
      for (const e of entries) if (rec[e.k] !== undefined) o[e.k] = e.codec.toJson(rec[e.k]);
      return o;
    },
    fromJson: (j, at) => {
      if (j === null || typeof j !== 'object' || Array.isArray(j)) return fail(at, `expected an object for ${what}`);
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(j)) if (!(k in fields)) fail(at, `unknown field ${k} of ${what}`);
      for (const e of entries) {
        const x = j[e.k];
        if (x === undefined) {
          if (!e.optional) fail(`${at}.${e.k}`, `missing field of ${what}`);
        } else out[e.k] = e.codec.fromJson(x, `${at}.${e.k}`);
      }
      return out as SeqValue<F>;
    },
  };
}

/** [n] IMPLICIT SEQUENCE: the sequence's contents under a context tag. */
export function implicitSeq<T>(n: number, c: SeqCodec<T>): Codec<T> {
  const k = ctx(n);
  const id = contextId(n);
  return {
    what: `[${n}] IMPLICIT ${c.what}`,
    tags: new Set([k]),
    encode: (v) => outConstructed(id, c.encodeChildren(v)),
    decode: (node, at) => c.decodeChildren(nodeChildren(expectTag(node, k, at, `[${n}]`), at), at),
    toJson: c.toJson,
    fromJson: c.fromJson,
  };
}

function listCodec<T>(what: string, tag: 16 | 17, c: Codec<T>): Codec<T[]> {
  return {
    what,
    tags: new Set([U(tag)]),
    encode: (v) => {
      const kids = v.map((x) => c.encode(x));
      if (tag === 16) return outConstructed(0x30, kids);
      // DER: SET OF elements sorted by their encodings
      const enc = kids.map((k) => derOf(k));
      enc.sort(compareBytes);
      return outConstructed(0x31, enc.map(outRaw));
    },
    decode: (n, at) => {
      const kids = nodeChildren(expectTag(n, U(tag), at, what), at);
      const out: T[] = new Array(kids.length);
      for (let i = 0; i < kids.length; i++) out[i] = decodeStep(c, kids[i], at, i);
      return out;
    },
    toJson: (v) => v.map((x) => c.toJson(x)),
    fromJson: (j, at) => (Array.isArray(j) ? j.map((x, i) => c.fromJson(x, `${at}[${i}]`)) : fail(at, `expected an array for ${what}`)),
  };
}
/** SEQUENCE OF: order preserved. */
export const seqOf = <T>(c: Codec<T>, what = `SEQUENCE OF ${c.what}`): Codec<T[]> => listCodec(what, 16, c);
/** SET OF: DER order on encode; any order accepted and kept on decode. */
export const setOf = <T>(c: Codec<T>, what = `SET OF ${c.what}`): Codec<T[]> => listCodec(what, 17, c);

type Alts = Record<string, Codec<any>>;
export type ChoiceValue<A extends Alts> = { [K in keyof A]: { kind: K; value: TypeOf<A[K]> } }[keyof A];

/**
 * CHOICE: decoded as `{ kind, value }` where kind is the alternative's name.
 * `rejected` maps a context tag number to the error upstream gives for alternatives it refuses.
 */
export function choice<A extends Alts>(what: string, alts: A, rejected: Record<number, string> = {}): Codec<ChoiceValue<A>> {
  const byTag = new Map<TagKey, { kind: string; codec: Codec<unknown>; step: string }>();
  for (const [kind, codec] of Object.entries(alts)) {
    for (const t of codec.tags) {
      if (byTag.has(t)) throw new Error(`${what}: ambiguous tag ${describeTag(t)}`);
      byTag.set(t, { kind, codec, step: `.${kind}` });
    }
  }
  const rejectedTags = new Map<TagKey, string>(Object.entries(rejected).map(([t, m]) => [ctx(Number(t)), m]));
  return {
    what,
    tags: new Set([...byTag.keys(), ...rejectedTags.keys()]),
    encode: (v) => {
      const c = alts[v.kind as string];
      if (c === undefined) throw new TypeError(`${what}: unknown alternative ${String(v.kind)}`);
      return c.encode(v.value);
    },
    decode: (n, at) => {
      const t = nodeTag(n);
      const alt = byTag.get(t);
      if (alt === undefined) {
        const r = rejectedTags.get(t);
        return fail(at, r ?? `unknown ${what} ${describeTag(t)}`);
      }
      return { kind: alt.kind, value: decodeStep(alt.codec, n, at, alt.step) } as ChoiceValue<A>;
    },
    toJson: (v) => ({ [v.kind as string]: alts[v.kind as string].toJson(v.value) }),
    fromJson: (j, at) => {
      if (j === null || typeof j !== 'object' || Array.isArray(j)) return fail(at, `expected {"<alternative>": value} for ${what}`);
      const keys = Object.keys(j);
      if (keys.length !== 1 || !(keys[0] in alts))
        return fail(at, `expected exactly one of ${Object.keys(alts).join(', ')} for ${what}`);
      const kind = keys[0];
      return { kind, value: alts[kind].fromJson(j[kind], `${at}.${kind}`) } as ChoiceValue<A>;
    },
  };
}

/**
 * A copy of `b` for keeping: small ones share Node's Buffer pool (a view into an 8 KB slab)
 * rather than each having an ArrayBuffer of its own, which saves an object per copy on the
 * JavaScript heap when thousands are kept.
 */
export const pooledCopy = (b: Uint8Array): Uint8Array => (b.length < 4096 ? Buffer.from(b) : b);

/** A codec whose encodings of chosen values are kept (see `remembering`). */
export interface RememberingCodec<T extends object> extends Codec<T> {
  /** Encodes `v` now and keeps the octets for as long as the object lives. */
  remember(v: T): void;
  /** The kept octets of a remembered value (undefined for any other). */
  encoded(v: T): Uint8Array | undefined;
}

/**
 * The codec, except that values passed to `remember` are encoded once: their octets are kept
 * in a WeakMap keyed by the object, and every later encoding of that object copies them
 * instead of walking the value again. Only for values that are never modified once
 * remembered (vmmd's info of a running unikernel, built once when it starts); any other
 * value is encoded as usual.
 */
export function remembering<T extends object>(c: Codec<T>): RememberingCodec<T> {
  const memo = new WeakMap<T, Uint8Array>();
  return {
    what: c.what,
    tags: c.tags,
    encode: (v) => {
      const b = memo.get(v);
      return b === undefined ? c.encode(v) : outRaw(b);
    },
    decode: c.decode,
    toJson: c.toJson,
    fromJson: c.fromJson,
    remember: (v) => {
      if (!memo.has(v)) memo.set(v, pooledCopy(derOf(c.encode(v))));
    },
    encoded: (v) => memo.get(v),
  };
}

/** A CHOICE alternative whose value is a NULL under an explicit tag. */
export const tagNull = (n: number): Codec<null> => explicit(n, nul);

// ------------------------------------------------------------------ boundary

export interface DecodeLimits extends DerLimits {}

/** Strict DER parse (der.ts), then the declared decoder: never throws on any input. */
export function decodeDer<T>(c: Codec<T>, bytes: Uint8Array, lim: DecodeLimits = defaultDerLimits): Result<T> {
  const tree = parseDer(bytes, lim);
  if (!tree.ok) return err(`${c.what}: ${tree.error}`);
  try {
    return ok(c.decode(tree.value, ''));
  } catch (e) {
    if (e instanceof DecodeError) return err(e.within(c.what).message);
    if (e instanceof RangeError || e instanceof TypeError) return err(`${c.what}: ${e.message}`);
    throw e;
  }
}

/** DER encoding of a value. Throws (a programmer error) on values outside the type. */
export function encodeDer<T>(c: Codec<T>, v: T): Uint8Array {
  return derOf(c.encode(v));
}

/** JSON to value, as a Result. */
export function fromJson<T>(c: Codec<T>, j: Json): Result<T> {
  try {
    return ok(c.fromJson(j, c.what));
  } catch (e) {
    if (e instanceof DecodeError) return err(e.message);
    throw e;
  }
}
