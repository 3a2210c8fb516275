/**
 * Confinement of the status and event log leaves (WIRE.md §8.3, CERTS.md §3.3): a tenant
 * holding the CA of `team:` makes whatever leaf it likes below it and tries to read
 * beyond `team:` through the real stack (vmmd with the fake tender, vmmd_log, vmmd_tls on
 * loopback, a raw TLS client).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { type RunDir, type VmmdProcess, config, create, destroy, makeRunDir, request, startVmmd, until } from './helpers/vmmd.js';
import { type Identity, cmd, issue, policy, serverPki, writeClient } from './helpers/pki.js';
import { type LeafCommand, encodeLeafExtension } from '../src/core/wire/leaf.js';
import { decodeCertExtension, decodeWire } from '../src/core/wire/wire.js';
import { decodeStatusWire } from '../src/core/wire/status.js';
import { type LogEvent, type LogWire, decodeLogWire, encodeLogWire, logEventName } from '../src/core/wire/log.js';
import * as x509 from '@peculiar/x509';
import { LogSender } from '../src/log/client.js';
import { type Name, nameIsWithin, nameToString, parseName } from '../src/core/name.js';
import { limits } from '../src/core/limits.js';
import { readFrames } from '../src/core/frame.js';
import { ALBATROSS_OID } from '../src/core/wire/wire.js';

const CLI = path.join(__dirname, '..', 'src', 'cli');
let d: RunDir;
let vmmd: VmmdProcess;
const procs: ChildProcess[] = [];
let port = 0;
let logErr = '';
let pkiDir = '';
let caFile = '';
let root: Identity;
let team: Identity;
let sub: Identity;
let sender: LogSender;

const name = (s: string): Name => {
  const r = parseName(s);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

const freePort = (): Promise<number> => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as net.AddressInfo).port;
    s.close(() => resolve(p));
  });
});

const status: LeafCommand = { kind: 'status', value: { kind: 'status', value: null } };
const logCount = (n: number): LeafCommand => ({ kind: 'log', value: { kind: 'subscribe', value: { kind: 'count', value: n } } });
const logSince = (t: number): LeafCommand => ({ kind: 'log', value: { kind: 'subscribe', value: { kind: 'since', value: t } } });

/** Unikernels made directly at vmmd: beside team (never visible to it) and inside it. */
const BESIDE = [':team', 'teamx:web', 'other:web', ':x'];
const INSIDE = ['team:web', 'team:sub:deep'];

let leafNo = 0;
/** A leaf below `chain[0]` (the issuer), written to files; returns the paths. */
async function leaf(chain: Identity[], cn: string | null | undefined, o: { command?: LeafCommand; extValue?: Uint8Array; extra?: x509.Extension[] } = {}): Promise<{ cert: string; key: string }> {
  const ext = o.extValue ?? (o.command !== undefined ? encodeLeafExtension(o.command) : undefined);
  const l = await issue(chain[0], { cn, ...(ext !== undefined ? { extValue: ext } : {}), ...(o.extra !== undefined ? { extraExtensions: o.extra } : {}) });
  return writeClient(pkiDir, `leaf${leafNo++}`, [l, ...chain.filter((c) => c !== root)]);
}

interface Conn {
  socket: tls.TLSSocket;
  bodies: Uint8Array[];
  closed: Promise<void>;
  /** Waits until `f` holds for the bodies received (or the connection closed). */
  until(f: (b: Uint8Array[]) => boolean): Promise<void>;
}

/** A raw TLS client with a chain; collects frame bodies (status and log messages are not Wire). */
function connect(client: { cert: string; key: string }, o: { paused?: boolean } = {}): Conn {
  const bodies: Uint8Array[] = [];
  let buf = new Uint8Array(0);
  const waiters: Array<() => void> = [];
  const socket = tls.connect({
    host: '127.0.0.1', port, cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key), ca: fs.readFileSync(caFile),
    checkServerIdentity: () => undefined,
  });
  let isClosed = false;
  const closed = new Promise<void>((resolve) => socket.on('close', () => { isClosed = true; resolve(); for (const w of waiters.splice(0)) w(); }));
  socket.on('error', () => undefined);
  if (o.paused !== true) {
    socket.on('data', (chunk: Buffer) => {
      const all = new Uint8Array(buf.length + chunk.length);
      all.set(buf);
      all.set(chunk, buf.length);
      const { frames } = readFrames(all);
      let used = 0;
      for (const f of frames) {
        used += 4 + f.length;
        bodies.push(f);
      }
      buf = all.slice(used);
      for (const w of waiters.splice(0)) w();
    });
  }
  const untilF = async (f: (b: Uint8Array[]) => boolean): Promise<void> => {
    const t0 = Date.now();
    while (!f(bodies) && !isClosed) {
      if (Date.now() - t0 > 20_000) throw new Error(`nothing expected within 20 s (${bodies.length} messages)`);
      await new Promise<void>((resolve) => { waiters.push(resolve); setTimeout(resolve, 500); });
    }
  };
  return { socket, bodies, closed, until: untilF };
}

