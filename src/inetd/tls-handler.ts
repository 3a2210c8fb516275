/**
 * One TLS connection of the remote endpoint, from handshake to exit (CERTS.md §5): the
 * client chain OpenSSL verified becomes a name, policies and one command
 * (core/certs.ts), the proxy runs it, and every step ends in one log line. Used by
 * vmmd_tls_inetd (one connection per process, or a series with --wait) and vmmd_tls
 * (many at once, in-process).
 */
import * as tls from 'node:tls';
import type * as net from 'node:net';
import { type Admission, type Ticket, addressKey } from '../core/admission.js';
import { commandOfChain, describeChainCommand } from '../core/certs.js';
import { limits } from '../core/limits.js';
import { type TlsConfig, clientChain, serverOf } from '../transport/tls.js';
import { type Result, ok } from '../core/result.js';
import { FramedConn } from '../transport/conn.js';
import { WIRE_VERSION } from '../core/wire/wire.js';
import { root } from '../core/name.js';
import { type EventLog, type ProxyOptions, lastingCommand, logEndpoint, proxyCommand } from './proxy.js';

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

/** Writes one failure reply carrying `reason`, then closes the connection (within 1 s). */
async function refuse(socket: tls.TLSSocket, reason: string): Promise<void> {
  const client = new FramedConn(socket);
  try {
    await client.writeMessage({ header: { version: WIRE_VERSION, sequence: 0n, name: root }, payload: { kind: 'failure', value: reason } });
  } catch {
    // the peer is gone: nothing to tell
  }
  await closeGently(socket);
}

/** Ends the connection (close_notify) and waits for it to close, at most 1 s. */
function closeGently(socket: tls.TLSSocket): Promise<void> {
  return new Promise<void>((resolve) => {
    if (socket.destroyed) return resolve();
    socket.once('close', () => resolve());
    socket.end();
    setTimeout(() => { socket.destroy(); resolve(); }, 1000).unref();
  });
}

/** Handles one established TLS connection; resolves true if a command ran and its final reply was written. */
export async function handleSecureConnection(socket: tls.TLSSocket, cfg: TlsConfig, opts: HandlerOptions): Promise<boolean> {
  const peer = peerOf(socket);
  // A refusal is answered with a failure reply naming the reason (upstream closes without
  // a message, and with TLS 1.3 its client sees the handshake succeed and then nothing).
  // A chain OpenSSL refused cannot be refused with an alert inside the handshake: node's
  // verify callback accepts every chain and reports the result once the handshake is done.
  const chain = clientChain(socket, cfg.caDer, cfg.crlPresent);
  if (!chain.ok) {
    opts.log.error(`${peer}: refused: ${chain.error}`);
    await refuse(socket, chain.error);
    return false;
  }
  const req = commandOfChain(chain.value, { now: Date.now() });
  if (!req.ok) {
    opts.log.error(`${peer}: refused: ${req.error}`);
    await refuse(socket, `refused: ${req.error}`);
    return false;
  }
  const what = describeChainCommand(req.value);
  opts.log.info(`login ${peer}: ${what}`);
  const endpoint = logEndpoint(req.value.name, socket.remoteAddress, socket.remotePort);
  // vmmd_log acknowledges after an fsync, and every write to it wakes it: the login event
  // of a command that may last (subscription, upload) travels while the command runs, and
  // the others' login goes with the logout after the client has its answer, in one write,
  // so that none of it is on the client's time
  const loginAt = Date.now();
  const login = lastingCommand(req.value.command) ? opts.events?.send({ kind: 'login', value: endpoint }) : undefined;
  const client = new FramedConn(socket);
  const total = opts.totalTimeoutMs ?? limits.totalTimeoutMs;
  let timedOut = false;
  const deadline = new AbortController();
  const timer = total > 0 ? setTimeout(() => { timedOut = true; deadline.abort(); socket.destroy(); }, total) : undefined;
  const outcome = await proxyCommand(client, req.value, { ...opts, signal: deadline.signal });
  if (timer !== undefined) clearTimeout(timer);
  const result = timedOut ? `cut off at the ${total} ms connection deadline` : outcome.result;
  await closeGently(socket);
  (outcome.replied ? opts.log.info : opts.log.error).call(opts.log, `logout ${peer}: ${what}: ${result}`);
  if (login !== undefined) {
    await login;
    await opts.events?.send({ kind: 'logout', value: endpoint });
  } else {
    await opts.events?.sendAll([{ event: { kind: 'login', value: endpoint }, timestamp: loginAt }, { event: { kind: 'logout', value: endpoint }, timestamp: Date.now() }]);
  }
  return outcome.replied && !timedOut;
}

/**
 * Log lines for refused connections, which a flood makes by the thousand: the first of
 * each kind per address is logged, the others are counted and summed up in one line per
 * kind and address every `everyMs`.
 */
