/**
 * vmmd_tls_inetd: the remote endpoint as a per-connection handler under inetd or systemd
 * (CERTS.md §5, §6). Also the local handler (`--local`) for Unix connections without TLS.
 */
import * as net from 'node:net';
import { type CliSpec, type Opts, UsageError, defaultTmpdir, parseCli } from './common.js';
import { limits } from '../core/limits.js';
import { parsePath } from '../core/name.js';
import { CRL_MODES, type CrlMode, loadTlsConfig } from '../transport/tls.js';
import { createHandlerServer, type HandlerOptions } from '../inetd/tls-handler.js';
import { handleLocalConnection } from '../inetd/local-handler.js';
import { EventLog } from '../inetd/proxy.js';
import { Admission } from '../core/admission.js';
import { type ClosableLogger, fdIsSocket, fileLogger, quietLogger, stderrLogger, syslogLogger } from '../inetd/log.js';

const binary = 'vmmd_tls_inetd';
const secs = (n: number): number => n / 1000;

const spec: CliSpec = {
  binary,
  synopsis: [
    `${binary} CA CERT KEY [--logfile=FILE | --syslog | --quiet] [--tmpdir=DIR] [--crl=FILE_OR_DIR [--crl-mode=present|strict]] [--wait] [timeouts]`,
    `${binary} --local [--logfile=FILE | --syslog | --quiet] [--path=PATH] [--tmpdir=DIR]`,
  ],
  description:
    'Handles one remote client per process under inetd (nowait): the accepted TCP socket is\n' +
    'standard input. TLS 1.3 with a mandatory client certificate that must chain to the single\n' +
    'certificate in CA; the chain\'s intermediate CAs carry policies and the leaf carries the\n' +
    'command. The policies are installed at the path the CA names form, the command runs\n' +
    'below that path, the answer is relayed, then the process exits.\n' +
    'With --wait, standard input is the listening socket (inetd "wait", systemd Accept=no):\n' +
    'connections are handled until none arrived for --linger seconds. Under systemd socket\n' +
    'activation (LISTEN_FDS) descriptor 3 is used instead of standard input.\n' +
    'With --local, standard input is a Unix stream connection without TLS: one wire message\n' +
    'is read, confined to --path if given, and relayed in the same way.\n' +
    'Standard output and error are the client\'s socket, so logging goes to --logfile or to\n' +
    'syslog via logger(1) (--syslog, also the default when no logging option is given).',
  options: [
    { name: 'tmpdir', type: 'string', arg: 'DIR', default: defaultTmpdir(), help: 'Runtime directory of the daemons: sockets in DIR/util.' },
    { name: 'crl', type: 'string', arg: 'FILE_OR_DIR', help: 'Refuse revoked certificates: PEM CRLs in a file or directory (see --crl-mode).' },
    { name: 'crl-mode', type: 'string', arg: 'present|strict', default: 'present', help: 'present: check each certificate against the CRLs of its issuer that --crl holds, a CA without one is no reason to refuse; strict: OpenSSL checks every certificate and refuses a chain whose CA has no current CRL (UNABLE_TO_GET_CRL, CRL_HAS_EXPIRED).' },
    { name: 'logfile', type: 'string', arg: 'FILE', help: 'Append log lines to FILE.' },
    { name: 'syslog', type: 'boolean', help: 'Log to syslog (daemon facility) through logger(1); the default without --logfile and --quiet.' },
    { name: 'quiet', type: 'boolean', help: 'Do not log.' },
    { name: 'handshake-timeout', type: 'number', arg: 'SECONDS', default: secs(limits.handshakeTimeoutMs), help: 'Deadline for the TLS handshake, from the connection\'s arrival.' },
    { name: 'command-timeout', type: 'number', arg: 'SECONDS', default: secs(limits.commandTimeoutMs), help: 'Deadline for the command (--local) and for each chunk of an upload.' },
    { name: 'idle-timeout', type: 'number', arg: 'SECONDS', default: secs(limits.idleTimeoutMs), help: 'Deadline for each answer of a daemon (not for subscriptions); 0 = none.' },
    { name: 'total-timeout', type: 'number', arg: 'SECONDS', default: secs(limits.totalTimeoutMs), help: 'Deadline for the whole connection, subscriptions included; 0 = none.' },
    { name: 'wait', type: 'boolean', help: 'Standard input (or descriptor 3) is a listening socket.' },
    { name: 'linger', type: 'number', arg: 'SECONDS', default: 60, help: 'With --wait: exit after this long without connections.' },
    { name: 'local', type: 'boolean', help: 'Local handler: a Unix connection without TLS.' },
    { name: 'path', type: 'string', arg: 'PATH', help: 'With --local: confine requests to names at or below PATH.' },
  ],
  examples: [
    '# /etc/inetd.conf',
    `1025 stream tcp6 nowait albatross /usr/local/bin/${binary} ${binary} /etc/albatross/cacert.pem /etc/albatross/server.pem /etc/albatross/server.key --syslog`,
  ],
  more: 'EXIT STATUS\n  0 the command ran and its answer was relayed; 1 the connection was refused or failed;\n  2 bad configuration (unreadable, empty or broken files, more than one CA certificate: one\n  line naming the file).\n',
};

/** The descriptor systemd passed (LISTEN_FDS for this process), if any. */
function systemdFd(): number | undefined {
  if (process.env.LISTEN_PID === String(process.pid) && Number(process.env.LISTEN_FDS ?? '0') >= 1) return 3;
  return undefined;
}

