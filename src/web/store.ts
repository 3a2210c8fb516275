/**
 * vmmd_web's state: users (password hashed with scrypt, each bound to a path), API tokens
 * (stored as SHA-256 of the token, shown once) and remote instances, in one JSON file written
 * atomically (temp, fsync, rename; mode 0600). Sessions of the web UI are kept in memory only.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/files.js';
import { type Path, parsePath } from '../core/name.js';
import { type Result, ok, err } from '../core/result.js';
import { limits } from '../core/limits.js';
import type { RemoteConfig } from './remote.js';

/** Names of instances in URLs, the state file and users' paths per instance. */
export const INSTANCE_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export interface User {
  name: string;
  /** The path the user sees and acts at or below, in text form (`acme`, `acme:team`; `` for the root). */
  path: string;
  admin: boolean;
  /**
   * The path on particular instances, by instance name, where it is not `path` (`globex:acme`
   * on host B for a user at `acme`). Set by the administrator.
   */
  paths?: Record<string, string>;
  /** `scrypt$N$r$p$salt$hash`, salt and hash in base64. */
  password: string;
  created: string;
}

export interface Token {
  /** Public identifier (shown in listings, used to revoke). */
  id: string;
  user: string;
  label: string;
  /** SHA-256 of the token, hex. */
  sha256: string;
  created: string;
}

export interface StateFile {
  version: 1;
  users: User[];
  tokens: Token[];
  instances: RemoteConfig[];
}

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 };

export function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  return new Promise((resolve, reject) => {
    crypto.scrypt(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p }, (e, key) => {
      if (e) reject(e);
      else resolve(`scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`);
    });
  });
}

export function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (m === null) return Promise.resolve(false);
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const salt = Buffer.from(m[4], 'base64');
  const want = Buffer.from(m[5], 'base64');
  return new Promise((resolve) => {
    crypto.scrypt(password, salt, want.length, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (e, key) => {
      resolve(e === null && key.length === want.length && crypto.timingSafeEqual(key, want));
    });
  });
}

export const sha256 = (s: string): string => crypto.createHash('sha256').update(s).digest('hex');
export const randomSecret = (bytes = 24): string => crypto.randomBytes(bytes).toString('base64url');

export const USER_NAME_RE = /^[a-z][a-z0-9_.-]{0,31}$/;

export function checkUserName(s: unknown): Result<string> {
  if (typeof s !== 'string' || !USER_NAME_RE.test(s)) return err('expected a user name: a lower-case letter, then up to 31 of a-z 0-9 _ . -');
  return ok(s);
}

/** A user's path in text form, parsed with the same code as the CLIs' --path. */
export function checkUserPath(s: unknown): Result<Path> {
  if (typeof s !== 'string') return err('expected a path such as acme or acme:team (empty for the root)');
  const p = parsePath(s);
  return p.ok ? p : err(p.error);
}

/** A user's paths per instance: `{INSTANCE: PATH}`, each instance name and path checked. */
export function checkInstancePaths(j: unknown): Result<Record<string, string>> {
  if (j === null || typeof j !== 'object' || Array.isArray(j)) return err('expected an object {"INSTANCE": "PATH", ...}');
  const out: Record<string, string> = {};
  const entries = Object.entries(j as Record<string, unknown>);
  for (const [k, v] of entries) {
    if (!INSTANCE_NAME_RE.test(k)) return err(`${JSON.stringify(k)}: not an instance name (a-z 0-9 . _ -, up to 63)`);
    const p = checkUserPath(v);
    if (!p.ok) return err(`${k}: ${p.error}`);
    out[k] = p.value.join(':');
  }
  return ok(out);
}

export function checkPassword(s: unknown): Result<string> {
  if (typeof s !== 'string' || s.length < 8 || s.length > limits.webMaxPasswordBytes) {
    return err(`expected a password of 8 to ${limits.webMaxPasswordBytes} characters`);
  }
  return ok(s);
}

const now = (): string => new Date().toISOString();

/**
 * Where the first start leaves the administrator's generated password when standard output is
 * not a terminal: next to the state file (`web.json` -> `web.admin-password`), mode 0600.
 * Deleted once the administrator's password is changed.
 */
export function adminPasswordFile(stateFile: string): string {
  return path.join(path.dirname(stateFile), `${path.basename(stateFile).replace(/\.json$/, '')}.admin-password`);
}

export class Store {
  private state: StateFile;
  private byToken = new Map<string, Token>();

  private constructor(readonly file: string, state: StateFile) {
    this.state = state;
    this.index();
  }

