/**
 * DER built by hand for tests, independent of the codec under test: a TLV with a
 * minimal length, and the few primitives the wire tests need.
 */
export const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];

/** A DER TLV: tag octet, minimal length, contents. */
export function tlv(tag: number, ...parts: (Uint8Array | number[])[]): Uint8Array {
  const body = Buffer.concat(parts.map((p) => Buffer.from(p)));
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return new Uint8Array(Buffer.concat([Buffer.from([tag, ...len]), body]));
}
export const NULL = [0x05, 0x00];
export const TRUE = [0x01, 0x01, 0xff];
export const FALSE = [0x01, 0x01, 0x00];
/** A non-negative INTEGER. */
export const int = (n: number): Uint8Array => {
  const b: number[] = [];
  let v = n;
  do { b.unshift(v & 0xff); v = Math.floor(v / 256); } while (v > 0);
  if (b[0] & 0x80) b.unshift(0);
  return tlv(0x02, b);
};
export const str = (s: string): Uint8Array => tlv(0x0c, ascii(s));
export const oct = (b: number[]): Uint8Array => tlv(0x04, b);
/** typ solo5 [0] NULL, and fail-behaviour quit [0] NULL (the same octets). */
export const SOLO5 = tlv(0xa0, NULL);
export const QUIT = tlv(0xa0, NULL);
