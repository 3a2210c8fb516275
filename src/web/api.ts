/**
 * The REST API of vmmd_web (JSON; bearer tokens, or the UI's session cookie with its CSRF
 * token). Every field is checked with the code the CLIs use (src/core/name.ts, the option
 * parsing of src/client/commands.ts), every name against the user's path, and every action
 * is logged. Refusals are JSON: {error, status, field?}.
 */
import type * as http from 'node:http';
import * as zlib from 'node:zlib';
import { type Name, type Path, appendName, nameToString, parseName, pathIsPrefix, root } from '../core/name.js';
import type { Command, Wire } from '../core/wire/wire.js';
import type { NamedInfo } from '../core/wire/unikernel.js';
import type { BlockDeviceInfo } from '../core/wire/block.js';
import type { Policy } from '../core/wire/common.js';
import type { StatsData } from '../core/wire/stats.js';
import type { UnikernelStatus } from '../core/wire/status.js';
import { type LogWire, logEventName } from '../core/wire/log.js';
import { formatMac } from '../core/unikernel.js';
import { limits } from '../core/limits.js';
import { type Opts, buildRequest, parseSince } from '../client/commands.js';
import { describeLogMessage, rfc3339 } from '../client/output.js';
import type { Logger } from '../daemon/server.js';
import { type Store, type User, checkInstancePaths, checkPassword, checkUserName, checkUserPath, randomSecret, verifyPassword } from './store.js';
import { type HeldImage, type Instance, type Outcome, readLog, runCommand } from './instance.js';
import { EventStream, HttpError, badField, readBody, readJson, sendError, sendJson } from './http.js';
import { type Held, type HeldBody, bodyToFile, imageMark, parseHeldMultipart, readHeld, sparseImage } from './upload.js';
import { type Registry, INSTANCE_NAME_RE } from './registry.js';
import { parseDestination } from '../client/remote.js';
import { endpointRefusal, notRelayed } from './remote.js';
import { checkWithin, nameWithin, parseTargetName, pathStrictlyBelow, showPath } from './access.js';

/** How long a recent-lines read waits for more history before answering. */
export const QUIET_MS = 200;

/** What a subscription's next message gave: an item, nothing to pass on, or its end (why). */
type Next<T> = { item: T } | { end: string } | undefined;

/**
 * The loop of a history-or-live subscription (console lines, log events). With a stream, every
 * item is sent as `event` until the subscription ends (`end`, with the reason) or fails
 * (`error`); without, items are collected until QUIET_MS pass without a message or `max` are
 * held, and a failure is thrown. `start` (inside the loop's error handling) reads what comes
 * before the items; `next` reads one message, waiting at most the time it is given (none when
 * live). The connection and the stream are closed at the end either way.
 */
async function collectOrStream<T>(conn: { close(): void }, stream: EventStream | undefined, event: string, max: number,
  next: (waitMs: number | undefined) => Promise<Next<T>>, start?: () => Promise<void>): Promise<T[]> {
  const items: T[] = [];
  try {
    await start?.();
    for (;;) {
      const r = await next(stream ? undefined : QUIET_MS);
      if (r === undefined) continue;
      if ('end' in r) {
        stream?.send('end', { reason: r.end });
        break;
      }
      if (stream) stream.send(event, r.item);
      else {
        items.push(r.item);
        if (items.length >= max) break;
      }
    }
  } catch (e) {
    if (!stream) throw e;
    stream.send('error', { error: (e as Error).message });
  } finally {
    conn.close();
    stream?.close();
  }
  return items;
}

type FieldType = 'number' | 'numbers' | 'string' | 'strings' | 'boolean';
const CONFIG_FIELDS: Record<string, FieldType> = {
  mem: 'number', cpu: 'numbers', block: 'strings', net: 'strings', arg: 'strings', startup: 'number', 'add-name': 'boolean',
  'restart-on-fail': 'boolean', 'exit-code': 'numbers', cpus: 'number', 'linux-boot': 'string',
};
export const CREATE_FIELDS: Record<string, FieldType> = { ...CONFIG_FIELDS, typ: 'string', force: 'boolean', 'compression-level': 'number' };
export const RESTART_FIELDS: Record<string, FieldType> = { ...CONFIG_FIELDS, 'replace-arguments': 'boolean' };
export const POLICY_FIELDS: Record<string, FieldType> = { unikernels: 'number', mem: 'number', cpu: 'numbers', size: 'number', bridge: 'strings' };

/** Values of a request's fields (query string, form or JSON), each as a list. */
export type Fields = Map<string, unknown[]>;

export function fieldsOfQuery(q: URLSearchParams): Fields {
  const f: Fields = new Map();
  for (const [k, v] of q) f.set(k, [...(f.get(k) ?? []), v]);
  return f;
}

export function fieldsOfJson(j: Record<string, unknown>): Fields {
  const f: Fields = new Map();
  for (const [k, v] of Object.entries(j)) f.set(k, Array.isArray(v) ? v : [v]);
  return f;
}

function intValue(field: string, v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && /^-?[0-9]+$/.test(v.trim())) {
    const n = Number(v);
    if (Number.isSafeInteger(n)) return n;
  }
  throw badField(field, `expected an integer, got ${JSON.stringify(v)}`);
}

function boolValue(field: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1' || v === 'on' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'off' || v === 'no') return false;
  throw badField(field, `expected true or false, got ${JSON.stringify(v)}`);
}

/**
 * The fields as the CLIs' option object (same names as vmmc_local's options), so that
 * buildRequest checks them exactly as it checks a command line. Unknown fields are refused.
 */
export function optsOf(fields: Fields, spec: Record<string, FieldType>, skip: readonly string[] = []): Opts {
  const o: Opts = {};
  for (const [k, raw] of fields) {
    if (skip.includes(k)) continue;
    const t = spec[k];
    if (t === undefined) throw badField(k, `unknown field (expected one of ${Object.keys(spec).join(', ')})`);
    // an empty form input is an absent field
    const vs = raw.filter((v) => v !== '' && v !== null && v !== undefined);
    if (vs.length === 0) continue;
    if ((t === 'number' || t === 'string' || t === 'boolean') && vs.length > 1) throw badField(k, 'given more than once');
    switch (t) {
      case 'number':
        o[k] = intValue(k, vs[0]);
        break;
      case 'numbers':
        o[k] = vs.map((v) => intValue(k, v));
        break;
      case 'string':
        if (typeof vs[0] !== 'string') throw badField(k, `expected a string, got ${JSON.stringify(vs[0])}`);
        o[k] = vs[0];
        break;
      case 'strings':
        for (const v of vs) if (typeof v !== 'string') throw badField(k, `expected strings, got ${JSON.stringify(v)}`);
        o[k] = vs as string[];
        break;
      case 'boolean':
        o[k] = boolValue(k, vs[0]);
        break;
    }
  }
  if (o['add-name'] === undefined) o['add-name'] = true;
  return o;
}

