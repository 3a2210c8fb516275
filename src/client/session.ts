/**
 * One command over a framed connection (a daemon's Unix socket or the TLS endpoint):
 * send it, stream bulk data after it, read the answers as the command's mode says,
 * print them, write downloads to files, and turn the outcome into upstream's exit code.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { Writable } from 'node:stream';
import type { FramedConn } from '../transport/conn.js';
import { type Command, type Mode, type Wire, command, commandEndpoint } from '../core/wire/wire.js';
import { type Name, nameToString } from '../core/name.js';
import type { Step } from './commands.js';
import { type Doc, type InfoStatus, type Style, describeMessage, docText, downloadFileName, messageDoc, messageJson, statusJson } from './output.js';
import { Progress } from './progress.js';

/** Exit codes of upstream's client (SEMANTICS.md §11.2), as used here. */
export const CODE = { ok: 0, remoteFailed: 117, certificateRefused: 119, communication: 121, connect: 122, other: 123 } as const;

/** How our endpoint's failure reply begins when the TLS layer refused the client's chain (CERTS.md §4.1). */
export const CHAIN_REFUSED = 'client certificate refused: ';

export interface SessionOptions {
  binary: string;
  style: Style;
  json: boolean;
  /** With json: print the wire form (`--json=wire`) instead of the documents of SEMANTICS.md §11.4. */
  jsonWire?: boolean;
  stdout: Writable;
  stderr: Writable;
  /** Show a progress bar on stderr (it is a terminal). */
  progress: boolean;
  /** `--output FILE` for get and dump-block. */
  outputFile?: string;
  /** Where downloads go without --output: $TMPDIR or /tmp. */
  downloadDir: string;
  /** Clock for download file names (tests pin it). */
  now?: () => Date;
  /** The peer is the TLS endpoint, which closes silently when it refuses a chain: say so when no answer came. */
  endpoint?: boolean;
  /** The command being answered (set by runStep), so that a reply can say what happened. */
  command?: Command;
  /** Maps a read error to an exit code and message (TLS alerts: our certificate was refused). */
  classify?: (error: string) => { code: number; message: string } | undefined;
  /** vmmd's status of the unikernels, shown with an info reply (vmmc_local info). */
  status?: InfoStatus;
  /** false (`--no-follow`): a console subscription prints what is there and ends (readAnswers). */
  follow?: boolean;
  /** Stats with --no-follow: the names expected (vmmd's unikernels); the round ends when each was seen or one comes again. */
  statsNames?: Set<string>;
}

/**
 * `--no-follow`: the history a daemon sends right after its reply is over when nothing more
 * arrives for this long, or (on a local socket) at the first entry stamped after the reply.
 */
export const NO_FOLLOW_QUIET_MS = 500;

/** Exit code of `console --no-follow` for a name without a console (vmmd_console's `waiting for VM`). */
export const NO_CONSOLE_EXIT = 1;

/** `$TMPDIR/<name>.<time>` (downloadFileName: no colons) unless --output was given. */
export function downloadPath(o: SessionOptions, name: Name): string {
  if (o.outputFile !== undefined) return o.outputFile;
  return path.join(o.downloadDir, downloadFileName(name, (o.now ?? (() => new Date()))().getTime()));
}

const say = (o: SessionOptions, text: string): void => {
  o.stdout.write(text);
};
const complain = (o: SessionOptions, text: string): void => {
  o.stderr.write(`${o.binary}: ${text.replace(/\s*\n\s*/g, ' ').trim()}\n`);
};

/** A file being downloaded, inflated on the fly when the data is compressed. */
class Download {
  private readonly file: fs.WriteStream;
  private readonly inflate?: zlib.Inflate;
  private failed: string | undefined;
  bytes = 0;
  private readonly done: Promise<void>;