class RefusalLog {
  private readonly counts = new Map<string, { n: number; line: string }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly log: Logger, private readonly everyMs = 10_000) {}

  note(key: string, line: string): void {
    const c = this.counts.get(key);
    if (c !== undefined) {
      c.n++;
      return;
    }
    this.log.error(line);
    this.counts.set(key, { n: 0, line });
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.everyMs);
      this.timer.unref();
    }
  }

  private flush(): void {
    this.timer = undefined;
    for (const { n, line } of this.counts.values()) {
      if (n > 0) this.log.error(`${n} more in ${this.everyMs / 1000} s like: ${line}`);
    }
    this.counts.clear();
  }
}

/** What createHandlerServer admits (vmmd_tls and --wait); without it every connection is handled. */
export interface Gate {
  admission: Admission;
}

/**
 * A TLS server whose connections are handled by handleSecureConnection; `done` is called
 * exactly once per connection (refusals and handshake failures included) with whether it
 * succeeded. The handshake deadline is node's (`handshakeTimeout` of the configuration;
 * it counts from the connection's arrival, bytes trickled in do not renew it). With a
 * gate, connections are admitted by its Admission (see admission.ts): refused ones are
 * closed at once.
 */
export function createHandlerServer(cfg: TlsConfig, opts: HandlerOptions, done: (ok: boolean) => void = () => {}, gate?: Gate): Result<tls.Server> {
  // no Nagle: the final reply and the close_notify that follows it are small writes, and
  // waiting for the client's delayed ACK in between costs up to 40 ms per connection
  const made = serverOf(cfg, { noDelay: true });
  if (!made.ok) return made;
  const server = made.value;
  const deadline = Number(cfg.options.handshakeTimeout ?? limits.handshakeTimeoutMs);
  interface Conn { ticket?: Ticket; finished: boolean; closedByUs: boolean; secured: boolean; peer?: string }
  const conns = new WeakMap<net.Socket, Conn>();
  const byTicket = new Map<number, net.Socket>();
  const refusals = new RefusalLog(opts.log);
  const finish = (c: Conn, ok: boolean): void => {
    if (c.finished) return;
    c.finished = true;
    done(ok);
  };
  // node's own listener has wrapped the raw socket in a TLSSocket already; this one sees the raw socket
  server.on('connection', (raw: net.Socket) => {
    const c: Conn = { finished: false, closedByUs: false, secured: false };
    conns.set(raw, c);
    // read now: once node's TLS socket has taken over the descriptor, the raw socket no longer knows its peer
    const peer = peerOf(raw);
    c.peer = peer;
    if (gate !== undefined) {
      const a = gate.admission.arrive(addressKey(raw.remoteAddress));
      if (a.kind === 'refused') {
        refusals.note(`${a.limit} ${a.address}`, `${peer}: refused: ${a.reason}`);
        c.closedByUs = true;
        raw.destroy();
        return finish(c, false);
      }
      c.ticket = a.ticket;
      byTicket.set(a.ticket.id, raw);
      if (a.evicted !== undefined) {
        const old = byTicket.get(a.evicted.id);
        const oc = old === undefined ? undefined : conns.get(old);
        if (old !== undefined && oc !== undefined) {
          opts.log.error(`${oc.peer ?? 'peer'}: closed during the TLS handshake to make room: ${gate.admission.pending} connections in the handshake (limit ${gate.admission.limits.handshakes})`);
          oc.closedByUs = true;
          old.destroy();
          finish(oc, false);
        }
      }
    }
    raw.once('close', () => {
      if (c.ticket !== undefined) {
        gate?.admission.leave(c.ticket);
        byTicket.delete(c.ticket.id);
      }
      // a connection that went away before its handshake without node reporting it
      if (!c.secured) finish(c, false);
    });
  });
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    socket.on('error', () => {});
    const raw = (socket as unknown as { _parent?: net.Socket })._parent;
    const c = raw === undefined ? undefined : conns.get(raw);
    if (c !== undefined) c.secured = true;
    if (c !== undefined && c.ticket !== undefined && gate !== undefined) {
      const why = gate.admission.secured(c.ticket);
      if (why !== undefined) {
        opts.log.error(`${peerOf(socket)}: refused: ${why}`);
        c.closedByUs = true;
        socket.destroy();
        finish(c, false);
        return;
      }
    }
    const end = (ok: boolean): void => (c === undefined ? done(ok) : finish(c, ok));
    handleSecureConnection(socket, cfg, opts).then(end, (e: unknown) => {
      opts.log.error(`${peerOf(socket)}: internal error: ${(e as Error).message}`);
      socket.destroy();
      end(false);
    });
  });
  server.on('tlsClientError', (e: Error & { code?: string }, socket: tls.TLSSocket) => {
    const raw = (socket as unknown as { _parent?: net.Socket })._parent;
    const c = raw === undefined ? undefined : conns.get(raw);
    socket.destroy();
    if (c?.closedByUs) return;
    const why = e.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? `no TLS handshake within ${deadline} ms` : e.message.replace(/\s+/g, ' ').trim();
    opts.log.error(`${c?.peer ?? peerOf(socket)}: TLS handshake failed: ${why}`);
    if (c === undefined) done(false);
    else finish(c, false);
  });
  return ok(server);
}