/** Which field a message of buildRequest is about (`--block "x": ...` is about block). */
function fieldOfMessage(message: string, fallback: string): string {
  const m = /--([a-z][a-z-]*)/.exec(message);
  return m ? m[1] : fallback;
}

function build(sub: string, args: string[], opts: Opts, fallbackField: string, image?: Uint8Array): Command[] {
  const r = buildRequest({ sub, args, opts, dest: 'local', image });
  if (!r.ok) {
    const f = fieldOfMessage(r.error.message, fallbackField);
    const msg = r.error.message.replace(/^--[a-z-]+:?\s*/, '');
    throw new HttpError(400, `${f}: ${msg}`, f);
  }
  if (r.value.kind !== 'commands') throw new HttpError(500, `${sub}: not a command`);
  return r.value.steps.map((s) => s.command);
}

// ------------------------------------------------------------------ JSON of answers

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function unikernelJson(instance: string, name: Name, i: NamedInfo['info']): Record<string, unknown> {
  return {
    instance,
    name: nameToString(name),
    type: i.typ,
    cpuids: i.cpuids,
    memory: i.memory,
    cpus: i.cpus,
    startup: i.startup ?? 50,
    failBehaviour: i.failBehaviour.kind === 'quit' ? { kind: 'quit' } : { kind: 'restart', exitCodes: i.failBehaviour.value },
    digest: hex(i.digest),
    blocks: i.blocks.map((b) => ({ name: b.unikernelDevice, hostDevice: b.hostDevice, sectorSize: b.sectorSize, sizeMb: b.blockSize })),
    bridges: i.bridges.map((n) => ({ name: n.unikernelDevice, bridge: n.hostDevice, mac: formatMac(n.mac) })),
    arguments: i.arguments ?? null,
    started: rfc3339(i.started),
    ...(i.linuxBootPartition === undefined ? {} : { linuxBootPartition: i.linuxBootPartition }),
  };
}

/**
 * A unikernel's state from vmmd's status query: `running` (pid, failures so far, since when),
 * or `restarting` (failures, when the next start is due). Absent from the status reply: running.
 */
export function stateJson(s: UnikernelStatus['state'] | undefined): Record<string, unknown> {
  if (s === undefined) return { kind: 'running' };
  if (s.kind === 'running') return { kind: 'running', pid: s.value.pid, failures: s.value.failures, since: new Date(s.value.started).toISOString() };
  return { kind: 'restarting', failures: s.value.failures, nextStart: new Date(s.value.due).toISOString() };
}

const policyJson = (p: Policy): Record<string, unknown> => ({
  unikernels: Number(p.unikernels), cpuids: p.cpuids, memory: p.memory, block: p.block ?? null, bridges: p.bridges,
});

export function statsJson(name: Name, d: StatsData, time: number): Record<string, unknown> {
  const r = d.resourceUsage;
  const secs = (t: { seconds: bigint; microseconds: number }): number => Number(t.seconds) + t.microseconds / 1e6;
  return {
    name: nameToString(name),
    time: new Date(time).toISOString(),
    utime: secs(r.utime),
    stime: secs(r.stime),
    maxrssKb: Number(r.maxrss),
    rssPages: d.kinfoMem === undefined ? null : Number(d.kinfoMem.rss),
    vsizeBytes: d.kinfoMem === undefined ? null : Number(d.kinfoMem.vsize),
    net: d.ifdata.map((i) => ({
      bridge: i.bridge, inBytes: Number(i.inputBytes), outBytes: Number(i.outputBytes),
      inPackets: Number(i.inputPackets), outPackets: Number(i.outputPackets),
    })),
  };
}

function logJson(m: LogWire): Record<string, unknown> | undefined {
  const p = m.payload;
  if (p.kind !== 'data') return undefined;
  const text = describeLogMessage({ colour: false }, m).trimEnd();
  const n = logEventName(p.value.event);
  return {
    time: rfc3339(p.value.timestamp),
    event: p.value.event.kind,
    name: n === undefined ? null : nameToString(n),
    text: text.slice(text.indexOf(' ') + 1),
  };
}

// ------------------------------------------------------------------ the API

export interface Auth {
  user: User;
  path: Path;
  /** How the request was authenticated. */
  via: 'token' | 'session';
}

export interface ApiOptions {
  store: Store;
  instances: () => Instance[];
  /** Adds and removes remote instances (the administrator's /instances calls). */
  registry?: Registry;
  log: Logger;
  maxUploadBytes: number;
  /** Session lookup of the web UI (cookie and CSRF check); undefined: API tokens only. */
  sessionAuth?: (req: http.IncomingMessage, mutating: boolean) => Auth | HttpError | undefined;
}

/** Failed logins per client address (a sliding window), bounded in the addresses it remembers. */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();
  constructor(private readonly max = limits.webLoginFailures, private readonly windowMs = limits.webLoginWindowMs) {}

  /** Seconds to wait before another attempt, or 0. */
  blockedFor(ip: string, now = Date.now()): number {
    const ts = (this.failures.get(ip) ?? []).filter((t) => now - t < this.windowMs);
    if (ts.length < this.max) return 0;
    return Math.ceil((ts[0] + this.windowMs - now) / 1000);
  }

  fail(ip: string, now = Date.now()): void {
    const ts = (this.failures.get(ip) ?? []).filter((t) => now - t < this.windowMs);
    ts.push(now);
    this.failures.delete(ip);
    this.failures.set(ip, ts.slice(-this.max));
    if (this.failures.size > limits.webLoginTracked) this.failures.delete(this.failures.keys().next().value as string);
  }

  succeed(ip: string): void {
    this.failures.delete(ip);
  }
}

export const clientIp = (req: http.IncomingMessage): string => req.socket.remoteAddress ?? '?';

export class Api {
  readonly limiter = new LoginLimiter();
  private streams = 0;
  private readonly streamsOf = new Map<string, number>();

  constructor(private readonly o: ApiOptions) {}

  private say(req: http.IncomingMessage, who: string, what: string): void {
    this.o.log('info', `${who}@${clientIp(req)}: ${what}`);
  }