  constructor(readonly target: string, compressed: boolean, private readonly progress: Progress | undefined) {
    this.file = fs.createWriteStream(target, { flags: 'w', mode: 0o600 });
    this.file.on('error', (e) => {
      this.failed ??= `cannot write ${target}: ${e.message}`;
    });
    this.done = new Promise((resolve) => {
      this.file.on('close', () => resolve());
    });
    if (compressed) {
      this.inflate = zlib.createInflate();
      this.inflate.on('error', (e) => {
        this.failed ??= `cannot uncompress the data: ${e.message}`;
        this.file.end();
      });
      this.inflate.on('data', (c: Buffer) => {
        this.bytes += c.length;
      });
      this.inflate.pipe(this.file);
    }
  }

  get error(): string | undefined {
    return this.failed;
  }

  write(chunk: Uint8Array): Promise<void> {
    const sink: Writable = this.inflate ?? this.file;
    if (this.inflate === undefined) this.bytes += chunk.length;
    this.progress?.add(chunk.length);
    return new Promise((resolve) => {
      if (this.failed !== undefined) {
        resolve();
        return;
      }
      if (sink.write(chunk)) resolve();
      else sink.once('drain', resolve);
    });
  }

  async finish(): Promise<string | undefined> {
    (this.inflate ?? this.file).end();
    await this.done;
    this.progress?.finish();
    return this.failed;
  }

  async abort(): Promise<void> {
    this.file.destroy();
    this.inflate?.destroy();
    try {
      fs.unlinkSync(this.target);
    } catch {
      // never created
    }
  }
}

/**
 * A daemon may answer an upload early (the data exceeds the block device) and close. If our
 * next write then fails with EPIPE, Node destroys the socket before the poll phase has read
 * the answer that is already in the kernel's receive buffer. This reads what is there,
 * synchronously, just before the socket is destroyed, and hands it to the reader as data.
 */
export function keepAnswerOnWriteError(socket: net.Socket): void {
  type Destroy = (err: Error | null, cb: (e: Error | null) => void) => void;
  const s = socket as unknown as { _destroy: Destroy; _handle?: { fd?: number } };
  const original = s._destroy;
  s._destroy = function (this: net.Socket, e: Error | null, cb: (e: Error | null) => void): void {
    const code = (e as NodeJS.ErrnoException | null)?.code;
    const fd = s._handle?.fd;
    if ((code === 'EPIPE' || code === 'ECONNRESET') && typeof fd === 'number' && fd >= 0) {
      const buf = Buffer.alloc(64 * 1024);
      try {
        for (;;) {
          const n = fs.readSync(fd, buf, 0, buf.length, null);
          if (n <= 0) break;
          this.emit('data', Buffer.from(buf.subarray(0, n)));
        }
      } catch {
        // EAGAIN: nothing more to read
      }
    }
    original.call(this, e, cb);
  };
}

