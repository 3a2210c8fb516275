/**
 * Where vmmd_influx writes: a raw TCP connection (InfluxDB / Telegraf line protocol
 * listener) and the HTTP write API. Both keep a bounded queue (the oldest samples are
 * dropped when it is full), reconnect with backoff, and never throw on a write error.
 */
import * as net from 'node:net';
import * as http from 'node:http';
import * as https from 'node:https';
import { type Result, ok, err } from '../core/result.js';
import type { Logger } from '../daemon/server.js';

export interface HostPort {
  host: string;
  port: number;
}

/** `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`. */
export function parseHostPort(s: string, defaultPort: number): Result<HostPort> {
  const m = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(s) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(s);
  if (!m) return err(`expected HOST[:PORT], got ${JSON.stringify(s)}`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return err(`invalid port in ${JSON.stringify(s)}`);
  return ok({ host: m[1], port });
}

/** A queue of payloads bounded in bytes; the oldest go first when it is full. */
export class BoundedQueue {
  private items: string[] = [];
  private bytes = 0;
  dropped = 0;
  constructor(readonly maxBytes: number) {}
  push(s: string): void {
    this.items.push(s);
    this.bytes += s.length;
    while (this.bytes > this.maxBytes && this.items.length > 0) {
      this.bytes -= (this.items.shift() as string).length;
      this.dropped++;
    }
  }
  /** Takes everything queued (up to maxBytes) as one string. */
  takeAll(): string {
    const s = this.items.join('');
    this.items = [];
    this.bytes = 0;
    return s;
  }
  /** Puts a failed batch back in front (still bounded). */
  unshift(s: string): void {
    if (s.length > this.maxBytes) {
      this.dropped++;
      return;
    }
    this.items.unshift(s);
    this.bytes += s.length;
    while (this.bytes > this.maxBytes && this.items.length > 1) {
      this.bytes -= (this.items.pop() as string).length;
      this.dropped++;
    }
  }
  get size(): number {
    return this.items.length;
  }
}

const MIN_BACKOFF = 500;
const MAX_BACKOFF = 30_000;

export interface Sink {
  write(payload: string): void;
  close(): void;
}

/** Raw TCP: one socket write per sample (as upstream). */
export class TcpSink implements Sink {
  private socket: net.Socket | undefined;
  private connecting = false;
  private backoff = MIN_BACKOFF;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly queue: BoundedQueue;

  constructor(readonly target: HostPort, readonly log: Logger, maxBytes: number) {
    this.queue = new BoundedQueue(maxBytes);
    this.connect();
  }

  private connect(): void {
    if (this.closed || this.connecting || this.socket !== undefined) return;
    this.connecting = true;
    const s = net.createConnection({ host: this.target.host, port: this.target.port });
    s.setKeepAlive(true);
    s.setNoDelay(true);
    s.on('data', () => undefined); // a line protocol listener sends nothing; ignore anything
    s.once('connect', () => {
      this.connecting = false;
      this.socket = s;
      this.backoff = MIN_BACKOFF;
      this.log('info', `connected to influx at ${this.target.host}:${this.target.port}`);
      this.flush();
    });
    s.on('error', (e) => {
      if (this.connecting) this.log('warning', `influx at ${this.target.host}:${this.target.port}: ${e.message}; retrying in ${this.backoff} ms`);
      else this.log('warning', `influx connection: ${e.message}`);
    });
    s.once('close', () => {
      this.connecting = false;
      if (this.socket === s) this.socket = undefined;
      this.retry();
    });
  }

  private retry(): void {
    if (this.closed || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, this.backoff);
    this.backoff = Math.min(MAX_BACKOFF, this.backoff * 2);
  }

  private flush(): void {
    const s = this.socket;
    if (s === undefined || this.queue.size === 0) return;
    // while the kernel does not take more, samples wait in the bounded queue
    if (s.writableLength > 0) return;
    s.write(this.queue.takeAll(), () => this.flush());
  }

  write(payload: string): void {
    this.queue.push(payload);
    if (this.socket === undefined) this.connect();
    else this.flush();
  }

  get dropped(): number {
    return this.queue.dropped;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.socket?.destroy();
  }
}

/** HTTP write API (InfluxDB 1.x `/write?db=`, 2.x `/api/v2/write?org=&bucket=`): batches POSTed one at a time. */
export class HttpSink implements Sink {
  private inFlight = false;
  private backoff = MIN_BACKOFF;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly queue: BoundedQueue;
  private readonly agent: http.Agent;

  constructor(readonly url: URL, readonly token: string | undefined, readonly log: Logger, maxBytes: number) {
    this.queue = new BoundedQueue(maxBytes);
    this.agent = url.protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  }

  write(payload: string): void {
    this.queue.push(payload);
    this.send();
  }

  private send(): void {
    if (this.closed || this.inFlight || this.timer !== undefined || this.queue.size === 0) return;
    this.inFlight = true;
    const body = this.queue.takeAll();
    const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)) };
    if (this.token !== undefined) headers.Authorization = `Token ${this.token}`;
    const mod = this.url.protocol === 'https:' ? https : http;
    let finished = false;
    const done = (retry: boolean, why?: string): void => {
      if (finished) return;
      finished = true;
      this.inFlight = false;
      if (why !== undefined) this.log('warning', `influx write to ${this.url.origin}${this.url.pathname}: ${why}${retry ? `; retrying in ${this.backoff} ms` : '; batch dropped'}`);
      if (retry) {
        this.queue.unshift(body);
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.send();
        }, this.backoff);
        this.backoff = Math.min(MAX_BACKOFF, this.backoff * 2);
      } else {
        this.backoff = MIN_BACKOFF;
        this.send();
      }
    };
    const req = mod.request(this.url, { method: 'POST', headers, agent: this.agent, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (text.length < 500) text += c;
      });
      res.on('end', () => {
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) done(false);
        else done(code >= 500 || code === 429, `HTTP ${code} ${text.trim().slice(0, 200)}`);
      });
      res.on('error', (e) => done(true, e.message));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => done(true, e.message));
    req.end(body);
  }

  get dropped(): number {
    return this.queue.dropped;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.agent.destroy();
  }
}
