/**
 * The HTTP(S) server of vmmd_web: the API under /api/v1, the web UI elsewhere.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { type Result, ok, err } from '../core/result.js';
import { Api, type ApiOptions } from './api.js';
import { HttpError, sendError } from './http.js';
import type { Ui } from './ui.js';

/** `HOST:PORT` or `[V6]:PORT`. */
export function parseListen(s: string): Result<{ host: string; port: number }> {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(s);
  if (m === null) return err(`expected HOST:PORT, got ${JSON.stringify(s)}`);
  const port = Number(m[3]);
  if (port > 65535) return err(`port ${port} is out of range`);
  return ok({ host: m[1] ?? m[2], port });
}

/** Plain HTTP carries passwords and tokens in the clear: only on a loopback address. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}

export interface WebServerOptions extends ApiOptions {
  tls?: { cert: string; key: string };
  ui?: Ui;
}

export interface WebServer {
  server: http.Server;
  api: Api;
}

const SECURITY_HEADERS: http.OutgoingHttpHeaders = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

export function makeServer(o: WebServerOptions): WebServer {
  const api = new Api(o);
  o.ui?.attach(api);
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v as string);
    if (o.tls !== undefined) res.setHeader('strict-transport-security', 'max-age=31536000');
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://vmmd-web');
    } catch {
      sendError(res, new HttpError(400, 'malformed URL', 'url'));
      return;
    }
    void (async () => {
      if (await api.handle(req, res, url)) return;
      if (o.ui !== undefined && (await o.ui.handle(req, res, url))) return;
      sendError(res, new HttpError(404, `no such page: ${url.pathname}`));
    })().catch((e: Error) => {
      o.log('error', `${req.method} ${req.url}: ${e.stack ?? e.message}`);
      sendError(res, new HttpError(500, `internal error: ${e.message}`));
    });
  };
  const server = o.tls === undefined ? http.createServer(handler) : https.createServer({ cert: o.tls.cert, key: o.tls.key, minVersion: 'TLSv1.2' }, handler);
  // uploads may be large and slow: no whole-request deadline, but headers must come quickly
  server.requestTimeout = 0;
  server.headersTimeout = 30_000;
  return { server, api };
}

export function listen(server: http.Server, host: string, port: number): Promise<Result<{ host: string; port: number }>> {
  return new Promise((resolve) => {
    server.once('error', (e) => resolve(err(`cannot listen on ${host}:${port}: ${(e as Error).message}`)));
    server.listen(port, host, () => {
      const a = server.address() as net.AddressInfo;
      resolve(ok({ host: a.address, port: a.port }));
    });
  });
}
