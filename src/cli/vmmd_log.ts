/**
 * vmmd_log: the event log (SEMANTICS.md §10): vmmd and the TLS handlers send events,
 * which are appended durably to the log file and streamed to subscribers.
 */
import * as net from 'node:net';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { type CliSpec, UsageError, die, parseCli, runMain } from './common.js';
import { capConnections, commonDaemonOptions, listenDaemon, requireDirectory, stderrLogger, verbosityOf } from '../daemon/server.js';
import { type LoadedLog, LogDaemon, loadLog } from '../log/daemon.js';
import { describeEntry } from '../log/store.js';

const spec: CliSpec = {
  binary: 'vmmd_log',
  synopsis: ['vmmd_log [--tmpdir=DIR] [--logfile=FILE] [--max-size=BYTES] [--systemd-socket-activation]', 'vmmd_log --read-only [--logfile=FILE]'],
  description:
    'Appends the events sent by vmmd and the TLS handlers (unikernel create, start with its\n' +
    'command line, stop with exit code or signal, destroy, policy and block changes, logins)\n' +
    'to FILE, each on disk (fsync) before it is acknowledged, and streams them to subscribers\n' +
    'on DIR/util/log.sock, each with its sequence number. When FILE would grow beyond\n' +
    '--max-size it is renamed to FILE.1 (replacing the previous one) and a new FILE is begun;\n' +
    'both are read at start. An incomplete last record (a crash while writing) is cut off.',
  options: [
    ...commonDaemonOptions,
    { name: 'logfile', type: 'string', arg: 'FILE', default: '/var/log/albatross/log', help: 'The log file (its directory must exist; the packages make /var/log/albatross).' },
    { name: 'max-size', type: 'number', arg: 'BYTES', default: 16 * 1024 * 1024, help: 'Rotate the log file before it grows beyond this size.' },
    { name: 'read-only', type: 'boolean', help: 'Print the log (FILE.1, then FILE), one event per line, and exit.' },
  ],
};

runMain(spec.binary, async () => {
  const o = parseCli(spec);
  const logfile = o.logfile as string;
  if (o['read-only'] === true) {
    if (!existsSync(logfile) && !existsSync(`${logfile}.1`)) die(spec.binary, 1, `no log file ${logfile} (nor ${logfile}.1)`);
    let l: LoadedLog;
    try {
      l = loadLog(logfile);
    } catch (e) {
      return die(spec.binary, 1, `cannot read the log file ${logfile}: ${(e as Error).message}`);
    }
    if (l.entries.length === 0 && (l.torn > 0 || l.skipped.length > 0)) die(spec.binary, 1, `${logfile} is not a log file (no record in it decodes)`);
    for (const m of l.skipped) process.stderr.write(`vmmd_log: skipped a record: ${m}\n`);
    if (l.torn > 0) process.stderr.write(`vmmd_log: ${logfile}: ${l.torn} bytes of an incomplete last record ignored\n`);
    process.stdout.write(l.entries.map((x) => `${describeEntry(x.entry, x.seq)}\n`).join(''));
    return 0;
  }
  const maxSize = o['max-size'] as number;
  if (maxSize < 1024) throw new UsageError('--max-size must be at least 1024 bytes');
  const log = stderrLogger(spec.binary, verbosityOf(o));
  // as vmmd: the directories must exist (checked before the startup event is written)
  for (const [what, dir] of [['--tmpdir', o.tmpdir as string], ["the log file's directory", dirname(logfile)]]) {
    const d = requireDirectory(what, dir);
    if (!d.ok) {
      log('error', d.error);
      return 1;
    }
  }
  const daemon = new LogDaemon({ logfile, maxSize, log });
  const s = await daemon.start();
  if (!s.ok) {
    log('error', s.error);
    return 1;
  }
  const server = net.createServer((sock) => {
    void daemon.handle(sock).catch((e: Error) => log('error', `connection: ${e.message}`));
  });
  capConnections(server, log, o['max-connections'] as number);
  const l = await listenDaemon(server, o.tmpdir as string, 'log.sock', o['systemd-socket-activation'] === true);
  if (!l.ok) {
    log('error', l.error);
    return 1;
  }
  log('info', `listening on ${l.value}, writing ${logfile}`);
  process.on('SIGHUP', () => void daemon.reopen());
  const stop = (): void => {
    daemon.close();
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return new Promise<number>(() => undefined);
});