/** The failure text of a refused connection (a Wire failure), if the first message is one. */
function failureOf(bodies: Uint8Array[]): string | undefined {
  if (bodies.length === 0) return undefined;
  const w = decodeWire(bodies[0]);
  if (w.ok && w.value.payload.kind === 'failure') return w.value.payload.value;
  const s = decodeStatusWire(bodies[0]);
  if (s.ok && s.value.payload.kind === 'failure') return s.value.payload.value;
  const l = decodeLogWire(bodies[0]);
  if (l.ok && l.value.payload.kind === 'failure') return l.value.payload.value;
  return undefined;
}

/** The status reply's names (as text) for a leaf, or the refusal. */
async function statusOf(client: { cert: string; key: string }): Promise<{ names?: string[]; header?: string; failure?: string }> {
  const c = connect(client);
  await c.closed;
  const f = failureOf(c.bodies);
  if (f !== undefined) return { failure: f };
  assert.equal(c.bodies.length, 1, 'one status reply');
  const s = decodeStatusWire(c.bodies[0]);
  assert.ok(s.ok, s.ok ? '' : s.error);
  assert.equal(s.value.payload.kind, 'reply');
  const list = s.value.payload.kind === 'reply' ? s.value.payload.value : [];
  return { names: list.map((u) => nameToString(u.name)), header: nameToString(s.value.header.name) };
}

let marks = 0;
/**
 * A log subscription's messages: its history, then live events until a marker event about
 * `expected` (the name the subscription must have) arrives; the marker shows the name.
 */
async function logOf(client: { cert: string; key: string }, expected: Name | undefined): Promise<{ failure?: string; data: LogWire[]; header?: string }> {
  const c = connect(client);
  await c.until((b) => b.length > 0);
  const f = failureOf(c.bodies);
  if (f !== undefined) {
    await c.closed;
    return { failure: f, data: [] };
  }
  const first = decodeLogWire(c.bodies[0]);
  assert.ok(first.ok && first.value.payload.kind === 'reply', 'reply empty first');
  assert.ok(expected !== undefined, 'the subscription was accepted');
  const port0 = 40000 + (marks++ % 20000);
  const marker: LogEvent = { kind: 'login', value: { name: expected, ip: new Uint8Array([198, 51, 100, 7]), port: port0 } };
  const sent = await sender.send(marker);
  assert.ok(sent.ok);
  const isMarker = (b: Uint8Array): boolean => {
    const w = decodeLogWire(b);
    return w.ok && w.value.payload.kind === 'data' && w.value.payload.value.event.kind === 'login' && w.value.payload.value.event.value.port === port0 &&
      w.value.payload.value.event.value.ip[0] === 198;
  };
  await c.until((b) => b.some(isMarker));
  c.socket.destroy();
  assert.ok(c.bodies.some(isMarker), 'the marker about the subscription name arrived');
  const data = c.bodies.slice(1).map((b) => {
    const w = decodeLogWire(b);
    assert.ok(w.ok, w.ok ? '' : w.error);
    return w.value;
  }).filter((w) => !isMarker(encodeBack(w)));
  return { data, header: nameToString(first.value.header.name) };
}
// the marker check works on octets; re-encode for the filter
const encodeBack = (w: LogWire): Uint8Array => encodeLogWire(w);