  /** Checks a user name and password, counting failures per client address. */
  async login(req: http.IncomingMessage, user: unknown, password: unknown): Promise<User> {
    const ip = clientIp(req);
    const wait = this.limiter.blockedFor(ip);
    if (wait > 0) {
      this.say(req, String(user), `login refused: too many failed logins from this address (try again in ${wait} s)`);
      throw new HttpError(429, `too many failed logins from ${ip}; try again in ${wait} s`);
    }
    if (typeof user !== 'string' || user === '') throw badField('user', 'expected a user name');
    if (typeof password !== 'string' || password === '') throw badField('password', 'expected a password');
    if (password.length > limits.webMaxPasswordBytes) throw badField('password', `longer than ${limits.webMaxPasswordBytes} characters`);
    const u = this.o.store.user(user);
    const good = u !== undefined && (await verifyPassword(password, u.password));
    if (u === undefined || !good) {
      this.limiter.fail(ip);
      this.say(req, user, 'login failed: wrong user name or password');
      throw new HttpError(401, 'wrong user name or password');
    }
    this.limiter.succeed(ip);
    this.say(req, user, 'logged in');
    return u;
  }

  /** The current password of one's own account, counted as a login attempt. */
  private async checkCurrent(req: http.IncomingMessage, u: User, current: unknown): Promise<void> {
    const ip = clientIp(req);
    const wait = this.limiter.blockedFor(ip);
    if (wait > 0) throw new HttpError(429, `too many failed logins from ${ip}; try again in ${wait} s`);
    if (typeof current !== 'string' || current === '') throw badField('current', 'expected the current password');
    if (current.length > limits.webMaxPasswordBytes || !(await verifyPassword(current, u.password))) {
      this.limiter.fail(ip);
      this.say(req, u.name, 'password change refused: wrong current password');
      throw new HttpError(403, 'wrong current password', 'current');
    }
    this.limiter.succeed(ip);
  }

  private authenticate(req: http.IncomingMessage, mutating: boolean): Auth {
    const h = req.headers.authorization;
    if (h !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(h);
      if (m === null) throw new HttpError(401, 'Authorization: expected "Bearer TOKEN"');
      const u = this.o.store.userOfToken(m[1]);
      if (u === undefined) {
        this.say(req, '-', `refused ${req.method} ${req.url}: unknown token`);
        throw new HttpError(401, 'unknown or revoked token');
      }
      return { user: u, path: pathOf(u), via: 'token' };
    }
    const s = this.o.sessionAuth?.(req, mutating);
    if (s instanceof HttpError) throw s;
    if (s !== undefined) return s;
    throw new HttpError(401, 'no credentials: send "Authorization: Bearer TOKEN"');
  }

  /**
   * The instances a user sees: all for an administrator; for others those where the user's
   * path there is served (a remote instance stands for one path, and its name, address and
   * path are no business of another tenant's).
   */
  private visible(a: Auth): Instance[] {
    return this.o.instances().filter((i) => a.user.admin || i.scope === undefined || i.scope(pathOf(a.user, i.name)) !== undefined);
  }

  /** A visible instance by name; an instance the user does not see is as unknown as one that does not exist (404). */
  private instance(a: Auth, name: string): Instance {
    const i = this.visible(a).find((x) => x.name === name);
    if (i === undefined) throw new HttpError(404, `no instance ${JSON.stringify(name)} (see GET /api/v1/instances)`, 'instance');
    return i;
  }

  /** The named target of a URL segment, checked against the user's path (403). */
  private target(a: Auth, segment: string, what = 'name'): Name {
    const n = parseTargetName(segment);
    if (!n.ok) throw badField(what, n.error);
    const w = checkWithin(a.user.name, a.path, n.value);
    if (!w.ok) throw new HttpError(403, w.error, what);
    return n.value;
  }

  /** Runs one command and turns a failure answer into 409, an unreachable daemon into 502. */
  private async run(req: http.IncomingMessage, a: Auth, inst: Instance, name: Name, cmd: Command, action: string, upload?: Uint8Array | Held, held?: HeldImage): Promise<Wire[]> {
    const r: Outcome = await runCommand(inst, name, cmd, upload, held);
    const what = `${action} ${nameToString(name)} on ${inst.name}`;
    if (r.kind === 'unreachable') {
      this.say(req, a.user.name, `${what}: ${r.message}`);
      throw new HttpError(502, `${inst.name}: ${r.message}`);
    }
    if (r.kind === 'failure') {
      this.say(req, a.user.name, `${what}: failed: ${r.message}`);
      throw new HttpError(409, r.message);
    }
    if (action !== 'info' && action !== 'block info' && action !== 'policy info') this.say(req, a.user.name, `${what}: done`);
    return r.wires;
  }

  private replyText(ws: Wire[]): string {
    const p = ws[0]?.payload;
    if (p?.kind === 'reply' && p.value.kind === 'string') return p.value.value;
    return 'success';
  }

