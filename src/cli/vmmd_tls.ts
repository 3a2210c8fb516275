/**
 * vmmd_tls: the remote endpoint as a long-running daemon (upstream's
 * albatross-tls-endpoint): listens on TCP, and runs the same per-connection code as
 * vmmd_tls_inetd for each client, in-process, with bounds on concurrent connections
 * (core/admission.ts: those in the handshake apart from authenticated ones).
 *
 * With --workers N > 1 (the default on a machine with several CPUs) the process is a
 * supervisor (node:cluster): it checks the configuration, starts N workers, accepts on
 * the listening socket and hands each connection to the next worker in turn, and
 * replaces a worker that dies. Each worker admits with its share of every cap
 * (perWorker), so the caps hold over all workers together.
 */
import cluster, { type Worker } from 'node:cluster';
import { isIPv4 } from 'node:net';
import { availableParallelism } from 'node:os';
import { type CliSpec, UsageError, defaultTmpdir, parseCli, runMain } from './common.js';
import { limits } from '../core/limits.js';
import { CRL_MODES, type CrlMode, loadTlsConfig, serverOf } from '../transport/tls.js';
import { createHandlerServer } from '../inetd/tls-handler.js';
import { EventLog, interleaveSequence } from '../inetd/proxy.js';
import { Admission, type AdmissionLimits, perWorker } from '../core/admission.js';
import { UploadBudget } from '../inetd/upload.js';
import { type ClosableLogger, fileLogger, quietLogger, stderrLogger, syslogLogger } from '../inetd/log.js';

const binary = 'vmmd_tls';

const spec: CliSpec = {
  binary,
  synopsis: [`${binary} CA CERT KEY [--ip=ADDR] [--port=PORT | --systemd-socket-activation] [--tmpdir=DIR] [--crl=FILE_OR_DIR [--crl-mode=present|strict]] [--workers=N]`],
  description:
    'Accepts remote clients over TLS 1.3 with a mandatory client certificate that must chain to\n' +
    'the single certificate in CA. The intermediate CAs of the client\'s chain carry policies,\n' +
    'the leaf carries one command: the policies are installed at the path the CA names form,\n' +
    'the command runs below that path, the answer is relayed and the connection closed.\n' +
    'The default address :: also accepts IPv4 clients (as IPv4-mapped addresses).',
  options: [
    { name: 'ip', type: 'string', arg: 'ADDR', default: '::', help: 'Address to listen on.' },
    { name: 'port', type: 'number', arg: 'PORT', default: 1025, help: 'TCP port to listen on.' },
    { name: 'systemd-socket-activation', type: 'boolean', help: 'Use the listening socket passed by systemd (fd 3; Accept=no).' },
    { name: 'tmpdir', type: 'string', arg: 'DIR', default: defaultTmpdir(), help: 'Runtime directory of the daemons: sockets in DIR/util.' },
    { name: 'crl', type: 'string', arg: 'FILE_OR_DIR', help: 'Refuse revoked certificates: PEM CRLs in a file or directory (see --crl-mode).' },
    { name: 'crl-mode', type: 'string', arg: 'present|strict', default: 'present', help: 'present: check each certificate against the CRLs of its issuer that --crl holds, a CA without one is no reason to refuse; strict: OpenSSL checks every certificate and refuses a chain whose CA has no current CRL (UNABLE_TO_GET_CRL, CRL_HAS_EXPIRED).' },
    { name: 'logfile', type: 'string', arg: 'FILE', help: 'Append log lines to FILE instead of standard error.' },
    { name: 'syslog', type: 'boolean', help: 'Log to syslog (daemon facility) through logger(1).' },
    { name: 'quiet', alias: 'q', type: 'boolean', help: 'Do not log.' },
    { name: 'workers', type: 'number', arg: 'N', default: availableParallelism(), help: 'Processes that accept from the listening socket (default: the number of CPUs); each has its share of every --max-* cap, rounded down; caps below N lower N. A worker that dies is replaced.' },
    { name: 'max-connections', type: 'number', arg: 'N', default: limits.maxTlsConnections, help: 'Authenticated connections (past the TLS handshake) handled at once; more are closed after their handshake.' },
    { name: 'max-handshakes', type: 'number', arg: 'N', default: limits.maxTlsHandshakes, help: 'Connections in the TLS handshake at once; beyond, the oldest of the address with the most is closed (or the new one).' },
    { name: 'max-handshakes-per-address', type: 'number', arg: 'N', default: limits.maxTlsHandshakesPerAddress, help: 'Connections in the TLS handshake from one address (IPv6: one /64); more are closed at once.' },
    { name: 'max-uploads-held', type: 'number', arg: 'MB', default: limits.uploadsHeldBytes / (1024 * 1024), help: 'Image uploads in progress hold at most this much in temporary files, over all connections; an upload beyond is refused.' },
    { name: 'handshake-timeout', type: 'number', arg: 'SECONDS', default: limits.handshakeTimeoutMs / 1000, help: 'Deadline for the TLS handshake, from the connection\'s arrival.' },
    { name: 'command-timeout', type: 'number', arg: 'SECONDS', default: limits.commandTimeoutMs / 1000, help: 'Deadline for each chunk of an upload.' },
    { name: 'idle-timeout', type: 'number', arg: 'SECONDS', default: limits.idleTimeoutMs / 1000, help: 'Deadline for each answer of a daemon (not for subscriptions); 0 = none.' },
    { name: 'total-timeout', type: 'number', arg: 'SECONDS', default: limits.totalTimeoutMs / 1000, help: 'Deadline for a whole connection, subscriptions included; 0 = none.' },
  ],
  examples: [`${binary} /etc/albatross/cacert.pem /etc/albatross/server.pem /etc/albatross/server.key --tmpdir /run/albatross`],
};

