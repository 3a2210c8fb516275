/**
 * The image of a `create` uploaded after the handshake (CERTS.md §5 step 2), without
 * holding it in memory: the raw chunks go to an unlinked temporary file as they arrive,
 * and the command travels to vmmd as one frame whose image is copied from that file.
 *
 * Two bounds apply before a chunk's body is read, from its announced length: the upload
 * may not exceed what its unikernel could be given (the command's memory, and the memory
 * of every policy of the chain), and all uploads in progress in this process together
 * may not hold more than the budget (`limits.uploadsHeldBytes`).
 */
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readHeader } from '../core/der.js';
import { MAX_WIRE_FRAME } from '../core/frame.js';
import { limits } from '../core/limits.js';
import { type Wire, encodeWire } from '../core/wire/wire.js';
import type { FramedConn } from '../transport/conn.js';

/** Octets held by uploads in progress, over all connections of one process. */
export class UploadBudget {
  private held = 0;

  constructor(readonly limit: number = limits.uploadsHeldBytes) {}

  get inUse(): number {
    return this.held;
  }

  /** Takes n octets, or says why not. */
  take(n: number): string | undefined {
    if (this.held + n > this.limit) {
      return `the image uploads in progress hold ${this.held} bytes, ${n} more would exceed the limit of ${this.limit} bytes`;
    }
    this.held += n;
    return undefined;
  }

  give(n: number): void {
    this.held -= n;
  }
}

/** The process's budget (vmmd_tls runs many connections in one process). */
export const processUploadBudget = new UploadBudget();

/** Octets read from the client per piece: what one upload holds in memory. */
const PIECE = 256 * 1024;

export interface HeldImage {
  file: FileHandle;
  size: number;
  /** Closes the file (already unlinked) and returns its octets to the budget. */
  release(): Promise<void>;
}

export type UploadResult =
  | { ok: true; image: HeldImage }
  /** `refusal`: a reason to tell the client; otherwise the connection is abandoned. */
  | { ok: false; error: string; refusal?: boolean };

let uploads = 0;

/**
 * Reads raw chunks until the end marker into an unlinked temporary file. `max` bounds
 * the image (checked on each chunk's announced length, before its body is read); EOF
 * or an error first aborts.
 */