let log: ClosableLogger = quietLogger;

/**
 * A configuration error: logged, and without --logfile or --syslog also said on standard
 * error unless that is the client's socket.
 */
function configError(o: Opts, msg: string): void {
  if (o.logfile === undefined && !o.syslog && !fdIsSocket(2)) stderrLogger(binary).error(msg);
  log.error(msg);
}

const finish = (code: number): void => {
  void log.close().then(() => process.exit(code));
};

function main(): void {
  let o: Opts;
  try {
    o = parseCli(spec);
  } catch (e) {
    if (e instanceof UsageError && !fdIsSocket(2)) stderrLogger(binary).error(`${e.message} (see ${binary} --help)`);
    process.exit(124);
  }
  if (o.logfile !== undefined) log = fileLogger(binary, o.logfile as string);
  else if (o.quiet) log = quietLogger;
  // syslog also without a logging option: under inetd standard error is the client's
  // socket, and exiting there (as upstream does) would leave the operator nothing to read
  else log = syslogLogger(binary);
  // node prints warnings on standard error, which is the client's socket: log them instead
  process.removeAllListeners('warning');
  process.on('warning', (w) => log.error(`warning: ${w.name}: ${w.message}`));
  const crash = (e: unknown): void => {
    log.error(`internal error: ${(e as Error)?.message ?? String(e)}`);
    finish(1);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  const ms = (name: string): number => {
    const v = o[name] as number;
    if (v < 0) throw new UsageError(`--${name} must not be negative`);
    return v * 1000;
  };
  const tmpdir = o.tmpdir as string;
  const fd = systemdFd() ?? 0;
  const events = new EventLog(tmpdir);
  const common = { tmpdir, commandTimeoutMs: ms('command-timeout'), idleTimeoutMs: ms('idle-timeout'), log };

  if (o.local) {
    let path;
    if (o.path !== undefined) {
      const p = parsePath(o.path as string);
      if (!p.ok) {
        log.error(`--path: ${p.error}`);
        return finish(2);
      }
      path = p.value;
    }
    if (!fdIsSocket(fd)) {
      log.error(`descriptor ${fd} is not a socket: run from inetd or under systemd socket activation`);
      return finish(2);
    }
    const sock = new net.Socket({ fd, readable: true, writable: true });
    sock.on('error', () => {});
    handleLocalConnection(sock, { ...common, ...(path ? { path } : {}) }).then((ok) => finish(ok ? 0 : 1), crash);
    return;
  }

  const [ca, cert, key, ...extra] = o._;
  if (key === undefined || extra.length > 0) {
    log.error('expected three arguments: CA CERT KEY');
    return finish(124);
  }
  // The handler trusts the CA on its command line and nothing else (the TLS context
  // gets its own store), yet node 20 builds its default root store once, merely to
  // compare against, the first time a context is given a CA: with node's bundled roots
  // (the default) that costs each connection 25-40 ms of parsing. bin/vmmd_tls_inetd
  // runs node with --use-openssl-ca, which makes that store OpenSSL's default locations;
  // pointing the default file at nothing keeps it from being parsed as well.
  process.env.SSL_CERT_FILE = '/dev/null';
  const crlMode = o['crl-mode'] as CrlMode;
  if (!CRL_MODES.includes(crlMode)) {
    log.error(`--crl-mode: ${JSON.stringify(crlMode)} is not one of ${CRL_MODES.join(', ')}`);
    return finish(124);
  }
  const cfg = loadTlsConfig({ ca, cert, key, crlMode, ...(o.crl !== undefined ? { crl: o.crl as string } : {}) }, ms('handshake-timeout'));
  if (!cfg.ok) {
    configError(o, cfg.error);
    return finish(2);
  }
  const hopts: HandlerOptions = { ...common, totalTimeoutMs: ms('total-timeout'), events };

  if (o.wait) {
    let active = 0;
    let idleTimer: NodeJS.Timeout | undefined;
    const linger = ms('linger');
    const armIdle = (): void => {
      if (idleTimer !== undefined) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        if (active === 0) {
          log.info(`no connection for ${linger / 1000} s, exiting`);
          events.close();
          finish(0);
        }
      }, linger);
    };
    const made = createHandlerServer(cfg.value, hopts, () => {
      active--;
      if (active === 0) armIdle();
    }, { admission: new Admission({ connections: limits.maxTlsConnections, handshakes: limits.maxTlsHandshakes, handshakesPerAddress: limits.maxTlsHandshakesPerAddress }) });
    if (!made.ok) {
      configError(o, made.error);
      return finish(2);
    }
    const server = made.value;
    server.prependListener('connection', () => {
      active++;
      if (idleTimer !== undefined) clearTimeout(idleTimer);
    });
    server.on('error', (e) => {
      log.error(`listening socket: ${e.message}`);
      finish(1);
    });
    server.listen({ fd });
    armIdle();
    return;
  }

  const made = createHandlerServer(cfg.value, hopts, (ok) => {
    events.close();
    finish(ok ? 0 : 1);
  });
  if (!made.ok) {
    configError(o, made.error);
    return finish(2);
  }
  if (!fdIsSocket(fd)) {
    log.error(`descriptor ${fd} is not a socket: run from inetd (nowait), with --wait, or under systemd socket activation`);
    return finish(2);
  }
  const sock = new net.Socket({ fd, readable: true, writable: true });
  sock.on('error', () => {});
  sock.setNoDelay(true);
  made.value.emit('connection', sock);
}

main();