runMain(binary, async () => {
  const o = parseCli(spec);
  const [ca, cert, key, ...extra] = o._;
  if (key === undefined || extra.length > 0) throw new UsageError('expected three arguments: CA CERT KEY');
  const systemd = o['systemd-socket-activation'] === true;
  if (systemd && process.argv.some((a) => a === '--port' || a.startsWith('--port='))) {
    throw new UsageError('--port and --systemd-socket-activation exclude each other');
  }
  const ms = (name: string): number => {
    const v = o[name] as number;
    if (v < 0) throw new UsageError(`--${name} must not be negative`);
    return v * 1000;
  };
  const port = o.port as number;
  if (port < 0 || port > 65535) throw new UsageError(`--port: ${port} is not a TCP port (0 to 65535)`);
  const count = (name: string): number => {
    const v = o[name] as number;
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${name} must be a whole number of at least 1`);
    return v;
  };
  const caps: AdmissionLimits = {
    connections: count('max-connections'), handshakes: count('max-handshakes'), handshakesPerAddress: count('max-handshakes-per-address'),
  };
  const uploadsHeld = count('max-uploads-held') * 1024 * 1024;
  const log: ClosableLogger = o.logfile !== undefined ? fileLogger(binary, o.logfile as string) : o.syslog ? syslogLogger(binary) : o.quiet ? quietLogger : stderrLogger(binary);
  // why it does not start is said even with --quiet
  const fatal: ClosableLogger = log === quietLogger ? stderrLogger(binary) : log;
  const crlMode = o['crl-mode'] as CrlMode;
  if (!CRL_MODES.includes(crlMode)) throw new UsageError(`--crl-mode: ${JSON.stringify(crlMode)} is not one of ${CRL_MODES.join(', ')}`);
  // every worker shares every cap: at least one each
  const workers = Math.min(count('workers'), caps.connections, caps.handshakes, caps.handshakesPerAddress);
  if (cluster.isPrimary && workers < count('workers')) log.info(`--workers ${count('workers')}: ${workers} workers, as a cap smaller than ${count('workers')} cannot be shared`);
  const cfg = loadTlsConfig({ ca, cert, key, crlMode, ...(o.crl !== undefined ? { crl: o.crl as string } : {}) }, ms('handshake-timeout'));
  if (!cfg.ok) {
    fatal.error(cfg.error);
    await log.close();
    return 2;
  }
  if (systemd && cluster.isPrimary && (process.env.LISTEN_PID !== String(process.pid) || Number(process.env.LISTEN_FDS ?? '0') < 1)) {
    fatal.error('--systemd-socket-activation: no socket passed by systemd for this process (LISTEN_PID/LISTEN_FDS)');
    await log.close();
    return 1;
  }
  if (workers > 1 && cluster.isPrimary) {
    // the certificate and key are checked here, once, not by each worker
    const probe = serverOf(cfg.value);
    if (!probe.ok) {
      fatal.error(probe.error);
      await log.close();
      return 2;
    }
    return supervise(workers, log, caps, uploadsHeld, cfg.value.crls);
  }
  const index = cluster.isWorker ? Number(process.env.ALBATROSS_WORKER ?? '0') : 0;
  if (workers > 1) interleaveSequence(index, workers);
  const tmpdir = o.tmpdir as string;
  const events = new EventLog(tmpdir);
  const made = createHandlerServer(cfg.value, {
    tmpdir, log, events,
    commandTimeoutMs: ms('command-timeout'), idleTimeoutMs: ms('idle-timeout'), totalTimeoutMs: ms('total-timeout'),
    uploadBudget: new UploadBudget(Math.floor(uploadsHeld / workers)),
  }, undefined, { admission: new Admission(workers > 1 ? perWorker(caps, workers) : caps) });
  if (!made.ok) {
    fatal.error(made.error);
    await log.close();
    return 2;
  }
  const server = made.value;
  const where = await new Promise<string | Error>((resolve) => {
    server.once('error', resolve);
    const ip = o.ip as string;
    const ready = (): void => {
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? (isIPv4(a.address) ? `${a.address}:${a.port}` : `[${a.address}]:${a.port}`) : 'fd 3');
    };
    // in a worker, node:cluster asks the supervisor for the socket: the same one for every worker
    if (systemd) server.listen({ fd: 3 }, ready);
    else server.listen({ host: ip, port, ipv6Only: false }, ready);
  });
  if (where instanceof Error) {
    fatal.error(`cannot listen: ${where.message}`);
    await log.close();
    return 1;
  }
  server.on('error', (e) => log.error(`server: ${e.message}`));
  if (cluster.isPrimary) log.info(`listening on ${where} (protocol version 5, ${cfg.value.crls} CRLs)`);
  else process.send?.({ listening: where });
  const stop = (): void => {
    if (cluster.isPrimary) log.info('stopping');
    server.close();
    events.close();
    void log.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return new Promise<number>(() => undefined);
});

/**
 * The supervisor of `n` workers: starts them, says where they listen once all do, and
 * replaces one that dies (a worker that dies within a second of its start is replaced
 * after a second). Until all listen, a worker that exits ends the supervisor with its
 * status: they all fail alike (address in use, no permission).
 */
function supervise(n: number, log: ClosableLogger, caps: AdmissionLimits, uploadsHeld: number, crls: number): Promise<number> {
  return new Promise<number>((resolve) => {
    // the supervisor accepts and hands the connections to the workers in turn: each worker
    // admits with its share of the caps, so a burst must be shared evenly (workers that
    // accept for themselves take whole bursts, and one would refuse what the other has
    // room for). NODE_CLUSTER_SCHED_POLICY=none, node's own switch, lets them accept
    // for themselves: no hand-over through the supervisor, uneven bursts.
    if (process.env.NODE_CLUSTER_SCHED_POLICY !== 'none') cluster.schedulingPolicy = cluster.SCHED_RR;
    const share = perWorker(caps, n);
    const listening = new Set<Worker>();
    let where: string | undefined;
    let stopping = false;
    const live = new Set<Worker>();
    const fork = (index: number): void => {
      const w = cluster.fork({ ALBATROSS_WORKER: String(index) });
      const born = Date.now();
      live.add(w);
      w.on('message', (m: { listening?: string }) => {
        if (typeof m?.listening !== 'string' || listening.has(w)) return;
        listening.add(w);
        if (where !== undefined) log.info(`worker ${w.process.pid} replaces one that died, and accepts connections`);
        if (where === undefined && listening.size === n) {
          where = m.listening;
          log.info(`listening on ${where} (protocol version 5, ${crls} CRLs, ${n} workers, each at most ${share.connections} connections, `
            + `${share.handshakes} handshakes, ${share.handshakesPerAddress} per address, ${Math.floor(uploadsHeld / n / (1024 * 1024))} MB of uploads)`);
        }
      });
      w.on('exit', (code, signal) => {
        live.delete(w);
        listening.delete(w);
        if (stopping) {
          if (live.size === 0) void log.close().then(() => resolve(0));
          return;
        }
        const how = signal !== null ? `killed by ${signal}` : `exited with ${code}`;
        if (where === undefined) {
          log.error(`worker ${w.process.pid} ${how} before listening; stopping`);
          stopping = true;
          for (const o of live) o.process.kill('SIGTERM');
          if (live.size === 0) void log.close().then(() => resolve(code ?? 1));
          return;
        }
        const soon = Date.now() - born < 1000;
        log.error(`worker ${w.process.pid} ${how}; starting another${soon ? ' in 1 s' : ''}`);
        if (soon) setTimeout(() => { if (!stopping) fork(index); }, 1000);
        else fork(index);
      });
    };
    for (let i = 0; i < n; i++) fork(i);
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      log.info('stopping');
      if (live.size === 0) void log.close().then(() => resolve(0));
      for (const w of live) w.process.kill('SIGTERM');
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