export async function readUploadToFile(client: FramedConn, o: { timeoutMs?: number; max: number; maxWhy: string; budget: UploadBudget; dir?: string }): Promise<UploadResult> {
  const path = join(o.dir ?? tmpdir(), `albatross-upload-${process.pid}-${uploads++}-${randomBytes(6).toString('hex')}`);
  let file: FileHandle;
  try {
    file = await open(path, 'wx+', 0o600);
  } catch (e) {
    return { ok: false, refusal: true, error: `cannot make a temporary file for the image upload: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  let taken = 0;
  let size = 0;
  const fail = async (r: UploadResult): Promise<UploadResult> => {
    o.budget.give(taken);
    await file.close().catch(() => undefined);
    return r;
  };
  try {
    // unlinked at once: nothing is left behind whatever happens to this process
    await unlink(path);
    for (;;) {
      const r = await client.readPiece(PIECE, o.timeoutMs);
      if (r.kind === 'error') return await fail({ ok: false, error: `reading the image upload: ${r.error}` });
      if (r.kind === 'end') {
        if (r.marker) break;
        return await fail({ ok: false, error: 'connection closed before the end of the image upload' });
      }
      if (r.kind === 'start') {
        if (size + r.length > o.max) {
          return await fail({ ok: false, refusal: true, error: `image upload of more than ${size + r.length} bytes exceeds ${o.maxWhy}` });
        }
        const no = o.budget.take(r.length);
        if (no !== undefined) return await fail({ ok: false, refusal: true, error: no });
        taken += r.length;
        continue;
      }
      await file.write(r.body, 0, r.body.length, size);
      size += r.body.length;
    }
  } catch (e) {
    return await fail({ ok: false, refusal: true, error: `writing the image upload to a temporary file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
  }
  let released = false;
  return {
    ok: true,
    image: {
      file, size,
      release: async () => {
        if (released) return;
        released = true;
        o.budget.give(taken);
        await file.close().catch(() => undefined);
      },
    },
  };
}

const lengthOctets = (n: number): Uint8Array => {
  if (n < 0x80) return Uint8Array.of(n);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Uint8Array.of(0x80 | out.length, ...out);
};

const concat = (parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);

/**
 * The DER `der` with the primitive value whose content is exactly [at, at + len)
 * replaced by `size` octets, as the octets before and after them: the lengths of that
 * value and of every value around it are rewritten for the new size.
 */
export function spliceDer(der: Uint8Array, at: number, len: number, size: number): { prefix: Uint8Array; suffix: Uint8Array } | undefined {
  const walk = (pos: number, end: number): { prefix: Uint8Array[]; suffix: Uint8Array[]; length: number } | undefined => {
    const h = readHeader(der, pos, end);
    let idLen = 1;
    if ((der[pos] & 0x1f) === 0x1f) while (der[pos + idLen++] & 0x80);
    const id = der.subarray(pos, pos + idLen);
    const cs = pos + h.headerLength;
    const ce = cs + h.length;
    if (!h.constructed) {
      if (cs !== at || ce !== at + len) return undefined;
      const prefix = [id, lengthOctets(size)];
      return { prefix, suffix: [], length: prefix[0].length + prefix[1].length + size };
    }
    for (let p = cs; p < ce;) {
      const c = readHeader(der, p, ce);
      const cEnd = p + c.headerLength + c.length;
      if (at >= p && at + len <= cEnd) {
        const inner = walk(p, cEnd);
        if (inner === undefined) return undefined;
        const before = der.subarray(cs, p);
        const after = der.subarray(cEnd, ce);
        const content = before.length + inner.length + after.length;
        const head = [id, lengthOctets(content), before];
        return { prefix: [...head, ...inner.prefix], suffix: [...inner.suffix, after], length: id.length + head[1].length + content };
      }
      p = cEnd;
    }
    return undefined;
  };
  try {
    const r = walk(0, der.length);
    return r === undefined ? undefined : { prefix: concat(r.prefix), suffix: concat(r.suffix) };
  } catch {
    return undefined;
  }
}

/**
 * Writes `w`, whose command carries the 16-octet placeholder `mark` as its image, to
 * `conn` as one frame whose image is the held file: the octets around the image from
 * memory, the image copied from the file piece by piece (each written before the next
 * is read). The image is `size` octets of the file from `start` (default 0).
 */
export async function writeWithHeldImage(conn: FramedConn, w: Wire, mark: Uint8Array, image: { file: FileHandle; size: number; start?: number }): Promise<void> {
  const der = encodeWire(w);
  const at = Buffer.from(der.buffer, der.byteOffset, der.byteLength).indexOf(mark);
  const parts = at < 0 ? undefined : spliceDer(der, at, mark.length, image.size);
  if (parts === undefined) throw new Error('the image placeholder was not found in the encoded command');
  const total = parts.prefix.length + image.size + parts.suffix.length;
  if (total > MAX_WIRE_FRAME) throw new Error(`a command of ${total} bytes does not fit into a frame`);
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint32(0, total);
  await conn.writeBytes(concat([head, parts.prefix]));
  for (let off = 0; off < image.size;) {
    const buf = Buffer.allocUnsafe(Math.min(PIECE, image.size - off));
    const { bytesRead } = await image.file.read(buf, 0, buf.length, (image.start ?? 0) + off);
    if (bytesRead === 0) throw new Error('the temporary file of the image upload is shorter than written');
    await conn.writeBytes(buf.subarray(0, bytesRead));
    off += bytesRead;
  }
  await conn.writeBytes(parts.suffix);
}

/** A fresh placeholder image: 16 random octets that the encoded command contains once. */
export const imagePlaceholder = (): Uint8Array => new Uint8Array(randomBytes(16));