/** Events injected into vmmd_log around team: (peer addresses of other tenants, policies and blocks above it). */
const INJECTED: LogEvent[] = [
  { kind: 'login', value: { name: name('other:web'), ip: new Uint8Array([192, 0, 2, 1]), port: 1111 } },
  { kind: 'logout', value: { name: name('other:web'), ip: new Uint8Array([192, 0, 2, 1]), port: 1111 } },
  { kind: 'login', value: { name: name(':team'), ip: new Uint8Array([192, 0, 2, 2]), port: 2222 } },
  { kind: 'login', value: { name: name('teamx:'), ip: new Uint8Array([192, 0, 2, 3]), port: 3333 } },
  { kind: 'login', value: { name: name(':'), ip: new Uint8Array([192, 0, 2, 4]), port: 4444 } },
  { kind: 'action', value: { name: name(':'), action: { kind: 'policy_add', value: null } } },
  { kind: 'action', value: { name: name('teamx:'), action: { kind: 'policy_add', value: null } } },
  { kind: 'action', value: { name: name(':team'), action: { kind: 'block_add', value: 10 } } },
  { kind: 'action', value: { name: name('other:disk'), action: { kind: 'block_add', value: 10 } } },
  { kind: 'action', value: { name: name('teamx:disk'), action: { kind: 'block_remove', value: null } } },
  // inside: seen by team:
  { kind: 'action', value: { name: name('team:'), action: { kind: 'policy_add', value: null } } },
  { kind: 'action', value: { name: name('team:disk'), action: { kind: 'block_add', value: 1 } } },
  { kind: 'login', value: { name: name('team:sub:deep'), ip: new Uint8Array([192, 0, 2, 9]), port: 9999 } },
];

