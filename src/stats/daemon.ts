/**
 * vmmd_stats (SEMANTICS.md §8, WIRE.md §2.3, §2.6): learns the tender pid and taps of
 * every running unikernel from vmmd (over the inverted connection it opens with `stats
 * initial`) or from clients, and sends each subscriber `data statistics` every interval
 * for the unikernels it covers (subscriptionCovers). Linux only for now.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { type Name, nameToString, relativeName, root, subscriptionCovers } from '../core/name.js';
import { limits } from '../core/limits.js';
import { type Result, err } from '../core/result.js';
import type { Header } from '../core/wire/common.js';
import type { IfData, StatsAdd, StatsCmd, StatsData } from '../core/wire/stats.js';
import { type Wire, command, data, decodeWire, encodeWire, failure, replyString } from '../core/wire/wire.js';
import { frame } from '../core/frame.js';
import { FramedConn, connectUnix } from '../transport/conn.js';
import { IF_COUNTERS, type IfCounters, ifDataOf, statsDataOf } from './linux.js';
import { type Logger, serveConnection } from '../daemon/server.js';

export interface StatsDaemonOptions {
  tmpdir: string;
  intervalMs: number;
  log: Logger;
  /** Root of /proc and /sys (tests may point elsewhere). */
  procRoot?: string;
  sysRoot?: string;
  clockTicks?: number;
}

interface Unikernel {
  name: Name;
  pid: number;
  vmmdev: string;
  network: { bridge: string; tap: string }[];
}

interface Subscriber {
  conn: FramedConn;
  name: Name;
  version: number;
  closed: boolean;
}

/** Gathers one unikernel's statistics from /proc and /sys; an error if the process or an interface is gone. */
export function gather(u: Unikernel, procRoot: string, sysRoot: string, clockTicks: number): Result<StatsData> {
  const dir = join(procRoot, String(u.pid));
  let texts;
  try {
    texts = {
      stat: fs.readFileSync(join(dir, 'stat'), 'latin1'),
      statm: fs.readFileSync(join(dir, 'statm'), 'latin1'),
      status: fs.readFileSync(join(dir, 'status'), 'latin1'),
      startMs: fs.statSync(dir).ctimeMs,
    };
  } catch (e) {
    return err(`process ${u.pid}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : (e as Error).message}`);
  }
  const ifs: IfData[] = [];
  // upstream lists the interfaces in reverse order of the stats add list
  for (const n of [...u.network].reverse()) {
    const base = join(sysRoot, 'class', 'net', n.tap);
    let c: IfCounters;
    try {
      const read = (f: string): string => fs.readFileSync(join(base, f), 'latin1');
      const counters: Record<string, string> = { mtu: read('mtu'), flags: read('flags') };
      for (const k of IF_COUNTERS) counters[k] = read(join('statistics', k));
      c = counters as IfCounters;
    } catch (e) {
      return err(`interface ${n.tap}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : (e as Error).message}`);
    }
    const d = ifDataOf(n.bridge, c);
    if (!d.ok) return err(`interface ${n.tap}: ${d.error}`);
    ifs.push(d.value);
  }
  return statsDataOf(texts, ifs, clockTicks);
}

export class StatsDaemon {
  readonly unikernels = new Map<string, Unikernel>();
  private readonly subscribers = new Set<Subscriber>();
  private timer: NodeJS.Timeout | undefined;
  private vmmd: FramedConn | undefined;
  private stopped = false;
  private readonly procRoot: string;
  private readonly sysRoot: string;

  constructor(readonly o: StatsDaemonOptions) {
    this.procRoot = o.procRoot ?? '/proc';
    this.sysRoot = o.sysRoot ?? '/sys';
  }

  start(): void {
    this.timer = setInterval(() => this.sample(), this.o.intervalMs);
    void this.vmmdLoop();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.vmmd?.close();
    for (const s of this.subscribers) s.conn.close();
  }

  /** Applies `stats add` / `stats remove`; the answer to send, or a failure. */
  private apply(h: Header, cmd: StatsCmd): Wire {
    switch (cmd.kind) {
      case 'add':
        return this.add(h, cmd.value);
      case 'remove':
        if (this.unikernels.delete(nameToString(h.name))) this.o.log('debug', `forgot ${nameToString(h.name)}`);
        return replyString(h, 'removed');
      case 'initial':
        return failure(h, 'unexpected message initial');
      case 'subscribe':
        return failure(h, 'unexpected command');
      default: {
        const never: never = cmd;
        return never;
      }
    }
  }

  private add(h: Header, a: StatsAdd): Wire {
    const key = nameToString(h.name);
    if (!this.unikernels.has(key) && this.unikernels.size >= limits.statsMaxUnikernels) {
      return failure(h, `too many unikernels (limit ${limits.statsMaxUnikernels})`);
    }
    if (!Number.isSafeInteger(a.pid) || a.pid <= 0) return failure(h, `invalid pid ${a.pid}`);
    // as upstream's if_nametoindex: taps that do not exist (now) are skipped
    const network = a.network.filter((n) => /^[A-Za-z0-9_.-]{1,15}$/.test(n.tap) && n.tap !== '.' && n.tap !== '..' &&
      fs.existsSync(join(this.sysRoot, 'class', 'net', n.tap)));
    this.unikernels.set(key, { name: h.name, pid: a.pid, vmmdev: a.vmmdev, network });
    this.o.log('debug', `added ${key} pid ${a.pid}${network.map((n) => ` ${n.bridge}=${n.tap}`).join('')}`);
    return replyString(h, 'added');
  }

