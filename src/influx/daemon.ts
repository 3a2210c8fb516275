/**
 * vmmd_influx: subscribes to vmmd_stats and forwards every sample as line protocol to
 * the configured sinks, and keeps the latest sample per unikernel for `/metrics`.
 */
import * as http from 'node:http';
import { join } from 'node:path';
import { type Name, nameToString } from '../core/name.js';
import { limits } from '../core/limits.js';
import { command } from '../core/wire/wire.js';
import type { StatsData } from '../core/wire/stats.js';
import { connectUnix } from '../transport/conn.js';
import type { Logger } from '../daemon/server.js';
import { type SampleTags, prometheusText, samplePayload, vmTag } from './lineproto.js';
import type { HostPort, Sink } from './sinks.js';

export interface InfluxOptions {
  tmpdir: string;
  name: Name;
  dropPath: boolean;
  sinks: Sink[];
  log: Logger;
}

export class InfluxReporter {
  /** The latest sample of each unikernel, keyed by its full name (the `name` tag). */
  readonly samples = new Map<string, { tags: SampleTags; data: StatsData; at: number }>();
  private stopped = false;
  private seq = 1n;
  private closeConn: (() => void) | undefined;
  received = 0;

  constructor(readonly o: InfluxOptions) {}

  /** The subscription loop: connect to stat.sock, subscribe, forward; reconnect with backoff. */
  async run(): Promise<void> {
    const path = join(this.o.tmpdir, 'util', 'stat.sock');
    let backoff = 500;
    let reported = false;
    while (!this.stopped) {
      const c = await connectUnix(path, limits.daemonMaxRequestBytes * 16);
      if (!c.ok) {
        if (!reported) this.o.log('warning', `${c.error}; retrying`);
        reported = true;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(5000, backoff * 2);
        continue;
      }
      const conn = c.value;
      this.closeConn = () => conn.close();
      try {
        await conn.writeMessage(command(this.o.name, { kind: 'stats', value: { kind: 'subscribe', value: null } }, this.seq++));
        const a = await conn.readMessage(10_000);
        if (a.kind !== 'message') throw new Error(a.kind === 'error' ? a.error : 'closed');
        const p = a.wire.payload;
        if (p.kind === 'failure') throw new Error(`subscription refused: ${p.value}`);
        this.o.log('info', `subscribed to statistics of ${nameToString(this.o.name)}`);
        backoff = 500;
        reported = false;
        for (;;) {
          const m = await conn.readMessage();
          if (m.kind === 'end') throw new Error('vmmd_stats closed the connection');
          if (m.kind === 'error') throw new Error(m.error);
          const w = m.wire;
          if (w.payload.kind !== 'data' || w.payload.value.kind !== 'statistics') {
            this.o.log('debug', `ignoring a ${w.payload.kind} message`);
            continue;
          }
          this.onSample(w.header.name, w.payload.value.value);
        }
      } catch (e) {
        if (!this.stopped) this.o.log('warning', `statistics: ${(e as Error).message}; reconnecting`);
      } finally {
        conn.close();
      }
      if (!this.stopped) {
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(5000, backoff * 2);
      }
    }
  }

  onSample(name: Name, d: StatsData): void {
    this.received++;
    const tags: SampleTags = { vm: vmTag(name, this.o.dropPath), name: nameToString(name) };
    const now = Date.now();
    const payload = samplePayload(tags, d, now);
    for (const s of this.o.sinks) s.write(payload);
    // a bounded map: unikernels not heard of for a while are forgotten
    this.samples.set(tags.name, { tags, data: d, at: now });
    if (this.samples.size > limits.influxMaxUnikernels) {
      const oldest = [...this.samples].sort((a, b) => a[1].at - b[1].at)[0];
      this.samples.delete(oldest[0]);
    }
  }

  metrics(): string {
    const now = Date.now();
    for (const [k, v] of this.samples) if (now - v.at > limits.influxSampleMaxAgeMs) this.samples.delete(k);
    return prometheusText(this.samples, now);
  }

  stop(): void {
    this.stopped = true;
    this.closeConn?.();
    for (const s of this.o.sinks) s.close();
  }
}

/** Serves `/metrics` (Prometheus text format) on addr. */
export function servePrometheus(r: InfluxReporter, addr: HostPort, log: Logger): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found: try /metrics\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(r.metrics());
  });
  server.maxConnections = 64;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      log('info', `serving /metrics on ${addr.host}:${addr.port}`);
      resolve(server);
    });
  });
}