before(async () => {
  d = makeRunDir();
  const lp = spawn(process.execPath, [path.join(CLI, 'vmmd_log.js'), '--tmpdir', d.tmpdir, '--logfile', path.join(d.root, 'albatross.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  lp.stderr?.on('data', (b: Buffer) => { logErr += b.toString(); });
  procs.push(lp);
  await until('log.sock', () => fs.existsSync(path.join(d.tmpdir, 'util', 'log.sock')));
  procs.push(spawn(process.execPath, [path.join(CLI, 'vmmd_console.js'), '--tmpdir', d.tmpdir], { stdio: 'ignore' }));
  await until('console.sock', () => fs.existsSync(path.join(d.tmpdir, 'util', 'console.sock')));
  vmmd = await startVmmd(d);
  const pki = await serverPki(fs.mkdtempSync(path.join(d.root, 'pki-')));
  pkiDir = pki.dir;
  caFile = pki.ca;
  root = pki.root;
  team = await issue(root, { ca: true, cn: 'team', command: cmd.policyAdd(policy({ unikernels: 8n })) });
  sub = await issue(team, { ca: true, cn: 'sub', command: cmd.policyAdd(policy({ unikernels: 4n })) });
  port = await freePort();
  procs.push(spawn(process.execPath, [path.join(CLI, 'vmmd_tls.js'), pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', String(port), '--tmpdir', d.tmpdir, '-q'], { stdio: 'ignore' }));
  await until('vmmd_tls listening', () => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  }));
  const sock = path.join(d.tmpdir, 'util', 'vmmd.sock');
  for (const n of [...BESIDE, ...INSIDE]) {
    const ws = await request(sock, n, create(config(['--sleep'])));
    assert.equal(ws[0].payload.kind, 'reply', n);
  }
  sender = new LogSender(d.tmpdir);
  const r = await sender.sendAll(INJECTED.map((event) => ({ event, timestamp: Date.now() })));
  assert.ok(r.ok);
});

after(async () => {
  sender?.close();
  const sock = path.join(d.tmpdir, 'util', 'vmmd.sock');
  for (const n of [...BESIDE, ...INSIDE]) await request(sock, n, destroy).catch(() => undefined);
  for (const p of procs) p.kill();
  await vmmd?.stop();
  d?.remove();
});

test('status leaves below team: every CN form reads at or below team: only, names relative to the name asked', async () => {
  const chain = [team, root];
  // CN -> the names in the reply (relative to the path asked; a unikernel's own name is absolute, as info)
  const cases: Array<[string | null, string[] | RegExp]> = [
    [null, ['sub:deep', ':web']],
    ['', ['sub:deep', ':web']],
    ['.', ['sub:deep', ':web']],
    [':', ['sub:deep', ':web']],
    ['team', []], // team:team, not :team
    [':team', []],
    ['team:', []], // the path team:team:
    ['..', []],
    ['a:b:c', []],
    ['web', ['team:web']],
    ['WEB', ['team:web']],
    ['sub:', [':deep']],
    [':sub:', [':deep']],
    ['sub', []], // the unikernel team:sub, not the path team:sub:
    ['sub:deep', ['team:sub:deep']],
    ['x'.repeat(63), []],
    ['x'.repeat(64), /invalid/],
    ['tëam', /invalid/],
    ['::', /invalid/],
    ['a::b', /invalid/],
    ['web\n', /invalid/],
    ['other:web', []], // team:other:web
  ];
  for (const [cn, want] of cases) {
    const r = await statusOf(await leaf(chain, cn, { command: status }));
    const what = `CN ${JSON.stringify(cn)}: ${JSON.stringify(r)}`;
    if (want instanceof RegExp) {
      assert.match(r.failure ?? '', want, what);
      continue;
    }
    assert.equal(r.failure, undefined, what);
    assert.deepEqual(r.names, want, what);
    for (const n of BESIDE) assert.ok(!(r.names ?? []).includes(n), what);
  }
});

test('status leaves: depth 3 (team:sub:) sees only team:sub:; depth 1 (signed by the server CA) is the operator and sees everything', async () => {
  let r = await statusOf(await leaf([sub, team, root], null, { command: status }));
  assert.deepEqual(r.names, [':deep']);
  assert.equal(r.header, 'team:sub:');
  r = await statusOf(await leaf([sub, team, root], 'web', { command: status }));
  assert.deepEqual(r.names, []);
  // an intermediate without an Albatross extension adds nothing to the path
  const plain = await issue(team, { ca: true, cn: 'plain' });
  r = await statusOf(await leaf([plain, team, root], null, { command: status }));
  assert.deepEqual(r.names, ['sub:deep', ':web']);
  // the root's rights: every unikernel of the host, names relative to the root
  r = await statusOf(await leaf([root], null, { command: status }));
  assert.deepEqual(r.names, [':team', ':x', 'other:web', 'team:sub:deep', 'team:web', 'teamx:web']);
  r = await statusOf(await leaf([root], 'team', { command: status }));
  assert.deepEqual(r.names, [':team'], 'the root-level unikernel :team, not the path team:');
  r = await statusOf(await leaf([root], 'team:', { command: status }));
  assert.deepEqual(r.names, ['sub:deep', ':web']);
});

test('status and log in an intermediate, two Albatross extensions, no extension: refused before any daemon is asked', async () => {
  // an intermediate that carries a status query or a log subscription instead of a policy
  for (const c of [status, logCount(-1)]) {
    const mid = await issue(team, { ca: true, cn: 'mid', extValue: encodeLeafExtension(c) });
    const r = await statusOf(await leaf([mid, team, root], null, { command: status }));
    assert.match(r.failure ?? '', new RegExp(`^refused: unexpected wire ${c.kind === 'status' ? 'status' : 'log subscribe'}$`), JSON.stringify(r));
  }
  // a leaf with two Albatross extensions (a status and a log, or log and status)
  const ext = (c: LeafCommand): x509.Extension => new x509.Extension(ALBATROSS_OID, false, encodeLeafExtension(c));
  let r = await statusOf(await leaf([team, root], null, { command: status, extra: [ext(logCount(-1))] }));
  assert.match(r.failure ?? '', /extension 1\.3\.6\.1\.4\.1\.49836\.42 \(albatross\) appears 2 times/);
  r = await statusOf(await leaf([team, root], null, { command: logCount(-1), extra: [ext(status)] }));
  assert.match(r.failure ?? '', /appears 2 times/);
  // upstream's grammar refuses both: an upstream endpoint never reads them as another command
  assert.match((decodeCertExtension(encodeLeafExtension(status)) as { error: string }).error, /16/);
  assert.match((decodeCertExtension(encodeLeafExtension(logCount(5))) as { error: string }).error, /17/);
});

/** Every data entry's event name (or `-` for none), as text. */
const namesOf = (data: LogWire[]): string[] => data.map((w) => {
  if (w.payload.kind !== 'data') return `(${w.payload.kind})`;
  const n = logEventName(w.payload.value.event);
  return n === undefined ? '-' : nameToString(n);
});

test('log leaves below team: every CN form sees events of names within its name only (no :team, teamx:, other:, root, startup)', async () => {
  const chain = [team, root];
  const cases: Array<[string | null, string | RegExp]> = [
    [null, 'team:'], ['', 'team:'], ['.', 'team:'], [':', 'team:'],
    ['team', 'team:team'], [':team', 'team:team'], ['web', 'team:web'], ['sub:', 'team:sub:'], ['sub:deep', 'team:sub:deep'],
    ['..', 'team:..'], ['a:b:c', 'team:a:b:c'], ['x'.repeat(64), /invalid/], ['tëam', /invalid/],
  ];
  for (const [cn, want] of cases) {
    const r = await logOf(await leaf(chain, cn, { command: logCount(-1) }), typeof want === 'string' ? name(want) : undefined);
    const what = `CN ${JSON.stringify(cn)}: ${JSON.stringify(r.failure ?? namesOf(r.data))}`;
    if (want instanceof RegExp) {
      assert.match(r.failure ?? '', want, what);
      continue;
    }
    assert.equal(r.header, want, what);
    const sub = name(want);
    const names = namesOf(r.data);
    for (const n of names) {
      assert.notEqual(n, '-', `an event about no name: ${what}`);
      const ev = name(n);
      // within the subscription's path, or (a name with a label) that name and below its key
      const inside = sub.label === undefined ? nameIsWithin(ev, sub.path) : nameIsWithin(ev, [...sub.path, sub.label]) || n === want;
      assert.ok(inside, `${n} for ${want}: ${what}`);
      assert.ok(nameIsWithin(ev, ['team']), `${n} is outside team: ${what}`);
    }
    if (want === 'team:') {
      for (const n of ['team:', 'team:disk', 'team:sub:deep', 'team:web']) assert.ok(names.includes(n), `${n} missing: ${what}`);
    }
  }
});

test('log leaves: depth 3 sees team:sub: only; the operator (depth 1) sees the root events, startup and other tenants', async () => {
  let r = await logOf(await leaf([sub, team, root], null, { command: logCount(-1) }), name('team:sub:'));
  assert.ok(namesOf(r.data).length > 0);
  for (const n of namesOf(r.data)) assert.ok(nameIsWithin(name(n), ['team', 'sub']), n);
  r = await logOf(await leaf([root], null, { command: logCount(-1) }), name(':'));
  const names = namesOf(r.data);
  for (const n of ['-', ':', ':team', 'other:web', 'teamx:', 'team:']) assert.ok(names.includes(n), `${n} in ${names.join(' ')}`);
  // the root-level :team label: itself and below its key (as upstream), never teamx:
  r = await logOf(await leaf([root], 'team', { command: logCount(-1) }), name(':team'));
  for (const n of namesOf(r.data)) assert.ok(n === ':team' || n.startsWith('team:'), n);
});

test('log since: count 0, negative, huge, out of range; times far in the past and future', async () => {
  const chain = [team, root];
  const count = async (c: LeafCommand): Promise<number> => namesOf((await logOf(await leaf(chain, null, { command: c }), name('team:'))).data).length;
  const all = await count(logCount(-1));
  assert.ok(all >= 4);
  // count 0: no history (its own login may come live)
  assert.ok(await count(logCount(0)) <= 1);
  assert.ok(await count(logCount(Number.MAX_SAFE_INTEGER)) >= all);
  assert.ok(await count(logCount(-Number.MAX_SAFE_INTEGER)) >= all);
  assert.ok(await count(logSince(Date.UTC(9999, 11, 31))) <= 1);
  assert.ok(await count(logSince(Date.UTC(1, 0, 1))) >= all);
  // an INTEGER beyond what a count may be (2^70): the extension does not decode
  const huge = Uint8Array.from([0x30, 0x14, 0x02, 0x01, 0x05, 0xb1, 0x0f, 0xa0, 0x0d, 0xa1, 0x0b, 0x02, 0x09, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
  const r = await logOf(await leaf(chain, null, { extValue: huge }), undefined).catch((e: Error) => ({ failure: e.message, data: [] }));
  assert.match(r.failure ?? '', /^refused: /, JSON.stringify(r.failure));
});

test('a log subscriber that never reads: vmmd_tls stops reading log.sock and vmmd_log drops it beyond limits.subscriberBufferBytes', async () => {
  const c = connect(await leaf([team, root], 'flood', { command: logCount(0) }), { paused: true });
  c.socket.pause();
  await new Promise<void>((resolve) => c.socket.once('secureConnect', () => resolve()));
  // wait until vmmd_log has the subscriber: its login event is about team:flood and sent at once
  // 64 KiB events about team:flood until vmmd_log gives up on the subscriber
  const arg = 'a'.repeat(64 * 1024);
  const big: LogEvent = { kind: 'action', value: { name: name('team:flood'), action: { kind: 'exec', value: { pid: 1, argv: [arg], taps: [] } } } };
  let sent = 0;
  while (!logErr.includes('dropping a subscriber of team:flood')) {
    assert.ok(sent < 4096, `no drop after ${sent} events of 64 KiB (${logErr})`);
    const r = await sender.sendAll(Array.from({ length: 16 }, () => ({ event: big, timestamp: Date.now() })));
    assert.ok(r.ok);
    sent += 16;
  }
  assert.match(logErr, new RegExp(`dropping a subscriber of team:flood: more than ${limits.subscriberBufferBytes} bytes unread`));
  c.socket.destroy();
  await c.closed;
});
