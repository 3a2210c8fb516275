/**
 * vmmd: the privileged supervisor (upstream's albatrossd). Options as upstream's, plus
 * --restart-backoff; logs go to stderr.
 */
import { EXIT, type CliSpec, UsageError, defaultTmpdir, parseCli, runMain } from './common.js';
import { parsePath } from '../core/name.js';
import { Vmmd, connLimitsFromEnv, defaultPlatform } from '../vmmd/daemon.js';

const linux = process.platform !== 'freebsd';

const spec: CliSpec = {
  binary: 'vmmd',
  synopsis: ['vmmd [--tmpdir DIR] [--dbdir DIR] [--no-drop-path] [--allow-zvol-for PATH] [--systemd-socket-activation] [--restart-backoff MS]'],
  description: [
    'Deploys and supervises unikernels: checks policies, keeps block devices, creates tap',
    'devices, runs a Solo5 tender per unikernel, restarts unikernels that fail, and persists',
    'unikernels and policies in DBDIR/state so they come back after a restart. Listens on',
    'TMPDIR/util/vmmd.sock. The console daemon (TMPDIR/util/console.sock) must be running.',
  ].join('\n'),
  options: [
    { name: 'tmpdir', type: 'string', arg: 'DIR', default: defaultTmpdir(), help: 'Runtime directory (sockets under util/, FIFOs under fifo/, images). Must exist. ALBATROSS_TMPDIR sets the default.' },
    { name: 'dbdir', type: 'string', arg: 'DIR', default: linux ? '/var/lib/albatross' : '/var/db/albatross', help: 'State directory (state file, block/ devices, tenders). Must exist.' },
    { name: 'no-drop-path', type: 'boolean', help: 'Pass the full name (org:team:web) in --name= instead of only the label.' },
    { name: 'allow-zvol-for', type: 'string', arg: 'PATH', help: 'In this path, block devices under /dev/zvol are used without being tracked.' },
    { name: 'systemd-socket-activation', type: 'boolean', help: 'Use the socket passed by systemd (fd 3) instead of creating vmmd.sock.' },
    { name: 'restart-backoff', type: 'number', arg: 'MS', default: 1000, help: 'Delay before the second quick restart of a failing unikernel, doubling up to 60 s; 0 restarts at once every time (upstream).' },
    { name: 'influx', type: 'string', arg: 'HOST[:PORT]', help: 'Accepted for compatibility; metrics are not reported.' },
    { name: 'syslog', type: 'boolean', help: 'Accepted for compatibility; logs go to standard error.' },
    { name: 'verbose', alias: 'v', type: 'boolean', help: 'Also log informational messages.' },
    { name: 'quiet', alias: 'q', type: 'boolean', help: 'Log errors only.' },
  ],
  more: [
    'FILES',
    '  TMPDIR/util/vmmd.sock      command socket',
    '  TMPDIR/fifo/NAME           console FIFO of a unikernel',
    '  TMPDIR/NAME.img            image of a running unikernel',
    '  TMPDIR/tender/NAME         pid record of a running tender (used after a crash of vmmd)',
    '  DBDIR/state, state.bak     persisted unikernels and policies; the previous version',
    '  DBDIR/state.started        copy taken at start',
    '  DBDIR/block/NAME           block devices',
    '',
    'SIGNALS',
    '  SIGTERM, SIGINT   stop every unikernel, wait for them, exit 0 (the state file keeps them)',
    '',
    'EXIT STATUS',
    '  0 after a clean shutdown; 1 when start-up fails (missing directory, damaged state',
    '  without a usable backup, console daemon absent); 124 on a usage error.',
    '',
  ].join('\n'),
};

runMain('vmmd', async () => {
  const o = parseCli(spec);
  const verbose = o.verbose === true;
  const quiet = o.quiet === true;
  const logLine = (level: 'info' | 'warning' | 'error', msg: string): void => {
    if (level === 'info' && !verbose) return;
    if (level === 'warning' && quiet) return;
    process.stderr.write(`vmmd: [${level}] ${msg}\n`);
  };
  let zvol;
  if (typeof o['allow-zvol-for'] === 'string') {
    const n = parsePath(o['allow-zvol-for']);
    if (!n.ok) throw new UsageError(`--allow-zvol-for: ${n.error}`);
    zvol = n.value;
  }
  const backoff = o['restart-backoff'] as number;
  if (backoff < 0) throw new UsageError('--restart-backoff must be 0 or more');
  const connLimits = connLimitsFromEnv();
  if (!connLimits.ok) throw new UsageError(connLimits.error);
  const d = new Vmmd({
    tmpdir: o.tmpdir as string,
    dbdir: o.dbdir as string,
    platform: defaultPlatform(),
    dropPath: o['no-drop-path'] !== true,
    restartArgs: 'all',
    backoff: { baseMs: backoff, maxMs: 60_000, stableMs: 60_000 },
    systemdSocket: o['systemd-socket-activation'] === true,
    ...(zvol === undefined ? {} : { allowZvolFor: zvol }),
    logLine,
    requireConsole: true,
    connLimits: connLimits.value,
  });
  const r = await d.start();
  if (!r.ok) {
    process.stderr.write(`vmmd: ${r.error}\n`);
    return 1;
  }
  await d.exited;
  process.exit(EXIT.ok);
});
