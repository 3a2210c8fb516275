/**
 * HTTP plumbing of vmmd_web: errors as JSON with the field that was wrong, bodies read up to a
 * named limit (refused by Content-Length before reading), server-sent events (multipart/form-data
 * uploads: upload.ts).
 */
import type * as http from 'node:http';
import { limits } from '../core/limits.js';

/** A refused request: status, message, and the field that was wrong (400). */
export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly field?: string) {
    super(message);
  }
}

export const badField = (field: string, message: string): HttpError => new HttpError(400, `${field}: ${message}`, field);

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendError(res: http.ServerResponse, e: HttpError): void {
  const body: Record<string, unknown> = { error: e.message, status: e.status };
  if (e.field !== undefined) body.field = e.field;
  const headers: http.OutgoingHttpHeaders = {};
  if (e.status === 401) headers['www-authenticate'] = 'Bearer realm="vmmd_web"';
  // a body that was refused unread: the connection cannot be reused
  if (e.status === 413) headers.connection = 'close';
  if (!res.headersSent) sendJson(res, e.status, body, headers);
  else res.destroy();
}

/**
 * The whole body, at most `limit` octets: a larger Content-Length is refused before one
 * octet is read (413); a body without one is cut off when it passes the limit.
 */
export function readBody(req: http.IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    const n = Number(declared);
    if (!/^\d+$/.test(declared) || !Number.isSafeInteger(n)) return Promise.reject(new HttpError(400, `Content-Length: not a number: ${JSON.stringify(declared)}`, 'Content-Length'));
    if (n > limit) return Promise.reject(new HttpError(413, `${what} of ${n} bytes is larger than the limit of ${limit} bytes`, 'Content-Length'));
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let total = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      total += c.length;
      if (total > limit) {
        failed = true;
        req.pause();
        reject(new HttpError(413, `${what} is larger than the limit of ${limit} bytes`, 'Content-Length'));
        return;
      }
      parts.push(c);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(parts));
    });
    req.on('error', (e) => {
      if (!failed) reject(new HttpError(400, `reading the request body: ${e.message}`));
    });
  });
}

export async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readBody(req, limits.webMaxJsonBytes, 'the JSON body');
  if (body.length === 0) return {};
  let j: unknown;
  try {
    j = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new HttpError(400, `the body is not JSON: ${(e as Error).message}`, 'body');
  }
  if (j === null || typeof j !== 'object' || Array.isArray(j)) throw new HttpError(400, 'the body must be a JSON object', 'body');
  return j as Record<string, unknown>;
}

/** A server-sent events stream, closed when the client cannot keep up (`bufferLimit` octets unread). */
export class EventStream {
  private closedFlag = false;
  private readonly closers: (() => void)[] = [];
  private readonly keepalive: NodeJS.Timeout;

  constructor(private readonly res: http.ServerResponse, private readonly bufferLimit: number, private readonly onOverflow: () => void) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write(': stream\n\n');
    res.on('close', () => this.close());
    this.keepalive = setInterval(() => this.comment('keepalive'), 15_000);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  onClose(f: () => void): void {
    if (this.closedFlag) f();
    else this.closers.push(f);
  }

  private comment(text: string): void {
    if (!this.closedFlag) this.res.write(`: ${text}\n\n`);
  }

  send(event: string, data: unknown): void {
    if (this.closedFlag) return;
    if (this.res.writableLength > this.bufferLimit) {
      this.onOverflow();
      this.close();
      return;
    }
    this.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    clearInterval(this.keepalive);
    this.res.end();
    for (const f of this.closers) f();
  }
}