  /** The inverted connection to vmmd: connect, `stats initial`, then serve add/remove; reconnect every second. */
  private async vmmdLoop(): Promise<void> {
    const path = join(this.o.tmpdir, 'util', 'vmmd.sock');
    let reported = false;
    while (!this.stopped) {
      const c = await connectUnix(path, limits.daemonMaxRequestBytes);
      if (!c.ok) {
        if (!reported) this.o.log('info', `${c.error}; retrying every second`);
        reported = true;
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      reported = false;
      const conn = c.value;
      this.vmmd = conn;
      const why = await this.serveVmmd(conn);
      conn.close();
      this.vmmd = undefined;
      if (this.stopped) return;
      this.o.log('warning', `connection to vmmd ended (${why}); forgetting ${this.unikernels.size} unikernels`);
      this.unikernels.clear();
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  private async serveVmmd(conn: FramedConn): Promise<string> {
    const initial = command(root, { kind: 'stats', value: { kind: 'initial', value: null } }, 0n);
    try {
      await conn.writeMessage(initial);
    } catch (e) {
      return (e as Error).message;
    }
    const a = await conn.readMessage(10_000);
    if (a.kind !== 'message') return a.kind === 'error' ? a.error : 'closed';
    if (a.wire.payload.kind !== 'reply' || a.wire.header.sequence !== 0n) return `unexpected answer to stats initial: ${a.wire.payload.kind}`;
    this.o.log('info', 'connected to vmmd');
    for (;;) {
      const m = await conn.readMessage();
      if (m.kind === 'end') return 'closed by vmmd';
      if (m.kind === 'error') return m.error;
      const { header: h, payload } = m.wire;
      if (payload.kind !== 'command' || payload.value.kind !== 'stats') {
        await conn.writeMessage(failure(h, 'unexpected command')).catch(() => undefined);
        continue;
      }
      try {
        await conn.writeMessage(this.apply(h, payload.value.value));
      } catch (e) {
        return (e as Error).message;
      }
    }
  }

  /** A client on stat.sock: add/remove (answered, the connection stays open) or subscribe. */
  async handle(socket: net.Socket): Promise<void> {
    return serveConnection(socket, this.o.log, decodeWire, async (conn, w) => {
      const { header: h, payload } = w;
      if (payload.kind !== 'command' || payload.value.kind !== 'stats') {
        await conn.writeMessage(failure(h, 'unexpected command')).catch(() => undefined);
        return false;
      }
      const cmd = payload.value.value;
      if (cmd.kind === 'subscribe') {
        await this.subscribe(conn, h);
        return false;
      }
      const ans = this.apply(h, cmd);
      await conn.writeMessage(ans).catch(() => undefined);
      return ans.payload.kind !== 'failure';
    });
  }

  private async subscribe(conn: FramedConn, h: Header): Promise<void> {
    const s: Subscriber = { conn, name: h.name, version: h.version, closed: false };
    try {
      await conn.writeMessage(replyString(h, 'subscribed'));
    } catch {
      return;
    }
    this.subscribers.add(s);
    await conn.read();
    s.closed = true;
    this.subscribers.delete(s);
  }

  /** One round: gather for every unikernel with a subscriber, send to each matching subscriber. */
  sample(): void {
    if (this.subscribers.size === 0) return;
    for (const [key, u] of [...this.unikernels]) {
      // a subscription to `dept:` covers the names whose path is in `dept`, not `:dept`
      const subs = [...this.subscribers].filter((s) => !s.closed && subscriptionCovers(s.name, u.name));
      if (subs.length === 0) continue;
      const d = gather(u, this.procRoot, this.sysRoot, this.o.clockTicks ?? 100);
      if (!d.ok) {
        this.o.log('warning', `${key}: ${d.error}; forgetting it`);
        this.unikernels.delete(key);
        continue;
      }
      for (const s of subs) {
        const msg = data({ version: s.version, sequence: 0n, name: relativeName(u.name, s.name.path) }, { kind: 'statistics', value: d.value });
        this.send(s, Buffer.from(frame(encodeWire(msg))));
      }
    }
  }

  private send(s: Subscriber, bytes: Buffer): void {
    const stream = s.conn.stream;
    if (s.closed || stream.destroyed) return;
    stream.write(bytes);
    if (stream.writableLength > limits.subscriberBufferBytes) {
      this.o.log('warning', `dropping a subscriber of ${nameToString(s.name)}: more than ${limits.subscriberBufferBytes} bytes unread`);
      s.closed = true;
      this.subscribers.delete(s);
      s.conn.close();
    }
  }
}

