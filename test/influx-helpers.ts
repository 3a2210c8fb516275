/**
 * Shared by the influx tests: a sample, a stand-in for vmmd_stats, free ports.
 * (This file has no tests of its own.)
 */
import * as net from 'node:net';
import { unwrap } from '../src/core/result.js';
import { parseName } from '../src/core/name.js';
import { data, replyString } from '../src/core/wire/wire.js';
import type { StatsData } from '../src/core/wire/stats.js';
import { FramedConn } from '../src/transport/conn.js';

const nm = (s: string) => unwrap(parseName(s));

export const sample: StatsData = {
  resourceUsage: {
    utime: { seconds: 1n, microseconds: 250000 }, stime: { seconds: 0n, microseconds: 31000 }, maxrss: 3210n, ixrss: 0n, idrss: 0n, isrss: 0n,
    minflt: 100n, majflt: 7n, nswap: 0n, inblock: 0n, outblock: 0n, msgsnd: 0n, msgrcv: 0n, nsignals: 0n, nvcsw: 150n, nivcsw: -1n,
  },
  ifdata: [{
    bridge: 'service', flags: 0x1103, sendLength: 0, maxSendLength: 0, sendDrops: 0, mtu: 1500, baudrate: 0n, inputPackets: 10n, inputErrors: 0n,
    outputPackets: 20n, outputErrors: 0n, collisions: 0n, inputBytes: 1000n, outputBytes: 2000n, inputMcast: 1n, outputMcast: 0n, inputDropped: 2n, outputDropped: 3n,
  }],
  vmmStats: [{ key: 'vcpu total runtime', value: 5n }],
  kinfoMem: { vsize: 123456789n, rss: 3210n, tsize: 52n, dsize: 2400n, ssize: 2400n, runtime: 2810000n, cow: 0, start: { seconds: 1_700_000_000n, microseconds: 0 } },
};

/** A stand-in for vmmd_stats: answers subscribe, then sends a sample for each of `names` every 50 ms. */
export async function fakeStats(path: string, d: StatsData = sample, names: string[] = ['dept:web', 'dept:db']): Promise<{ server: net.Server; subscriptions: string[]; conns: FramedConn[] }> {
  const st = { server: net.createServer(), subscriptions: [] as string[], conns: [] as FramedConn[] };
  st.server.on('connection', (s) => {
    const c = new FramedConn(s);
    st.conns.push(c);
    void (async () => {
      const m = await c.readMessage();
      if (m.kind !== 'message') return;
      st.subscriptions.push(`${m.wire.header.sequence}`);
      await c.writeMessage(replyString(m.wire.header, 'subscribed'));
      const timer = setInterval(() => {
        for (const n of names) {
          c.writeMessage(data({ version: 5, sequence: 0n, name: nm(n) }, { kind: 'statistics', value: d })).catch(() => clearInterval(timer));
        }
      }, 50);
      s.once('close', () => clearInterval(timer));
    })();
  });
  await new Promise<void>((r) => st.server.listen(path, r));
  return st;
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}
