/**
 * vmmd_stats: statistics of the running unikernels for subscribers (SEMANTICS.md §8).
 */
import * as net from 'node:net';
import { execFileSync } from 'node:child_process';
import { type CliSpec, UsageError, parseCli, runMain } from './common.js';
import { capConnections, commonDaemonOptions, listenDaemon, stderrLogger, verbosityOf } from '../daemon/server.js';
import { StatsDaemon } from '../stats/daemon.js';

const spec: CliSpec = {
  binary: 'vmmd_stats',
  synopsis: ['vmmd_stats [--tmpdir=DIR] [--interval=SECONDS] [--systemd-socket-activation]'],
  description:
    'Connects to vmmd (DIR/util/vmmd.sock) and learns from it the tender process and tap\n' +
    'devices of every running unikernel; every interval it reads their counters from /proc\n' +
    'and /sys and sends them to the subscribers on DIR/util/stat.sock (vmmc_local stats,\n' +
    'vmmd_influx). Linux only: FreeBSD is not supported yet.',
  options: [
    ...commonDaemonOptions,
    { name: 'interval', type: 'number', arg: 'SECONDS', default: 10, help: 'Seconds between two samples.' },
    { name: 'interval-ms', type: 'number', arg: 'MS', help: 'Milliseconds between two samples (overrides --interval; for tests).' },
  ],
};

function clockTicks(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim());
    return Number.isSafeInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

runMain(spec.binary, async () => {
  const o = parseCli(spec);
  if (process.platform !== 'linux') throw new UsageError(`statistics are gathered on Linux only (this is ${process.platform})`);
  const ms = o['interval-ms'] !== undefined ? (o['interval-ms'] as number) : (o.interval as number) * 1000;
  if (ms < 10) throw new UsageError('--interval must be positive');
  const log = stderrLogger(spec.binary, verbosityOf(o));
  const daemon = new StatsDaemon({ tmpdir: o.tmpdir as string, intervalMs: ms, log, clockTicks: clockTicks() });
  const server = net.createServer((s) => {
    void daemon.handle(s).catch((e: Error) => log('error', `connection: ${e.message}`));
  });
  capConnections(server, log, o['max-connections'] as number);
  const l = await listenDaemon(server, o.tmpdir as string, 'stat.sock', o['systemd-socket-activation'] === true);
  if (!l.ok) {
    log('error', l.error);
    return 1;
  }
  log('info', `listening on ${l.value}`);
  daemon.start();
  const stop = (): void => {
    daemon.stop();
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return new Promise<number>(() => undefined);
});
