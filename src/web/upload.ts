/**
 * Uploads of vmmd_web (images, block data) without holding them in memory: the request body
 * goes to an unlinked temporary file as it arrives (bounded by the upload limit, refused by
 * Content-Length before one octet is read), and from there to the daemon in pieces. A
 * multipart form is written whole and its parts are found by scanning the file.
 */
import type * as http from 'node:http';
import { randomBytes } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Wire } from '../core/wire/wire.js';
import type { FramedConn } from '../transport/conn.js';
import { writeWithHeldImage } from '../inetd/upload.js';
import { HttpError } from './http.js';

/** Octets read or written per piece: what one upload holds in memory at a time. */
export const PIECE = 256 * 1024;

/** A byte range of an unlinked temporary file. */
export interface Held {
  file: FileHandle;
  start: number;
  size: number;
}

/** A request body written to an unlinked temporary file; `close` must be called. */
export interface HeldBody extends Held {
  close(): Promise<void>;
}

let seq = 0;

/**
 * Writes the body to an unlinked temporary file in `dir` (default the system's): at most
 * `limit` octets, a larger Content-Length refused before one octet is read (413), a body
 * without one cut off when it passes the limit. The request is paused while a piece is written.
 */
export async function bodyToFile(req: http.IncomingMessage, limit: number, what: string, dir = tmpdir()): Promise<HeldBody> {
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    const n = Number(declared);
    if (!/^\d+$/.test(declared) || !Number.isSafeInteger(n)) throw new HttpError(400, `Content-Length: not a number: ${JSON.stringify(declared)}`, 'Content-Length');
    if (n > limit) throw new HttpError(413, `${what} of ${n} bytes is larger than the limit of ${limit} bytes`, 'Content-Length');
  }
  const path = join(dir, `vmmd_web-upload-${process.pid}-${seq++}-${randomBytes(6).toString('hex')}`);
  let file: FileHandle;
  try {
    file = await open(path, 'wx+', 0o600);
  } catch (e) {
    throw new HttpError(500, `cannot make a temporary file for ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const close = (): Promise<void> => file.close().catch(() => undefined);
  try {
    // unlinked at once: nothing is left behind whatever happens to this process
    await unlink(path);
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      if (size + c.length > limit) {
        req.pause();
        throw new HttpError(413, `${what} is larger than the limit of ${limit} bytes`, 'Content-Length');
      }
      await file.write(c, 0, c.length, size);
      size += c.length;
    }
    return { file, start: 0, size, close };
  } catch (e) {
    await close();
    if (e instanceof HttpError) throw e;
    throw new HttpError(400, `reading ${what}: ${(e as Error).message}`);
  }
}

/** The held octets [from, from + n) of the range, into `into` when given (reused by the copy loops: no garbage per piece). */
async function readRange(h: Held, from: number, n: number, into?: Buffer): Promise<Buffer> {
  const len = Math.max(0, Math.min(n, h.size - from));
  const buf = into === undefined ? Buffer.alloc(len) : into.subarray(0, len);
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await h.file.read(buf, off, buf.length - off, h.start + from + off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return buf.subarray(0, off);
}

/** Every offset of `needle` in the held range, scanned in pieces that overlap by its length. */
async function findAll(h: Held, needle: Buffer): Promise<number[]> {
  const out: number[] = [];
  for (let pos = 0; pos < h.size; pos += PIECE) {
    const buf = await readRange(h, pos, PIECE + needle.length - 1);
    for (let i = buf.indexOf(needle); i >= 0 && i < PIECE; i = buf.indexOf(needle, i + 1)) out.push(pos + i);
  }
  return out;
}

export interface HeldForm {
  fields: Map<string, string[]>;
  /** File parts, as ranges of the held body. */
  files: Map<string, Held & { filename: string }>;
}

/**
 * Parses a multipart/form-data body (RFC 7578) held in a file: the parts are found by their
 * boundaries, the fields read into memory (at most `maxFields` octets in all), the files left
 * where they are.
 */
export async function parseHeldMultipart(body: Held, contentType: string, maxFields: number): Promise<HeldForm> {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (m === null) throw new HttpError(400, 'multipart/form-data without a boundary', 'Content-Type');
  const boundary = Buffer.from(`--${m[1] ?? m[2]}`);
  const first = await readRange(body, 0, boundary.length);
  if (!first.equals(boundary)) throw new HttpError(400, 'multipart body without its boundary', 'body');
  // each part ends where "\r\n--boundary" begins
  const ends = await findAll(body, Buffer.concat([Buffer.from('\r\n'), boundary]));
  const out: HeldForm = { fields: new Map(), files: new Map() };
  let fieldBytes = 0;
  let pos = boundary.length;
  for (const end of ends) {
    const after = await readRange(body, pos, 2);
    if (after.toString() === '--') return out;
    if (after.toString() !== '\r\n') throw new HttpError(400, 'malformed multipart body', 'body');
    const headStart = pos + 2;
    const head = await readRange(body, headStart, Math.min(end - headStart, 8192));
    const headEnd = head.indexOf('\r\n\r\n');
    if (headEnd < 0) throw new HttpError(400, 'malformed multipart part headers', 'body');
    const text = head.subarray(0, headEnd).toString('utf8');
    const dataStart = headStart + headEnd + 4;
    const disp = /content-disposition:\s*form-data;([^\r\n]*)/i.exec(text);
    if (disp === null) throw new HttpError(400, 'multipart part without Content-Disposition: form-data', 'body');
    const name = /\bname="([^"]*)"/.exec(disp[1])?.[1];
    const filename = /\bfilename="([^"]*)"/.exec(disp[1])?.[1];
    if (name === undefined) throw new HttpError(400, 'multipart part without a name', 'body');
    if (filename !== undefined) out.files.set(name, { file: body.file, start: body.start + dataStart, size: end - dataStart, filename });
    else {
      fieldBytes += end - dataStart;
      if (fieldBytes > maxFields) throw new HttpError(413, `the form's fields are larger than the limit of ${maxFields} bytes`, 'body');
      out.fields.set(name, [...(out.fields.get(name) ?? []), (await readRange(body, dataStart, end - dataStart)).toString('utf8')]);
    }
    pos = end + 2 + boundary.length;
  }
  if ((await readRange(body, pos, 2)).toString() === '--') return out;
  throw new HttpError(400, 'multipart body without its closing boundary', 'body');
}

