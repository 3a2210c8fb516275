/**
 * The parts around the TLS handler in its tests: a small daemon peer on the expected
 * Unix sockets (vmmd.sock, console.sock) that records what it receives, a TLS client
 * that presents a chain and collects every message until the server closes, and an
 * inetd "nowait" stand-in that spawns one handler process per accepted connection with
 * the socket as its standard input and output (the real inetd is used in inetd.test.ts).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { FramedConn } from '../../src/transport/conn.js';
import { frame, readFrames } from '../../src/core/frame.js';
import { type Wire, decodeWire, describeCommand, reply, replyString, data } from '../../src/core/wire/wire.js';
import { nameToString } from '../../src/core/name.js';

export const root = join(__dirname, '..', '..', '..');
export const handlerBundle = join(root, 'dist', 'vmmd_tls_inetd.js');

export interface Received {
  socket: 'vmmd' | 'console';
  wire: Wire;
  /** Raw chunks that followed a block set. */
  chunks?: Uint8Array[];
}

/** A stand-in for vmmd and vmmd_console in `<tmpdir>/util`. */
export class DaemonPeer {
  readonly received: Received[] = [];
  private servers: net.Server[] = [];
  private conns = new Set<net.Socket>();

  constructor(readonly tmpdir: string) {
    mkdirSync(join(tmpdir, 'util'), { recursive: true });
  }

  async start(which: ('vmmd' | 'console')[] = ['vmmd', 'console']): Promise<void> {
    for (const w of which) {
      const server = net.createServer((s) => {
        this.conns.add(s);
        s.on('close', () => this.conns.delete(s));
        s.on('error', () => {});
        void (w === 'vmmd' ? this.vmmd(new FramedConn(s)) : this.console(new FramedConn(s)));
      });
      await new Promise<void>((resolve) => server.listen(join(this.tmpdir, 'util', `${w}.sock`), resolve));
      this.servers.push(server);
    }
  }

  private async vmmd(c: FramedConn): Promise<void> {
    for (;;) {
      const m = await c.readMessage(10_000);
      if (m.kind !== 'message') return c.close();
      const w = m.wire;
      if (w.payload.kind !== 'command') return c.close();
      const cmd = w.payload.value;
      const rec: Received = { socket: 'vmmd', wire: w };
      this.received.push(rec);
      if (cmd.kind === 'policy' && cmd.value.kind === 'add') {
        await c.writeMessage(replyString(w.header, 'added policy'));
        continue;
      }
      if (cmd.kind === 'unikernel' && cmd.value.kind === 'info') {
        await c.writeMessage(reply(w.header, { kind: 'unikernel_info', value: [] }));
      } else if (cmd.kind === 'block' && cmd.value.kind === 'set') {
        rec.chunks = [];
        for (;;) {
          const r = await c.read(10_000);
          if (r.kind !== 'frame') break;
          rec.chunks.push(r.body);
        }
        const n = rec.chunks.reduce((a, b) => a + b.length, 0);
        await c.writeMessage(replyString(w.header, `set block device (${n} bytes)`));
      } else if (cmd.kind === 'block' && cmd.value.kind === 'dump') {
        await c.writeMessage(reply(w.header, { kind: 'block_device_image', value: false }));
        await c.writeMessage(data(w.header, { kind: 'block', value: { kind: 'chunk', value: new Uint8Array([1, 2, 3]) } }));
        await c.writeMessage(data(w.header, { kind: 'block', value: { kind: 'eof', value: null } }));
      } else {
        await c.writeMessage(replyString(w.header, `${describeCommand(cmd)} for ${nameToString(w.header.name)}`));
      }
      return c.close();
    }
  }

  private async console(c: FramedConn): Promise<void> {
    const m = await c.readMessage(10_000);
    if (m.kind !== 'message' || m.wire.payload.kind !== 'command') return c.close();
    const w = m.wire;
    this.received.push({ socket: 'console', wire: w });
    await c.writeMessage(replyString(w.header, 'subscribed'));
    const h = { ...w.header, sequence: 0n };
    for (const line of ['hello', `console of ${nameToString(w.header.name)}`]) {
      await c.writeMessage(data(h, { kind: 'console', value: { timestamp: Date.UTC(2024, 0, 2, 3, 4, 5), line } }));
    }
    // a subscription stays open until the subscriber goes away
  }

  async close(): Promise<void> {
    for (const s of this.conns) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export interface ClientResult {
  messages: Wire[];
  /** Set when the connection ended with an error (reset, TLS alert...). */
  error?: string;
  /** Whether the handshake completed from the client's point of view. */
  connected: boolean;
}

/**
 * Connects with a client chain, optionally sends raw frames, and reads messages until
 * the server closes (or `stopAfter` messages arrived, then closes itself).
 */
export function tlsRequest(
  port: number,
  client: { cert: string; key: string },
  ca: string,
  opts: { send?: Uint8Array[]; stopAfter?: number; host?: string; timeoutMs?: number } = {},
): Promise<ClientResult> {
  return new Promise((resolve) => {
    const messages: Wire[] = [];
    let buf: Uint8Array = new Uint8Array(0);
    let connected = false;
    let error: string | undefined;
    const s = tls.connect({
      host: opts.host ?? '127.0.0.1', port,
      cert: readFileSync(client.cert), key: readFileSync(client.key), ca: readFileSync(ca),
      minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', checkServerIdentity: () => undefined,
    }, () => {
      connected = true;
      for (const f of opts.send ?? []) s.write(f);
    });
    s.on('data', (d: Buffer) => {
      const all = new Uint8Array(buf.length + d.length);
      all.set(buf);
      all.set(d, buf.length);
      const { frames } = readFrames(all);
      let used = 0;
      for (const f of frames) {
        used += 4 + f.length;
        const w = decodeWire(f);
        if (w.ok) messages.push(w.value);
      }
      buf = all.subarray(used);
      if (opts.stopAfter !== undefined && messages.length >= opts.stopAfter) s.end();
    });
    // a test must fail, not hang, when no server ever answers
    const timer = setTimeout(() => { error = `no end of connection within ${opts.timeoutMs ?? 20_000} ms`; s.destroy(); }, opts.timeoutMs ?? 20_000);
    s.on('error', (e) => { error = e.message; });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ messages, connected, ...(error !== undefined ? { error } : {}) });
    });
  });
}

export const rawFrame = (b: Uint8Array): Uint8Array => frame(b);

/** inetd "nowait" in miniature: one handler process per accepted TCP connection, socket as stdio. */
export class MiniInetd {
  private server: net.Server | undefined;
  readonly children = new Set<ChildProcess>();
  exits: (number | null)[] = [];
  port = 0;

  constructor(private readonly argv: string[], private readonly env: NodeJS.ProcessEnv = process.env) {}

  async start(): Promise<number> {
    this.server = net.createServer({ pauseOnConnect: true }, (sock) => {
      const child = spawn(process.execPath, [handlerBundle, ...this.argv], { stdio: [sock, sock, sock], env: this.env });
      this.children.add(child);
      child.on('exit', (code) => {
        this.exits.push(code);
        this.children.delete(child);
      });
      sock.destroy(); // the child holds its own copy of the descriptor
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Waits until every handler spawned so far has exited. */
  async settle(): Promise<void> {
    while (this.children.size > 0) await new Promise((r) => setTimeout(r, 10));
  }

  async close(): Promise<void> {
    for (const c of this.children) c.kill('SIGKILL');
    await this.settle();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

export const readLog = (path: string): string => (existsSync(path) ? readFileSync(path, 'utf8') : '');