/** Streams `file` (compressed with zlib at `level` > 0) as raw chunks, then the end marker. Stops quietly when the peer goes away. */
export async function upload(conn: FramedConn, file: string, level: number, progress: Progress | undefined, stop: () => boolean): Promise<void> {
  const raw = fs.createReadStream(file, { highWaterMark: 4096 });
  const src: NodeJS.ReadableStream = level > 0 ? raw.pipe(zlib.createDeflate({ level })) : raw;
  try {
    for await (const chunk of src as AsyncIterable<Buffer>) {
      // let the poll phase read first: an early answer (e.g. the data exceeds the block
      // device) is then buffered before a write to the closed connection fails with EPIPE
      await new Promise((r) => setImmediate(r));
      if (stop() || conn.isClosed) break;
      progress?.add(chunk.length);
      await conn.write(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    }
    if (!stop() && !conn.isClosed) await conn.writeEnd();
  } catch {
    // the daemon closed the connection or answered early: its answer tells what happened
  } finally {
    raw.destroy();
    progress?.finish();
  }
}

/**
 * Reads the answers to a command of the given mode and prints them; returns the exit code.
 * single: one message; read: until the connection ends; dump: until `data block eof`.
 */
export async function readAnswers(conn: FramedConn, name: Name, mode: Mode, o: SessionOptions, uploading?: () => boolean): Promise<number> {
  let download: Download | undefined;
  const show = (w: Wire): void => {
    if (o.json && !o.jsonWire) {
      const d = messageDoc(w, o.command, o.status);
      if (d !== undefined) say(o, docText(d));
      return;
    }
    say(o, o.json ? messageJson(w) : describeMessage(o.style, w, o.command, o.status));
    if (o.json && o.status !== undefined && w.payload.kind === 'reply' && w.payload.value.kind === 'unikernel_info') say(o, statusJson(o.status));
  };
  let seen = 0;
  const cmd = o.command;
  const consoleSub = cmd?.kind === 'console' && cmd.value.kind === 'subscribe';
  const statsSub = cmd?.kind === 'stats' && cmd.value.kind === 'subscribe';
  // --no-follow: after the reply, what comes at once is the history
  const stopEarly = o.follow === false && mode === 'read' && (consoleSub || statsSub);
  let repliedAt: number | undefined;
  const statsSeen = new Set<string>();
  for (;;) {
    const quiet = stopEarly && consoleSub && repliedAt !== undefined;
    const m = await conn.readMessage(quiet ? NO_FOLLOW_QUIET_MS : undefined);
    if (quiet && m.kind === 'error' && m.error === `timed out after ${NO_FOLLOW_QUIET_MS} ms`) return CODE.ok;
    if (m.kind === 'message') seen++;
    // every command is answered at least once (subscriptions first with a reply): a
    // connection that ends before that is a daemon that died or refused, never a success
    if (m.kind === 'end' && seen === 0) {
      complain(o, o.endpoint
        ? 'communication failure: the endpoint closed the connection without an answer (it refused the certificate chain or the command; its log says why)'
        : 'communication failure: the daemon closed the connection without an answer');
      return CODE.communication;
    }
    if (m.kind === 'end') {
      if (download !== undefined) {
        await download.abort();
        complain(o, 'communication failure: the connection ended before the end of the block data');
        return CODE.communication;
      }
      return CODE.ok;
    }
    if (m.kind === 'error') {
      await download?.abort();
      const mapped = o.classify?.(m.error);
      if (mapped !== undefined) {
        complain(o, mapped.message);
        return mapped.code;
      }
      const during = uploading?.() ? ' during the upload, before answering' : '';
      complain(o, `communication failure: ${m.error}${during ? ` (the peer closed the connection${during})` : ''}`);
      return CODE.communication;
    }
    const w = m.wire;
    const p = w.payload;
    if (p.kind === 'failure') {
      await download?.abort();
      // our endpoint's answer to a chain that OpenSSL refused: upstream's client sees a TLS alert there (119)
      const chainRefused = o.endpoint === true && seen === 1 && p.value.startsWith(CHAIN_REFUSED);
      if (o.json) say(o, o.jsonWire ? messageJson(w) : docText(messageDoc(w) as Doc));
      else if (chainRefused) complain(o, `the server refused our certificate (${p.value.slice(CHAIN_REFUSED.length)})`);
      else o.stderr.write(`${o.binary}: ${describeMessage(o.style, w)}`);
      return chainRefused ? CODE.certificateRefused : CODE.remoteFailed;
    }
    if (p.kind === 'reply' && p.value.kind === 'unikernel_image') {
      const target = downloadPath(o, name);
      const { compressed, image } = p.value.value;
      let bytes: Uint8Array;
      try {
        bytes = compressed ? new Uint8Array(zlib.inflateSync(image)) : image;
      } catch (e) {
        complain(o, `cannot uncompress the image: ${(e as Error).message}`);
        return CODE.other;
      }
      try {
        fs.writeFileSync(target, bytes, { mode: 0o600 });
      } catch (e) {
        complain(o, `cannot write ${target}: ${(e as Error).message}`);
        return CODE.other;
      }
      say(o, o.json ? `${JSON.stringify({ wrote: target, bytes: bytes.length })}\n` : `wrote ${target} (${bytes.length} bytes)\n`);
      return CODE.ok;
    }
    if (p.kind === 'reply' && p.value.kind === 'block_device_image' && mode === 'dump') {
      if (download === undefined) {
        download = new Download(downloadPath(o, name), p.value.value, o.progress ? new Progress(o.stderr, 'downloading') : undefined);
      }
      continue;
    }
    if (p.kind === 'data' && p.value.kind === 'block' && mode === 'dump') {
      if (download === undefined) download = new Download(downloadPath(o, name), false, o.progress ? new Progress(o.stderr, 'downloading') : undefined);
      const d = p.value.value;
      if (d.kind === 'chunk') {
        await download.write(d.value);
        continue;
      }
      const e = await download.finish();
      if (e !== undefined) {
        complain(o, e);
        return CODE.other;
      }
      say(o, o.json ? `${JSON.stringify({ wrote: download.target, bytes: download.bytes })}\n` : `wrote ${download.target} (${download.bytes} bytes)\n`);
      return CODE.ok;
    }
    if (seen === 1 && p.kind === 'reply' && (consoleSub || statsSub)) {
      repliedAt = Date.now();
      if (consoleSub && p.value.kind === 'string' && p.value.value === 'waiting for VM') {
        // vmmd_console has no console of that name: it would wait for the unikernel to start
        if (o.follow === false) {
          complain(o, `no console for ${nameToString(name)}`);
          return NO_CONSOLE_EXIT;
        }
        complain(o, `note: no console for ${nameToString(name)} yet; waiting for the unikernel to start (--no-follow exits instead)`);
      }
    }
    if (stopEarly && p.kind === 'data') {
      if (p.value.kind === 'console' && !o.endpoint && repliedAt !== undefined && p.value.value.timestamp > repliedAt) return CODE.ok;
      if (p.value.kind === 'statistics') {
        const key = nameToString(w.header.name);
        if (statsSeen.has(key)) return CODE.ok;
        statsSeen.add(key);
        show(w);
        if (o.statsNames !== undefined && [...o.statsNames].every((n) => statsSeen.has(n))) return CODE.ok;
        continue;
      }
    }
    show(w);
    if (mode === 'single') return CODE.ok;
  }
}

/**
 * Runs one step on a connected daemon: writes the command (unless it travels in a
 * certificate), streams the upload alongside reading the answers, returns the exit code.
 */
export async function runStep(conn: FramedConn, step: Step, o: SessionOptions, send = true): Promise<number> {
  const { mode } = commandEndpoint(step.command);
  if (send) {
    try {
      await conn.writeMessage(command(step.name, step.command));
    } catch (e) {
      complain(o, `communication failure: cannot send the command: ${(e as Error).message}`);
      return CODE.communication;
    }
  }
  if (step.upload !== undefined && conn.stream instanceof net.Socket && !(conn.stream as { encrypted?: boolean }).encrypted) {
    keepAnswerOnWriteError(conn.stream);
  }
  let answered = false;
  let uploaded = step.upload === undefined;
  const up = step.upload === undefined
    ? Promise.resolve()
    : upload(conn, step.upload.file, step.upload.level, o.progress ? new Progress(o.stderr, 'uploading') : undefined, () => answered)
      .then(() => {
        uploaded = true;
      });
  const code = await readAnswers(conn, step.name, mode, { ...o, command: step.command }, () => !uploaded);
  answered = true;
  await up;
  return code;
}

/** Can the upload file be read? Checked before connecting, so a typo does not half-run a command. */
export function checkReadable(file: string): string | undefined {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    if (fs.statSync(file).isDirectory()) return `cannot read ${file}: is a directory`;
    return undefined;
  } catch (e) {
    const c = (e as NodeJS.ErrnoException).code;
    return `cannot read ${file}: ${c === 'ENOENT' ? 'no such file' : c === 'EACCES' ? 'permission denied' : (e as Error).message}`;
  }
}
