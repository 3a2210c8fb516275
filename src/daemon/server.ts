/**
 * What the companion daemons (console, log, stats) share as Unix socket servers: the
 * listening socket (a fresh one at `<tmpdir>/util/<sock>`, or the one systemd passed),
 * a bound on concurrent connections, and a logger writing one line per event to stderr
 * (never stdout).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { dirname, join } from 'node:path';
import { type Result, ok, err } from '../core/result.js';
import { limits } from '../core/limits.js';
import { FramedConn } from '../transport/conn.js';
import { defaultTmpdir } from '../io/paths.js';

/** Options every companion daemon has (as declared for parseCli in src/cli/common.ts). */
export const commonDaemonOptions: { name: string; alias?: string; type: 'string' | 'boolean' | 'number'; arg?: string; default?: string | number; help: string }[] = [
  { name: 'tmpdir', type: 'string', arg: 'DIR', default: defaultTmpdir(), help: 'Runtime directory, must exist: sockets in DIR/util, console FIFOs in DIR/fifo; ALBATROSS_TMPDIR sets the default.' },
  { name: 'systemd-socket-activation', type: 'boolean', help: 'Use the listening socket passed by systemd (fd 3) instead of creating one.' },
  { name: 'verbose', alias: 'v', type: 'boolean', help: 'Log debug messages too.' },
  { name: 'quiet', alias: 'q', type: 'boolean', help: 'Log nothing.' },
  { name: 'verbosity', type: 'string', arg: 'LEVEL', help: 'Log up to LEVEL: quiet, error, warning, info or debug (default info).' },
  { name: 'max-connections', type: 'number', arg: 'N', default: limits.daemonMaxConnections, help: 'Connections served at once; more are closed at once.' },
];

export type Level = 'error' | 'warning' | 'info' | 'debug';
export type Logger = (level: Level, msg: string) => void;

const LEVELS: Record<Level, number> = { error: 1, warning: 2, info: 3, debug: 4 };

/** A logger for a daemon: `<binary>: <level>: <message>` on stderr, up to `verbosity`. */
export function stderrLogger(binary: string, verbosity: Level | 'quiet' = 'info'): Logger {
  const max = verbosity === 'quiet' ? 0 : LEVELS[verbosity];
  return (level, msg) => {
    if (LEVELS[level] <= max) process.stderr.write(`${binary}: ${level}: ${msg}\n`);
  };
}

/** The verbosity from the common options (-v, -q, --verbosity). */
export function verbosityOf(o: Record<string, unknown>): Level | 'quiet' {
  if (o.quiet === true) return 'quiet';
  const v = o.verbosity;
  if (typeof v === 'string' && (v === 'quiet' || v in LEVELS)) return v as Level | 'quiet';
  return o.verbose === true ? 'debug' : 'info';
}

/** The listening fd passed by systemd socket activation (sd_listen_fds: fd 3). */
export function systemdListenFd(env: NodeJS.ProcessEnv = process.env): Result<number> {
  const pid = env.LISTEN_PID;
  const fds = env.LISTEN_FDS;
  if (fds === undefined) return err('--systemd-socket-activation: LISTEN_FDS is not set (not started by systemd?)');
  if (pid !== undefined && pid !== String(process.pid)) return err(`--systemd-socket-activation: LISTEN_PID ${pid} is not this process`);
  if (Number(fds) < 1) return err('--systemd-socket-activation: no socket passed (LISTEN_FDS=0)');
  return ok(3);
}

/** Does something accept connections on the Unix socket at `path`? */
export function isListening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * A directory the operator names must exist: vmmd and the companion daemons do not
 * create it (a typo would otherwise start a daemon nobody finds), e.g.
 * `--tmpdir /run/albatros does not exist`.
 */
export function requireDirectory(what: string, dir: string): Result<void> {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    return err(`${what} ${dir} does not exist`);
  }
  return st.isDirectory() ? ok(undefined) : err(`${what} ${dir} is not a directory`);
}

/** The mode of the daemons' Unix sockets: owner and group may connect, whatever the umask. */
export const SOCKET_MODE = 0o660;

/** Gives a freshly bound Unix socket SOCKET_MODE (the umask left it 0755 or so). */
export function setSocketMode(path: string): void {
  try {
    fs.chmodSync(path, SOCKET_MODE);
  } catch {
    // keep the default
  }
}

/**
 * Listens on `<tmpdir>/util/<socket>` (tmpdir must exist, util is created in it; a stale
 * socket file left by a killed daemon is replaced, a live one is an error), mode 0660 as
 * vmmd.sock, or on systemd's socket.
 */
export async function listenDaemon(server: net.Server, tmpdir: string, socket: string, systemd: boolean): Promise<Result<string>> {
  const t = requireDirectory('--tmpdir', tmpdir);
  if (!t.ok) return t;
  const path = join(tmpdir, 'util', socket);
  if (systemd) {
    const fd = systemdListenFd();
    if (!fd.ok) return fd;
    return new Promise((resolve) => {
      server.once('error', (e) => resolve(err(`cannot use the socket passed by systemd: ${e.message}`)));
      server.listen({ fd: fd.value }, () => resolve(ok('systemd socket')));
    });
  }
  try {
    fs.mkdirSync(dirname(path), { recursive: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return err(`cannot create ${dirname(path)}: ${(e as Error).message}`);
  }
  if (fs.existsSync(path)) {
    if (await isListening(path)) return err(`${path} is in use: is another daemon running?`);
    try {
      fs.unlinkSync(path);
    } catch (e) {
      return err(`cannot remove stale socket ${path}: ${(e as Error).message}`);
    }
  }
  return new Promise((resolve) => {
    const onError = (e: Error): void => resolve(err(`cannot listen on ${path}: ${e.message}`));
    server.once('error', onError);
    server.listen(path, () => {
      server.off('error', onError);
      setSocketMode(path);
      resolve(ok(path));
    });
  });
}

/** Closes connections beyond `max` at once (they get no answer), logging it. */
export function capConnections(server: net.Server, log: Logger, max: number = limits.daemonMaxConnections): void {
  server.maxConnections = Math.max(1, max);
  server.on('drop', () => log('warning', `connection refused: ${max} connections already open`));
}

/**
 * Serves one client connection of a companion daemon: reads frames, decodes each with
 * `decode` and hands it to `onMessage`, which answers and says whether the connection
 * stays open for another message. Ends on the peer's end, a read or decode error
 * (logged), or `false`; the connection is always closed.
 */
export async function serveConnection<M>(
  socket: net.Socket,
  log: Logger,
  decode: (body: Uint8Array) => Result<M>,
  onMessage: (conn: FramedConn, m: M) => Promise<boolean>,
): Promise<void> {
  const conn = new FramedConn(socket, limits.daemonMaxRequestBytes);
  try {
    for (;;) {
      const r = await conn.read();
      if (r.kind === 'end') return;
      if (r.kind === 'error') {
        log('warning', `closing a connection: ${r.error}`);
        return;
      }
      const m = decode(r.body);
      if (!m.ok) {
        log('warning', `closing a connection: ${m.error}`);
        return;
      }
      if (!(await onMessage(conn, m.value))) return;
    }
  } finally {
    conn.close();
  }
}
