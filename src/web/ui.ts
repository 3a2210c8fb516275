/**
 * The web UI of vmmd_web: login and logout (session cookie: HttpOnly, SameSite=Strict, Secure
 * over HTTPS; a CSRF token on every form and every changing request), and the static page and
 * script from the package's web/ directory, which use the REST API with the session.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import { limits } from '../core/limits.js';
import type { Logger } from '../daemon/server.js';
import { type Api, type Auth, clientIp, pathOf } from './api.js';
import { HttpError, readBody, sendError, sendJson } from './http.js';
import { type Store, randomSecret } from './store.js';

export interface Ui {
  attach(api: Api): void;
  handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<boolean>;
}

interface Session {
  user: string;
  csrf: string;
  expires: number;
}

const SESSION_COOKIE = 'vw_session';
const LOGIN_COOKIE = 'vw_login';

const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/app.js': 'app.js',
  '/app.css': 'app.css',
};
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

/** The web/ directory of this package: found upwards from the running code (dist/ or build/src/web/). */
export function findAssets(from: string = __dirname): string | undefined {
  let dir = from;
  for (let i = 0; i < 5; i++) {
    const c = path.join(dir, 'web', 'index.html');
    if (fs.existsSync(c)) return path.join(dir, 'web');
    dir = path.dirname(dir);
  }
  return undefined;
}

export function cookies(req: http.IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

const same = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
};

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export class WebUi implements Ui {
  private api: Api | undefined;
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly o: { store: Store; log: Logger; assets: string; secure: boolean }) {}

  attach(api: Api): void {
    this.api = api;
  }

  private cookie(name: string, value: string, maxAgeS: number): string {
    return `${name}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${this.o.secure ? '; Secure' : ''}`;
  }

  private session(req: http.IncomingMessage): { id: string; s: Session } | undefined {
    const id = cookies(req).get(SESSION_COOKIE);
    if (id === undefined) return undefined;
    const s = this.sessions.get(id);
    if (s === undefined) return undefined;
    if (s.expires < Date.now() || this.o.store.user(s.user) === undefined) {
      this.sessions.delete(id);
      return undefined;
    }
    return { id, s };
  }

  /** The API's view of a session: the user, once the CSRF token is checked for a changing request. */
  sessionAuth = (req: http.IncomingMessage, mutating: boolean): Auth | HttpError | undefined => {
    const found = this.session(req);
    if (found === undefined) return undefined;
    if (mutating) {
      const t = req.headers['x-csrf-token'];
      if (typeof t !== 'string' || !same(t, found.s.csrf)) return new HttpError(403, 'missing or wrong CSRF token (X-CSRF-Token)', 'X-CSRF-Token');
    }
    const u = this.o.store.user(found.s.user);
    if (u === undefined) return undefined;
    return { user: u, path: pathOf(u), via: 'session' };
  };

  private newSession(user: string): { id: string; s: Session } {
    if (this.sessions.size >= limits.webMaxSessions) this.sessions.delete(this.sessions.keys().next().value as string);
    const id = randomSecret(32);
    const s: Session = { user, csrf: randomSecret(24), expires: Date.now() + limits.webSessionMs };
    this.sessions.set(id, s);
    return { id, s };
  }

  private loginPage(res: http.ServerResponse, message?: string, status = 200): void {
    const token = randomSecret(24);
    const html = fs.readFileSync(path.join(this.o.assets, 'login.html'), 'utf8')
      .replace('{{csrf}}', token)
      .replace('{{message}}', message === undefined ? '' : `<p class="error" role="alert">${escapeHtml(message)}</p>`);
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': CSP,
      'set-cookie': this.cookie(LOGIN_COOKIE, token, 600),
    });
    res.end(html);
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<boolean> {
    const api = this.api;
    if (api === undefined) return false;
    const method = req.method ?? 'GET';
    const p = url.pathname;
    try {
      if (p === '/login' && method === 'GET') {
        this.loginPage(res);
        return true;
      }
      if (p === '/login' && method === 'POST') {
        const body = await readBody(req, limits.webMaxJsonBytes, 'the login form');
        const f = new URLSearchParams(body.toString('utf8'));
        const want = cookies(req).get(LOGIN_COOKIE);
        const got = f.get('csrf') ?? '';
        if (want === undefined || !same(got, want)) {
          this.o.log('info', `-@${clientIp(req)}: login refused: missing or wrong CSRF token`);
          this.loginPage(res, 'The form expired; please try again.', 403);
          return true;
        }
        try {
          const u = await api.login(req, f.get('user') ?? '', f.get('password') ?? '');
          const { id } = this.newSession(u.name);
          res.writeHead(303, {
            location: '/', 'cache-control': 'no-store',
            'set-cookie': [this.cookie(SESSION_COOKIE, id, Math.floor(limits.webSessionMs / 1000)), this.cookie(LOGIN_COOKIE, '', 0)],
          });
          res.end();
        } catch (e) {
          if (!(e instanceof HttpError)) throw e;
          this.loginPage(res, e.status === 429 ? e.message : 'Wrong user name or password.', e.status);
        }
        return true;
      }
      if (p === '/logout' && method === 'POST') {
        const found = this.session(req);
        const t = req.headers['x-csrf-token'];
        const body = await readBody(req, limits.webMaxJsonBytes, 'the logout form');
        const field = new URLSearchParams(body.toString('utf8')).get('csrf');
        const given = typeof t === 'string' ? t : field ?? '';
        if (found !== undefined) {
          if (!same(given, found.s.csrf)) throw new HttpError(403, 'missing or wrong CSRF token', 'csrf');
          this.sessions.delete(found.id);
          this.o.log('info', `${found.s.user}@${clientIp(req)}: logged out`);
        }
        res.writeHead(303, { location: '/login', 'set-cookie': this.cookie(SESSION_COOKIE, '', 0), 'cache-control': 'no-store' });
        res.end();
        return true;
      }
      if (p === '/session' && method === 'GET') {
        const found = this.session(req);
        if (found === undefined) throw new HttpError(401, 'not logged in');
        const u = this.o.store.user(found.s.user);
        sendJson(res, 200, { user: found.s.user, path: u?.path ?? '', paths: u?.paths ?? {}, admin: u?.admin === true, csrf: found.s.csrf });
        return true;
      }
      const asset = ASSETS[p];
      if (asset !== undefined && method === 'GET') {
        if (asset === 'index.html' && this.session(req) === undefined) {
          res.writeHead(303, { location: '/login', 'cache-control': 'no-store' });
          res.end();
          return true;
        }
        const file = path.join(this.o.assets, asset);
        const data = fs.readFileSync(file);
        res.writeHead(200, {
          'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'content-length': data.length,
          'cache-control': 'no-store', 'content-security-policy': CSP,
        });
        res.end(data);
        return true;
      }
    } catch (e) {
      if (e instanceof HttpError) {
        sendError(res, e);
        return true;
      }
      throw e;
    }
    return false;
  }
}
