/**
 * vmmd_console: buffers the console output of every unikernel and streams it to
 * subscribers (SEMANTICS.md §7).
 */
import * as net from 'node:net';
import { type CliSpec, UsageError, parseCli, runMain } from './common.js';
import { limits } from '../core/limits.js';
import { ConsoleDaemon } from '../console/daemon.js';
import { capConnections, commonDaemonOptions, listenDaemon, stderrLogger, verbosityOf } from '../daemon/server.js';


const spec: CliSpec = {
  binary: 'vmmd_console',
  synopsis: ['vmmd_console [--tmpdir=DIR] [--max-subscribers=N] [--systemd-socket-activation]'],
  description:
    'Reads the console FIFO DIR/fifo/<name> of each unikernel that vmmd announces (console add),\n' +
    `keeps its last ${limits.consoleRingLines} lines (each cut at ${limits.consoleLineBytes} bytes) and streams them to subscribers\n` +
    'on DIR/util/console.sock. Rings of stopped unikernels are kept, within bounds, until\n' +
    'the unikernel starts again.',
  options: [
    ...commonDaemonOptions,
    { name: 'max-subscribers', type: 'number', arg: 'N', default: limits.consoleMaxSubscribers, help: 'Subscribers per unikernel; a new one closes the oldest.' },
  ],
};

runMain(spec.binary, async () => {
  const o = parseCli(spec);
  const max = o['max-subscribers'] as number;
  if (max < 1) throw new UsageError('--max-subscribers must be at least 1');
  const log = stderrLogger(spec.binary, verbosityOf(o));
  const daemon = new ConsoleDaemon({ tmpdir: o.tmpdir as string, maxSubscribers: max, log });
  const server = net.createServer((s) => {
    void daemon.handle(s).catch((e: Error) => log('error', `connection: ${e.message}`));
  });
  capConnections(server, log, o['max-connections'] as number);
  const l = await listenDaemon(server, o.tmpdir as string, 'console.sock', o['systemd-socket-activation'] === true);
  if (!l.ok) {
    log('error', l.error);
    return 1;
  }
  log('info', `listening on ${l.value}`);
  const stop = (): void => {
    daemon.close();
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return new Promise<number>(() => undefined);
});