  /**
   * Loads the state file, or creates it with one administrator `admin` whose generated
   * password is returned (to be printed once).
   */
  static async open(file: string): Promise<Result<{ store: Store; adminPassword?: string }>> {
    let text: string | undefined;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return err(`cannot read ${file}: ${(e as Error).message}`);
    }
    if (text === undefined) {
      const password = randomSecret(15);
      const admin: User = { name: 'admin', path: '', admin: true, password: await hashPassword(password), created: now() };
      const store = new Store(file, { version: 1, users: [admin], tokens: [], instances: [] });
      try {
        store.save();
      } catch (e) {
        return err(`cannot write ${file}: ${(e as Error).message}`);
      }
      return ok({ store, adminPassword: password });
    }
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch (e) {
      return err(`${file}: not JSON: ${(e as Error).message}`);
    }
    const s = j as Partial<StateFile>;
    if (s === null || typeof s !== 'object' || s.version !== 1 || !Array.isArray(s.users) || !Array.isArray(s.tokens)) {
      return err(`${file}: not a vmmd_web state file (version 1 with users and tokens)`);
    }
    for (const u of s.users) {
      if (!checkUserName(u?.name).ok || !checkUserPath(u?.path).ok || typeof u.password !== 'string') return err(`${file}: malformed user ${JSON.stringify(u?.name)}`);
      if (u.paths !== undefined && !checkInstancePaths(u.paths).ok) return err(`${file}: malformed paths of user ${JSON.stringify(u.name)}`);
    }
    try {
      fs.chmodSync(file, 0o600);
    } catch {
      // read-only file system: reading is enough
    }
    return ok({ store: new Store(file, { version: 1, users: s.users, tokens: s.tokens, instances: Array.isArray(s.instances) ? s.instances : [] }) });
  }

  private index(): void {
    this.byToken = new Map(this.state.tokens.map((t) => [t.sha256, t]));
  }

  save(): void {
    writeFileAtomic(this.file, `${JSON.stringify(this.state, null, 2)}\n`, { mode: 0o600 });
  }

  get users(): readonly User[] {
    return this.state.users;
  }

  get instances(): readonly RemoteConfig[] {
    return this.state.instances;
  }

  addInstance(c: RemoteConfig): Result<void> {
    if (this.state.instances.some((i) => i.name === c.name)) return err(`instance ${c.name} exists`);
    this.state.instances.push(c);
    this.save();
    return ok(undefined);
  }

  removeInstance(name: string): Result<void> {
    const before = this.state.instances.length;
    this.state.instances = this.state.instances.filter((i) => i.name !== name);
    if (before === this.state.instances.length) return err(`no remote instance ${name}`);
    this.save();
    return ok(undefined);
  }

  user(name: string): User | undefined {
    return this.state.users.find((u) => u.name === name);
  }

  async addUser(name: string, path: string, admin: boolean, password: string): Promise<Result<User>> {
    if (this.user(name) !== undefined) return err(`user ${name} exists`);
    if (this.state.users.length >= limits.webMaxUsers) return err(`at most ${limits.webMaxUsers} users`);
    const u: User = { name, path, admin, password: await hashPassword(password), created: now() };
    this.state.users.push(u);
    this.save();
    return ok(u);
  }

  removeUser(name: string): Result<void> {
    const before = this.state.users.length;
    this.state.users = this.state.users.filter((u) => u.name !== name);
    if (this.state.users.length === before) return err(`no user ${name}`);
    this.state.tokens = this.state.tokens.filter((t) => t.user !== name);
    this.index();
    this.save();
    if (name === 'admin') this.forgetAdminPassword();
    return ok(undefined);
  }

  /** Changes a user's path, paths per instance (replaced as a whole) or administrator flag. */
  updateUser(name: string, change: { path?: string; paths?: Record<string, string>; admin?: boolean }): Result<User> {
    const u = this.user(name);
    if (u === undefined) return err(`no user ${name}`);
    if (change.path !== undefined) u.path = change.path;
    if (change.paths !== undefined) {
      if (Object.keys(change.paths).length === 0) delete u.paths;
      else u.paths = change.paths;
    }
    if (change.admin !== undefined) u.admin = change.admin;
    this.save();
    return ok(u);
  }

  async setPassword(name: string, password: string): Promise<Result<void>> {
    const u = this.user(name);
    if (u === undefined) return err(`no user ${name}`);
    u.password = await hashPassword(password);
    this.save();
    if (name === 'admin') this.forgetAdminPassword();
    return ok(undefined);
  }

  /** The first start's password file, if any, is stale once the administrator's password changed. */
  private forgetAdminPassword(): void {
    try {
      fs.rmSync(adminPasswordFile(this.file), { force: true });
    } catch {
      // a read-only directory: the file names a password that no longer works
    }
  }

  /** A new token for `user`: the secret is returned once, only its hash is kept. */
  addToken(user: string, label: string): Result<{ token: string; id: string }> {
    if (this.state.tokens.filter((t) => t.user === user).length >= limits.webMaxTokensPerUser) {
      return err(`at most ${limits.webMaxTokensPerUser} tokens per user; revoke one first`);
    }
    const id = crypto.randomBytes(6).toString('hex');
    const token = `vw_${randomSecret(24)}`;
    const t: Token = { id, user, label, sha256: sha256(token), created: now() };
    this.state.tokens.push(t);
    this.index();
    this.save();
    return ok({ token, id });
  }

  tokensOf(user: string): Token[] {
    return this.state.tokens.filter((t) => t.user === user);
  }

  removeToken(user: string, id: string): Result<void> {
    const t = this.state.tokens.find((x) => x.id === id && x.user === user);
    if (t === undefined) return err(`no token ${id}`);
    this.state.tokens = this.state.tokens.filter((x) => x !== t);
    this.index();
    this.save();
    return ok(undefined);
  }

  /** The user a bearer token belongs to. */
  userOfToken(token: string): User | undefined {
    const t = this.byToken.get(sha256(token));
    return t === undefined ? undefined : this.user(t.user);
  }
}