  /**
   * An instance as GET /instances lists it; with `status`, probed by a listing at the user's path
   * there: `up` and the number of the user's unikernels, or the error (`up` false when the host
   * cannot be reached, true with `error` for any other refusal, e.g. nothing of the user there).
   */
  private async instanceEntry(req: http.IncomingMessage, a: Auth, i: Instance, status: boolean): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = { name: i.name, kind: i.kind, where: i.where, path: a.user.paths?.[i.name] ?? a.user.path };
    if (!status) return out;
    try {
      const us = await this.unikernels(req, on(a, i), i);
      return { ...out, up: true, unikernels: us.length };
    } catch (e) {
      const he = e instanceof HttpError ? e : new HttpError(500, String(e));
      return { ...out, up: he.status !== 502, error: he.message };
    }
  }

  /** Where the user's listings are made on an instance (403 if the user has nothing there). */
  private scope(a: Auth, inst: Instance): Path {
    if (inst.scope === undefined) return a.path;
    const p = inst.scope(a.path);
    if (p === undefined) throw new HttpError(403, `${a.user.name} has nothing on instance ${inst.name}, which serves ${inst.where}`, 'instance');
    return p;
  }

  async unikernels(req: http.IncomingMessage, a: Auth, inst: Instance, single?: Name): Promise<Record<string, unknown>[]> {
    const base = this.scope(a, inst);
    const q: Name = single ?? { path: base };
    // asked beside info: the state of each (failures, restarts); info lists running ones only
    const status = inst.status?.(q);
    const ws = await this.run(req, a, inst, q, { kind: 'unikernel', value: { kind: 'info', value: null } }, 'info');
    const p = ws[0].payload;
    if (p.kind !== 'reply' || (p.value.kind !== 'unikernel_info' && p.value.kind !== 'unikernel_info_v5' && p.value.kind !== 'unikernel_info_v4')) {
      throw new HttpError(502, `${inst.name}: unexpected answer to info`);
    }
    const st = status === undefined ? undefined : await status;
    // the entries of a path are named relative to it, the one of a unikernel by its own name
    // why the state is unknown (state null), e.g. an endpoint that does not relay the status query
    const stateError = st !== undefined && !st.ok ? { stateError: st.error } : {};
    const states = st?.ok === true ? new Map(st.value.map((x) => [nameToString(single ?? appendName(base, x.name)), x.state])) : undefined;
    const out: Record<string, unknown>[] = [];
    for (const x of p.value.value) {
      const abs = single ?? appendName(base, x.name);
      if (abs.label === undefined || !nameWithin(abs, a.path)) continue;
      const key = nameToString(abs);
      out.push({ ...unikernelJson(inst.name, abs, x.info), state: states === undefined ? null : stateJson(states.get(key)), ...stateError });
      states?.delete(key);
    }
    // those waiting out a restart back-off: not in info, only their name and state are known
    const running = out.length;
    for (const [key, state] of states ?? []) {
      if (state.kind !== 'restarting' || (single !== undefined && key !== nameToString(single))) continue;
      const n = parseName(key);
      if (!n.ok || !nameWithin(n.value, a.path)) continue;
      out.push({ instance: inst.name, name: key, state: stateJson(state) });
    }
    if (out.length > running) out.sort((x, y) => (String(x.name) < String(y.name) ? -1 : String(x.name) > String(y.name) ? 1 : 0));
    return out;
  }

  async blocks(req: http.IncomingMessage, a: Auth, inst: Instance): Promise<Record<string, unknown>[]> {
    const base = this.scope(a, inst);
    const ws = await this.run(req, a, inst, { path: base }, { kind: 'block', value: { kind: 'info', value: null } }, 'block info');
    const p = ws[0].payload;
    if (p.kind !== 'reply' || p.value.kind !== 'block_devices') throw new HttpError(502, `${inst.name}: unexpected answer to block info`);
    return (p.value.value as BlockDeviceInfo[])
      .map((b) => ({ abs: appendName(base, b.name), b }))
      .filter(({ abs }) => abs.label !== undefined && nameWithin(abs, a.path))
      .map(({ abs, b }) => ({ instance: inst.name, name: nameToString(abs), sizeMb: b.size, active: b.active }));
  }

  async policies(req: http.IncomingMessage, a: Auth, inst: Instance): Promise<Record<string, unknown>[]> {
    const base = this.scope(a, inst);
    const ws = await this.run(req, a, inst, { path: base }, { kind: 'policy', value: { kind: 'info', value: null } }, 'policy info');
    const p = ws[0].payload;
    if (p.kind !== 'reply' || p.value.kind !== 'policies') throw new HttpError(502, `${inst.name}: unexpected answer to policy info`);
    const list = p.value.value.map((x) => ({ path: appendName(base, x.name).path, policy: x.policy })).filter((x) => pathIsPrefix(a.path, x.path));
    if (list.length === 0) return [];
    const us = await this.unikernels(req, a, inst);
    const bs = await this.blocks(req, a, inst);
    return list.map(({ path, policy }) => {
      const below = (s: unknown): boolean => {
        const n = parseName(String(s));
        return n.ok && nameWithin(n.value, path);
      };
      const mine = us.filter((u) => below(u.name));
      const myBlocks = bs.filter((b) => below(b.name));
      return {
        instance: inst.name,
        path: path.join(':'),
        policy: policyJson(policy),
        used: {
          unikernels: mine.length,
          memory: mine.reduce((s, u) => s + (u.memory as number), 0),
          block: myBlocks.reduce((s, b) => s + (b.sizeMb as number), 0),
          cpuids: [...new Set(mine.flatMap((u) => u.cpuids as number[]))].sort((x, y) => x - y),
          bridges: [...new Set(mine.flatMap((u) => (u.bridges as { bridge: string }[]).map((b) => b.bridge)))].sort(),
        },
      };
    });
  }

  // -------------------------------------------------------------- live streams

  private openStream(req: http.IncomingMessage, res: http.ServerResponse, a: Auth, what: string): EventStream {
    const mine = this.streamsOf.get(a.user.name) ?? 0;
    if (mine >= limits.webMaxStreamsPerUser) throw new HttpError(429, `at most ${limits.webMaxStreamsPerUser} live streams per user; close one first`);
    if (this.streams >= limits.webMaxStreams) throw new HttpError(503, `at most ${limits.webMaxStreams} live streams at once`);
    this.streams++;
    this.streamsOf.set(a.user.name, mine + 1);
    const s = new EventStream(res, limits.webStreamBufferBytes, () => this.say(req, a.user.name, `${what}: closed, the client did not keep up (more than ${limits.webStreamBufferBytes} bytes unread)`));
    s.onClose(() => {
      this.streams--;
      const n = (this.streamsOf.get(a.user.name) ?? 1) - 1;
      if (n <= 0) this.streamsOf.delete(a.user.name);
      else this.streamsOf.set(a.user.name, n);
    });
    this.say(req, a.user.name, `${what}: live stream opened`);
    return s;
  }

  private sinceCount(q: URLSearchParams, def: number): { kind: 'since'; value: number } | { kind: 'count'; value: number } {
    const since = q.get('since');
    if (since !== null && since !== '') {
      const t = parseSince(since);
      if (!t.ok) throw badField('since', t.error.message.replace(/^--since /, ''));
      return { kind: 'since', value: t.value };
    }
    const c = q.get('count');
    if (c === null || c === '') return { kind: 'count', value: def };
    const n = intValue('count', c);
    if (n < 0 || n > limits.consoleRingLines) throw badField('count', `expected 0 to ${limits.consoleRingLines}`);
    return { kind: 'count', value: n };
  }

  /** Console lines: recent ones (history until quiet), or live as server-sent events. */
  private async console(req: http.IncomingMessage, res: http.ServerResponse, a: Auth, inst: Instance, name: Name, q: URLSearchParams, live: boolean): Promise<void> {
    const since = this.sinceCount(q, live ? 20 : 100);
    const stream = live ? this.openStream(req, res, a, `console of ${nameToString(name)} on ${inst.name}`) : undefined;
    const c = await inst.open(name, { kind: 'console', value: { kind: 'subscribe', value: since } });
    if (!c.ok) {
      if (stream) {
        stream.send('error', { error: `${inst.name}: ${c.error}` });
        stream.close();
        return;
      }
      throw new HttpError(502, `${inst.name}: ${c.error}`);
    }
    const conn = c.value;
    stream?.onClose(() => conn.close());
    const lines = await collectOrStream(conn, stream, 'line', limits.consoleRingLines, async (waitMs): Promise<Next<{ time: string; line: string }>> => {
      const m = await conn.readMessage(waitMs);
      if (m.kind !== 'message') return { end: m.kind === 'error' ? m.error : 'the console daemon ended the subscription' };
      const d = m.wire.payload;
      if (d.kind !== 'data' || d.value.kind !== 'console') return undefined;
      return { item: { time: rfc3339(d.value.value.timestamp), line: d.value.value.line } };
    }, async () => {
      const first = await conn.readMessage(10_000);
      if (first.kind !== 'message') throw new HttpError(502, `${inst.name}: console: ${first.kind === 'error' ? first.error : 'no answer'}`);
      const p = first.wire.payload;
      if (p.kind === 'failure') throw new HttpError(409, p.value);
      stream?.send('subscribed', { instance: inst.name, name: nameToString(name) });
    });
    if (!stream) sendJson(res, 200, { instance: inst.name, name: nameToString(name), lines });
  }

  private async stats(req: http.IncomingMessage, res: http.ServerResponse, a: Auth, inst: Instance, name: Name): Promise<void> {
    const stream = this.openStream(req, res, a, `statistics of ${nameToString(name)} on ${inst.name}`);
    const c = await inst.open(name, { kind: 'stats', value: { kind: 'subscribe', value: null } });
    if (!c.ok) {
      stream.send('error', { error: `${inst.name}: ${c.error}` });
      stream.close();
      return;
    }
    const conn = c.value;
    stream.onClose(() => conn.close());
    try {
      for (;;) {
        const m = await conn.readMessage();
        if (m.kind !== 'message') {
          stream.send('end', { reason: m.kind === 'error' ? m.error : 'the statistics daemon ended the subscription' });
          break;
        }
        const p = m.wire.payload;
        if (p.kind === 'failure') {
          stream.send('error', { error: p.value });
          break;
        }
        if (p.kind === 'reply') stream.send('subscribed', { instance: inst.name, name: nameToString(name) });
        if (p.kind === 'data' && p.value.kind === 'statistics') stream.send('stats', statsJson(name, p.value.value, Date.now()));
      }
    } finally {
      conn.close();
      stream.close();
    }
  }

  private async eventLog(req: http.IncomingMessage, res: http.ServerResponse, a: Auth, inst: Instance, q: URLSearchParams, live: boolean): Promise<void> {
    if (inst.openLog === undefined) throw new HttpError(501, `${inst.name}: the event log is not available for this instance`);
    let sub: Name = { path: a.path };
    const nameParam = q.get('name');
    if (nameParam !== null && nameParam !== '') sub = this.target(a, nameParam);
    const since = this.sinceCount(q, live ? 20 : 100);
    const stream = live ? this.openStream(req, res, a, `event log of ${nameToString(sub)} on ${inst.name}`) : undefined;
    const c = await inst.openLog(sub, since);
    if (!c.ok) {
      if (stream) {
        stream.send('error', { error: `${inst.name}: ${c.error}` });
        stream.close();
        return;
      }
      throw new HttpError(502, `${inst.name}: ${c.error}`);
    }
    const conn = c.value;
    stream?.onClose(() => conn.close());
    // a remote endpoint that cannot relay the subscription closes or refuses before vmmd_log's reply
    let answered = false;
    const visible = (m: LogWire): boolean => {
      if (m.payload.kind !== 'data') return false;
      const n = logEventName(m.payload.value.event);
      if (n === undefined) return a.path.length === 0;
      if (sub.label !== undefined) return nameToString(n) === nameToString(sub);
      return nameWithin(n, a.path);
    };
    const events = await collectOrStream(conn, stream, 'event', limits.logHistoryEntries, async (waitMs): Promise<Next<Record<string, unknown>>> => {
      const r = await readLog(conn, waitMs);
      if (r.kind !== 'message') {
        if (!answered && inst.kind === 'remote' && r.kind === 'end') throw new HttpError(501, `${inst.name}: ${notRelayed('log')}`);
        return { end: r.kind === 'error' ? r.error : 'the log daemon ended the subscription' };
      }
      if (r.msg.payload.kind === 'failure') {
        const f = r.msg.payload.value;
        if (!answered && endpointRefusal(f)) throw new HttpError(501, `${inst.name}: ${notRelayed('log', f)}`);
        throw new HttpError(409, f);
      }
      answered = true;
      if (r.msg.payload.kind === 'reply') stream?.send('subscribed', { instance: inst.name, name: nameToString(sub) });
      if (!visible(r.msg)) return undefined;
      const j = logJson(r.msg);
      return j === undefined ? undefined : { item: j };
    });
    if (!stream) sendJson(res, 200, { instance: inst.name, events });
  }

  // -------------------------------------------------------------- bodies

  /**
   * Fields and image of a create: query string and raw body, or a multipart form with an
   * `image` file. The body is held in an unlinked temporary file (`body`, to be closed), the
   * image a range of it.
   */
  private async createInput(req: http.IncomingMessage, q: URLSearchParams): Promise<{ fields: Fields; body: HeldBody; image: Held }> {
    const type = req.headers['content-type'] ?? 'application/octet-stream';
    const body = await bodyToFile(req, this.o.maxUploadBytes, 'the image');
    try {
      if (/^multipart\/form-data/i.test(type)) {
        const form = await parseHeldMultipart(body, type, limits.webMaxJsonBytes);
        const fields: Fields = new Map(fieldsOfQuery(q));
        for (const [k, v] of form.fields) fields.set(k, [...(fields.get(k) ?? []), ...v]);
        const file = form.files.get('image');
        if (file === undefined || file.size === 0) throw badField('image', 'no image file in the form (a file field named "image")');
        return { fields, body, image: file };
      }
      if (body.size === 0) throw badField('image', 'empty body: send the image as the body, or as the file "image" of a multipart form');
      return { fields: fieldsOfQuery(q), body, image: body };
    } catch (e) {
      await body.close();
      throw e;
    }
  }

  private async fieldsOfBody(req: http.IncomingMessage, q: URLSearchParams): Promise<Fields> {
    const type = req.headers['content-type'] ?? '';
    if (/^application\/json/i.test(type)) return fieldsOfJson(await readJson(req));
    if (/^application\/x-www-form-urlencoded/i.test(type)) {
      const body = await readBody(req, limits.webMaxJsonBytes, 'the form');
      return fieldsOfQuery(new URLSearchParams(body.toString('utf8')));
    }
    const body = await readBody(req, limits.webMaxJsonBytes, 'the body');
    if (body.length > 0) throw new HttpError(415, `expected application/json or a form, got ${JSON.stringify(type)}`, 'Content-Type');
    return fieldsOfQuery(q);
  }

  // -------------------------------------------------------------- routing

  /** Handles /api/v1/...; false if the path is not the API's. */
  async handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<boolean> {
    if (!url.pathname.startsWith('/api/')) return false;
    try {
      await this.route(req, res, url);
    } catch (e) {
      if (e instanceof HttpError) sendError(res, e);
      else {
        this.o.log('error', `${req.method} ${url.pathname}: ${(e as Error).stack ?? String(e)}`);
        sendError(res, new HttpError(500, `internal error: ${(e as Error).message}`));
      }
    }
    return true;
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    let seg: string[];
    try {
      seg = url.pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
    } catch {
      throw new HttpError(400, 'malformed percent-encoding in the URL', 'url');
    }
    if (seg[0] !== 'api' || seg[1] !== 'v1') throw new HttpError(404, `no such endpoint: ${url.pathname} (the API is under /api/v1)`);
    const r = seg.slice(2);
    const q = url.searchParams;
    const is = (m: string, ...pattern: (string | null)[]): boolean =>
      method === m && r.length === pattern.length && pattern.every((p, i) => p === null || p === r[i]);

    // token from user name and password: the one call without credentials
    if (is('POST', 'tokens') && req.headers.authorization === undefined && this.o.sessionAuth?.(req, true) === undefined) {
      const j = await readJson(req);
      const u = await this.login(req, j.user, j.password);
      const label = typeof j.label === 'string' ? j.label.slice(0, 100) : 'api';
      const t = this.o.store.addToken(u.name, label);
      if (!t.ok) throw new HttpError(409, t.error);
      this.say(req, u.name, `created token ${t.value.id} (${label})`);
      sendJson(res, 201, { token: t.value.token, id: t.value.id, user: u.name, path: u.path });
      return;
    }

    let a = this.authenticate(req, method !== 'GET' && method !== 'HEAD');
    const admin = (): void => {
      if (!a.user.admin) throw new HttpError(403, `${a.user.name} is not an administrator`);
    };

    if (is('GET', 'whoami')) return sendJson(res, 200, { user: a.user.name, path: a.user.path, ...(a.user.paths === undefined ? {} : { paths: a.user.paths }), admin: a.user.admin });
    if (is('GET', 'tokens')) return sendJson(res, 200, this.o.store.tokensOf(a.user.name).map(({ id, label, created }) => ({ id, label, created })));
    if (is('POST', 'tokens')) {
      const j = await readJson(req);
      const label = typeof j.label === 'string' ? j.label.slice(0, 100) : 'api';
      const t = this.o.store.addToken(a.user.name, label);
      if (!t.ok) throw new HttpError(409, t.error);
      this.say(req, a.user.name, `created token ${t.value.id} (${label})`);
      return sendJson(res, 201, { token: t.value.token, id: t.value.id, user: a.user.name, path: a.user.path });
    }
    if (is('DELETE', 'tokens', null)) {
      const t = this.o.store.removeToken(a.user.name, r[1]);
      if (!t.ok) throw new HttpError(404, t.error, 'id');
      this.say(req, a.user.name, `revoked token ${r[1]}`);
      return sendJson(res, 200, { revoked: r[1] });
    }
    if (is('GET', 'users')) {
      admin();
      return sendJson(res, 200, this.o.store.users.map((u) => ({ name: u.name, path: u.path, paths: u.paths ?? {}, admin: u.admin, created: u.created })));
    }
    if (is('POST', 'users')) {
      admin();
      const j = await readJson(req);
      const name = checkUserName(j.name);
      if (!name.ok) throw badField('name', name.error);
      const path = checkUserPath(j.path);
      if (!path.ok) throw badField('path', path.error);
      if (j.admin !== undefined && typeof j.admin !== 'boolean') throw badField('admin', 'expected true or false');
      const paths = j.paths === undefined ? undefined : checkInstancePaths(j.paths);
      if (paths !== undefined && !paths.ok) throw badField('paths', paths.error);
      const generated = j.password === undefined ? randomSecret(15) : undefined;
      const pw = checkPassword(j.password ?? generated);
      if (!pw.ok) throw badField('password', pw.error);
      const u = await this.o.store.addUser(name.value, path.value.join(':'), j.admin === true, pw.value);
      if (!u.ok) throw new HttpError(409, u.error, 'name');
      if (paths !== undefined) this.o.store.updateUser(name.value, { paths: paths.value });
      this.say(req, a.user.name, `created user ${name.value} at ${showPath(path.value)}${describePaths(paths?.value)}${j.admin === true ? ' (administrator)' : ''}`);
      return sendJson(res, 201, { name: u.value.name, path: u.value.path, paths: u.value.paths ?? {}, admin: u.value.admin, ...(generated === undefined ? {} : { password: generated }) });
    }
    if (is('PUT', 'users', null)) {
      admin();
      const j = await readJson(req);
      for (const k of Object.keys(j)) if (!['path', 'paths', 'admin'].includes(k)) throw badField(k, 'unknown field (expected path, paths, admin)');
      const path = j.path === undefined ? undefined : checkUserPath(j.path);
      if (path !== undefined && !path.ok) throw badField('path', path.error);
      const paths = j.paths === undefined ? undefined : checkInstancePaths(j.paths);
      if (paths !== undefined && !paths.ok) throw badField('paths', paths.error);
      if (j.admin !== undefined && typeof j.admin !== 'boolean') throw badField('admin', 'expected true or false');
      if (r[1] === a.user.name && j.admin === false) throw new HttpError(409, 'an administrator cannot remove its own administrator right', 'admin');
      const u = this.o.store.updateUser(r[1], { path: path?.value.join(':'), paths: paths?.value, admin: j.admin as boolean | undefined });
      if (!u.ok) throw new HttpError(404, u.error, 'name');
      this.say(req, a.user.name, `changed user ${r[1]}: at ${showPath(pathOf(u.value))}${describePaths(u.value.paths)}${u.value.admin ? ' (administrator)' : ''}`);
      return sendJson(res, 200, { name: u.value.name, path: u.value.path, paths: u.value.paths ?? {}, admin: u.value.admin });
    }
    if (is('DELETE', 'users', null)) {
      admin();
      if (r[1] === a.user.name) throw new HttpError(409, 'an administrator cannot delete itself', 'name');
      const d = this.o.store.removeUser(r[1]);
      if (!d.ok) throw new HttpError(404, d.error, 'name');
      this.say(req, a.user.name, `deleted user ${r[1]}`);
      return sendJson(res, 200, { deleted: r[1] });
    }
    if (is('PUT', 'users', null, 'password')) {
      const own = r[1] === a.user.name;
      if (!own) admin();
      const j = await readJson(req);
      // one's own: the current password too (a stolen session or token is not enough)
      if (own) await this.checkCurrent(req, a.user, j.current);
      // an administrator resetting another's without a password: a generated one, shown once
      const generated = !own && j.password === undefined ? randomSecret(15) : undefined;
      const pw = checkPassword(j.password ?? generated);
      if (!pw.ok) throw badField('password', pw.error);
      const s = await this.o.store.setPassword(r[1], pw.value);
      if (!s.ok) throw new HttpError(404, s.error, 'name');
      this.say(req, a.user.name, own ? 'changed its own password' : `reset the password of ${r[1]}`);
      return sendJson(res, 200, { user: r[1], ...(generated === undefined ? {} : { password: generated }) });
    }
    if (is('GET', 'instances')) {
      // probed all at once: a host that is down costs its connect timeout, not the others'
      const status = q.get('status') !== null;
      return sendJson(res, 200, await Promise.all(this.visible(a).map((i) => this.instanceEntry(req, a, i, status))));
    }
    // one instance's entry of the list above (the same fields), so a page asks each on its own
    if (is('GET', 'instances', null)) return sendJson(res, 200, await this.instanceEntry(req, a, this.instance(a, r[1]), q.get('status') !== null));
    if (is('POST', 'instances')) {
      admin();
      if (this.o.registry === undefined) throw new HttpError(501, 'remote instances are not enabled');
      const j = await readJson(req);
      const str = (k: string): string => {
        if (typeof j[k] !== 'string' || j[k] === '') throw badField(k, 'expected a non-empty string');
        return j[k] as string;
      };
      const name = str('name');
      if (!INSTANCE_NAME_RE.test(name)) throw badField('name', 'expected a-z 0-9 . _ - (up to 63, starting with a letter or digit)');
      const dest = parseDestination(str('destination'));
      if (!dest.ok) throw badField('destination', dest.error);
      const path = checkUserPath(j.path ?? '');
      if (!path.ok) throw badField('path', path.error);
      const c = { name, host: dest.value.host, port: dest.value.port, ca: str('ca'), caKey: str('caKey'), serverCa: str('serverCa'), path: path.value.join(':') };
      const added = await this.o.registry.add(c);
      if (!added.ok) throw new HttpError(409, added.error);
      this.say(req, a.user.name, `added remote instance ${name} at ${added.value.where}`);
      // the connection test: a listing there, as the administrator
      let test: Record<string, unknown>;
      try {
        test = { up: true, unikernels: (await this.unikernels(req, on(a, added.value), added.value)).length };
      } catch (e) {
        const he = e instanceof HttpError ? e : new HttpError(500, String(e));
        test = { up: he.status !== 502, error: he.message };
      }
      return sendJson(res, 201, { name, kind: 'remote', where: added.value.where, test });
    }
    if (is('DELETE', 'instances', null)) {
      admin();
      if (this.o.registry === undefined) throw new HttpError(501, 'remote instances are not enabled');
      const gone = this.o.registry.remove(r[1]);
      if (!gone.ok) throw new HttpError(404, gone.error, 'name');
      this.say(req, a.user.name, `removed remote instance ${r[1]}`);
      return sendJson(res, 200, { removed: r[1] });
    }

    if (r[0] !== 'instances' || r.length < 3) throw new HttpError(404, `no such endpoint: ${method} ${url.pathname}`);
    const inst = this.instance(a, r[1]);
    // from here on the user's path is the one on this instance
    a = on(a, inst);
    const rest = r.slice(2);
    const at = (m: string, ...pattern: (string | null)[]): boolean =>
      method === m && rest.length === pattern.length && pattern.every((p, i) => p === null || p === rest[i]);

    if (at('GET', 'unikernels')) return sendJson(res, 200, await this.unikernels(req, a, inst));
    if (at('GET', 'unikernels', null)) {
      const n = this.target(a, rest[1]);
      const list = await this.unikernels(req, a, inst, n);
      if (list.length === 0) throw new HttpError(404, `no unikernel ${nameToString(n)} on ${inst.name}`, 'name');
      return sendJson(res, 200, list[0]);
    }
    if (at('POST', 'unikernels', null)) {
      const n = this.target(a, rest[1]);
      const { fields, body, image } = await this.createInput(req, q);
      try {
        const opts = optsOf(fields, CREATE_FIELDS);
        // to a local vmmd the image is copied from the file into the command's frame; a
        // remote create carries it in its certificate, and compression needs it whole
        const level = opts['compression-level'];
        const streamed = inst.openRaw !== undefined && !(typeof level === 'number' && level > 0);
        const img = streamed ? await sparseImage(image) : new Uint8Array(await readHeld(image));
        const cmds = build('create', [nameToString(n), 'image'], opts, 'image', img);
        let cmd = cmds[0];
        let held: HeldImage | undefined;
        if (streamed && cmd.kind === 'unikernel' && (cmd.value.kind === 'create' || cmd.value.kind === 'force_create')) {
          held = { mark: imageMark(), image };
          cmd = { kind: 'unikernel', value: { kind: cmd.value.kind, value: { ...cmd.value.value, image: held.mark } } };
        }
        const ws = await this.run(req, a, inst, n, cmd, opts.force === true ? 'force-create' : 'create', undefined, held);
        return sendJson(res, 201, { name: nameToString(n), instance: inst.name, result: this.replyText(ws) });
      } finally {
        await body.close();
      }
    }
    if (at('DELETE', 'unikernels', null)) {
      const n = this.target(a, rest[1]);
      const ws = await this.run(req, a, inst, n, { kind: 'unikernel', value: { kind: 'destroy', value: null } }, 'destroy');
      return sendJson(res, 200, { name: nameToString(n), instance: inst.name, result: this.replyText(ws) });
    }
    if (at('POST', 'unikernels', null, 'restart')) {
      const n = this.target(a, rest[1]);
      const fields = await this.fieldsOfBody(req, q);
      const cmds = build('restart', [nameToString(n)], optsOf(fields, RESTART_FIELDS), 'replace-arguments');
      const ws = await this.run(req, a, inst, n, cmds[0], 'restart');
      return sendJson(res, 200, { name: nameToString(n), instance: inst.name, result: this.replyText(ws) });
    }
    if (at('GET', 'unikernels', null, 'image')) {
      const n = this.target(a, rest[1]);
      const ws = await this.run(req, a, inst, n, { kind: 'unikernel', value: { kind: 'get', value: 0 } }, 'get image');
      const p = ws[0].payload;
      if (p.kind !== 'reply' || p.value.kind !== 'unikernel_image') throw new HttpError(502, `${inst.name}: unexpected answer to get`);
      let img: Uint8Array = p.value.value.image;
      if (p.value.value.compressed) img = new Uint8Array(zlib.inflateSync(img));
      res.writeHead(200, {
        'content-type': 'application/octet-stream', 'content-length': img.length,
        'content-disposition': `attachment; filename="${nameToString(n).replace(/:/g, '_')}.img"`,
      });
      res.end(img);
      return;
    }
    if (at('GET', 'unikernels', null, 'console')) return this.console(req, res, a, inst, this.target(a, rest[1]), q, false);
    if (at('GET', 'unikernels', null, 'console', 'events')) return this.console(req, res, a, inst, this.target(a, rest[1]), q, true);
    if (at('GET', 'unikernels', null, 'stats', 'events')) return this.stats(req, res, a, inst, this.target(a, rest[1]));
    if (at('GET', 'log')) return this.eventLog(req, res, a, inst, q, false);
    if (at('GET', 'log', 'events')) return this.eventLog(req, res, a, inst, q, true);
    if (at('GET', 'policies')) return sendJson(res, 200, await this.policies(req, a, inst));
    if (at('PUT', 'policies', null) || at('DELETE', 'policies', null)) {
      const p = checkUserPath(rest[1]);
      if (!p.ok || p.value.length === 0) throw badField('path', p.ok ? 'the root policy cannot be set here' : p.error);
      if (!pathStrictlyBelow(p.value, a.path)) throw new HttpError(403, `${a.user.name} may set policies only for paths below ${showPath(a.path)}; ${showPath(p.value)} is not`, 'path');
      if (method === 'DELETE') {
        const ws = await this.run(req, a, inst, { path: p.value }, { kind: 'policy', value: { kind: 'remove', value: null } }, 'remove policy');
        return sendJson(res, 200, { path: p.value.join(':'), instance: inst.name, result: this.replyText(ws) });
      }
      const fields = await this.fieldsOfBody(req, q);
      const u = fields.get('unikernels');
      if (u === undefined) throw badField('unikernels', 'missing: how many unikernels the path may run');
      const opts = optsOf(fields, POLICY_FIELDS, ['unikernels']);
      const cmds = build('add-policy', [p.value.join(':'), String(intValue('unikernels', u[0]))], opts, 'unikernels');
      const ws = await this.run(req, a, inst, { path: p.value }, cmds[0], 'add policy');
      return sendJson(res, 200, { path: p.value.join(':'), instance: inst.name, result: this.replyText(ws) });
    }
    if (at('GET', 'blocks')) return sendJson(res, 200, await this.blocks(req, a, inst));
    if (at('POST', 'blocks', null)) {
      const n = this.target(a, rest[1]);
      const type = req.headers['content-type'] ?? '';
      const hasData = /^application\/octet-stream/i.test(type);
      const fields = hasData ? fieldsOfQuery(q) : await this.fieldsOfBody(req, q);
      const size = fields.get('size');
      if (size === undefined || size.length !== 1) throw badField('size', 'missing: the size in MB');
      for (const k of fields.keys()) if (k !== 'size') throw badField(k, 'unknown field (expected size)');
      const mb = intValue('size', size[0]);
      if (mb <= 0) throw badField('size', `expected a positive number of MB, got ${mb}`);
      const data = hasData ? await bodyToFile(req, this.o.maxUploadBytes, 'the block data') : undefined;
      try {
        const cmds = build('create-block', [nameToString(n), String(mb)], {}, 'size');
        const ws = await this.run(req, a, inst, n, cmds[0], `create block (${mb} MB)`);
        if (data !== undefined && data.size > 0) {
          await this.run(req, a, inst, n, { kind: 'block', value: { kind: 'set', value: false } }, `set block data (${data.size} bytes)`, data);
        }
        return sendJson(res, 201, { name: nameToString(n), instance: inst.name, result: this.replyText(ws) });
      } finally {
        await data?.close();
      }
    }
    if (at('PUT', 'blocks', null, 'data')) {
      const n = this.target(a, rest[1]);
      const data = await bodyToFile(req, this.o.maxUploadBytes, 'the block data');
      try {
        const ws = await this.run(req, a, inst, n, { kind: 'block', value: { kind: 'set', value: false } }, `set block data (${data.size} bytes)`, data);
        return sendJson(res, 200, { name: nameToString(n), instance: inst.name, result: this.replyText(ws) });
      } finally {
        await data.close();
      }
    }
    if (at('GET', 'blocks', null, 'data')) {
      const n = this.target(a, rest[1]);
      const ws = await this.run(req, a, inst, n, { kind: 'block', value: { kind: 'dump', value: 0 } }, 'dump block');
      let compressed = false;
      const chunks: Uint8Array[] = [];
      for (const w of ws) {
        const p = w.payload;
        if (p.kind === 'reply' && p.value.kind === 'block_device_image') compressed = p.value.value;
        if (p.kind === 'data' && p.value.kind === 'block' && p.value.value.kind === 'chunk') chunks.push(p.value.value.value);
      }
      let data = Buffer.concat(chunks);
      if (compressed) data = zlib.inflateSync(data);
      res.writeHead(200, {
        'content-type': 'application/octet-stream', 'content-length': data.length,
        'content-disposition': `attachment; filename="${nameToString(n).replace(/:/g, '_')}.img"`,
      });
      res.end(data);
      return;
    }
    if (at('DELETE', 'blocks', null)) {
      const n = this.target(a, rest[1]);
      const ws = await this.run(req, a, inst, n, { kind: 'block', value: { kind: 'remove', value: null } }, 'destroy block');
      return sendJson(res, 200, { name: nameToString(n), instance: inst.name, result: this.replyText(ws) });
    }
    throw new HttpError(404, `no such endpoint: ${method} ${url.pathname}`);
  }
}

export function pathOf(u: User, instance?: string): Path {
  const p = checkUserPath((instance === undefined ? undefined : u.paths?.[instance]) ?? u.path);
  return p.ok ? p.value : (root.path as Path);
}

/** The credentials with the user's path on `inst` (its own path there, or the default). */
export const on = (a: Auth, inst: Instance): Auth => ({ ...a, path: pathOf(a.user, inst.name) });

const describePaths = (paths: Record<string, string> | undefined): string =>
  paths === undefined || Object.keys(paths).length === 0 ? '' : ` (${Object.entries(paths).map(([i, p]) => `${p === '' ? 'the root' : p} on ${i}`).join(', ')})`;
