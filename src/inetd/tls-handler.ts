/**
 * One TLS connection of the remote endpoint, from handshake to exit (CERTS.md §5): the
 * client chain OpenSSL verified becomes a name, policies and one command
 * (core/certs.ts), the proxy runs it, and every step ends in one log line. Used by
 * vmmd_tls_inetd (one connection per process, or a series with --wait) and vmmd_tls
 * (many at once, in-process).
 */
import * as tls from 'node:tls';
import type * as net from 'node:net';
import { commandOfChain, describeChainCommand } from '../core/certs.js';
import { limits } from '../core/limits.js';
import { type TlsConfig, clientChain, serverOf } from '../transport/tls.js';
import { type Result, ok } from '../core/result.js';
import { FramedConn } from '../transport/conn.js';
import { type EventLog, type ProxyOptions, logEndpoint, proxyCommand } from './proxy.js';

export interface Logger {
  info(msg: string): void;
  error(msg: string): void;
}

export interface HandlerOptions extends ProxyOptions {
  log: Logger;
  /** Deadline for the whole connection (ms); 0 = none. */
  totalTimeoutMs?: number;
  events?: EventLog;
}

const peerOf = (s: net.Socket): string => {
  const a = s.remoteAddress;
  if (a === undefined) return 'peer';
  return a.includes(':') ? `[${a}]:${s.remotePort}` : `${a}:${s.remotePort}`;
};

/** Handles one established TLS connection; resolves true if a command ran and its final reply was written. */
export async function handleSecureConnection(socket: tls.TLSSocket, cfg: TlsConfig, opts: HandlerOptions): Promise<boolean> {
  const peer = peerOf(socket);
  const chain = clientChain(socket, cfg.caDer);
  if (!chain.ok) {
    opts.log.error(`${peer}: refused: ${chain.error}`);
    socket.destroy();
    return false;
  }
  const req = commandOfChain(chain.value, { now: Date.now() });
  if (!req.ok) {
    // upstream closes without sending any Albatross message
    opts.log.error(`${peer}: refused: ${req.error}`);
    socket.destroy();
    return false;
  }
  const what = describeChainCommand(req.value);
  opts.log.info(`login ${peer}: ${what}`);
  const endpoint = logEndpoint(req.value.name, socket.remoteAddress, socket.remotePort);
  // vmmd_log acknowledges after an fsync: the login event travels while the command
  // runs, and the logout event after the client has its answer, so that neither wait
  // is the client's
  const login = opts.events?.send({ kind: 'login', value: endpoint });
  const client = new FramedConn(socket);
  const total = opts.totalTimeoutMs ?? limits.totalTimeoutMs;
  let timedOut = false;
  const deadline = new AbortController();
  const timer = total > 0 ? setTimeout(() => { timedOut = true; deadline.abort(); socket.destroy(); }, total) : undefined;
  const outcome = await proxyCommand(client, req.value, { ...opts, signal: deadline.signal });
  if (timer !== undefined) clearTimeout(timer);
  const result = timedOut ? `cut off at the ${total} ms connection deadline` : outcome.result;
  await new Promise<void>((resolve) => {
    if (socket.destroyed) return resolve();
    socket.once('close', () => resolve());
    socket.end();
    setTimeout(() => { socket.destroy(); resolve(); }, 1000).unref();
  });
  (outcome.replied ? opts.log.info : opts.log.error).call(opts.log, `logout ${peer}: ${what}: ${result}`);
  await login;
  await opts.events?.send({ kind: 'logout', value: endpoint });
  return outcome.replied && !timedOut;
}

/**
 * A TLS server whose connections are handled by handleSecureConnection; `done` is called
 * once per connection (handshake failures included) with whether it succeeded.
 */
export function createHandlerServer(cfg: TlsConfig, opts: HandlerOptions, done: (ok: boolean) => void = () => {}): Result<tls.Server> {
  // no Nagle: the final reply and the close_notify that follows it are small writes, and
  // waiting for the client's delayed ACK in between costs up to 40 ms per connection
  const made = serverOf(cfg, { noDelay: true });
  if (!made.ok) return made;
  const server = made.value;
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    socket.on('error', () => {});
    handleSecureConnection(socket, cfg, opts).then(done, (e: unknown) => {
      opts.log.error(`${peerOf(socket)}: internal error: ${(e as Error).message}`);
      socket.destroy();
      done(false);
    });
  });
  server.on('tlsClientError', (e: Error & { code?: string }, socket: tls.TLSSocket) => {
    const why = e.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? `no TLS handshake within ${String(cfg.options.handshakeTimeout)} ms` : e.message.replace(/\s+/g, ' ').trim();
    opts.log.error(`${peerOf(socket)}: TLS handshake failed: ${why}`);
    socket.destroy();
    done(false);
  });
  return ok(server);
}