/** The held range read into memory (a remote create carries the image in its certificate). */
export const readHeld = (h: Held): Promise<Buffer> => readRange(h, 0, h.size);

/**
 * The image for the checks of a create (ELF, Solo5 ABI and manifest notes): a buffer of the
 * image's size in which only the ELF header, the section headers, the section names and the
 * note sections are read from the file. The rest is never written, so it stays zero pages
 * that are not resident: the image is not held in memory. Anything malformed is left to the
 * checks (they see zeros where nothing was read).
 */
export async function sparseImage(h: Held): Promise<Uint8Array> {
  const img = new Uint8Array(h.size);
  const fill = async (at: number, n: number): Promise<void> => {
    if (at < 0 || n <= 0 || at >= h.size) return;
    const b = await readRange(h, at, Math.min(n, 16 * 1024 * 1024));
    img.set(b, at);
  };
  await fill(0, 64);
  if (h.size < 64) return img;
  const v = new DataView(img.buffer, img.byteOffset, img.byteLength);
  if (v.getUint32(0) !== 0x7f454c46 || img[4] !== 2) return img;
  const le = img[5] === 1;
  const shoff = Number(v.getBigUint64(0x28, le));
  const entsize = v.getUint16(0x3a, le);
  let shnum = v.getUint16(0x3c, le);
  if (shoff === 0 || entsize < 64 || shoff + entsize > h.size) return img;
  await fill(shoff, entsize);
  if (shnum === 0) shnum = Number(v.getBigUint64(shoff + 0x20, le));
  await fill(shoff, Math.min(shnum, 65536) * entsize);
  const names = v.getUint16(0x3e, le);
  for (let i = 0; i < shnum && shoff + (i + 1) * entsize <= h.size; i++) {
    const at = shoff + i * entsize;
    const type = v.getUint32(at + 4, le);
    const off = Number(v.getBigUint64(at + 0x18, le));
    const size = Number(v.getBigUint64(at + 0x20, le));
    // the section names, and SHT_NOTE sections (the ABI and the manifest)
    if (i === names || type === 7) await fill(off, size);
  }
  return img;
}

/**
 * Writes `w`, whose command carries the placeholder `mark` as its image, as one frame whose
 * image is the held range: the octets around it from memory, the image copied piece by piece.
 */
export const writeHeldCommand = (conn: FramedConn, w: Wire, mark: Uint8Array, image: Held): Promise<void> => writeWithHeldImage(conn, w, mark, image);

/** Writes the held range as raw chunks (a block set's data) and the end marker; stops when `stop` says so. */
export async function writeHeldChunks(conn: FramedConn, data: Held, stop: () => boolean, chunk: number): Promise<void> {
  const head = Buffer.alloc(4);
  const piece = Buffer.allocUnsafe(chunk);
  try {
    for (let off = 0; off < data.size; off += chunk) {
      if (stop() || conn.isClosed) return;
      // a raw chunk: its length, then its octets, from the one reused buffer
      const body = await readRange(data, off, chunk, piece);
      head.writeUInt32BE(body.length);
      await conn.writeBytes(head);
      await conn.writeBytes(body);
    }
    if (!stop() && !conn.isClosed) await conn.writeEnd();
  } catch {
    // the daemon answered early and closed: its answer says why
  }
}

export const imageMark = (): Uint8Array => new Uint8Array(randomBytes(16));
