/**
 * End to end under the real openbsd-inetd: inetd spawns vmmd_tls_inetd per TCP
 * connection (and the local handler per Unix connection), against the real vmmd and
 * vmmd_console with the fake tender. A remote create, a console stream, an info read
 * with `openssl s_client`, and the local handler confined to a path. Skipped when
 * /usr/sbin/inetd is missing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { nameToString } from '../src/core/name.js';
import { readFrames } from '../src/core/frame.js';
import { type Wire, decodeWire, command } from '../src/core/wire/wire.js';
import { connectUnix } from '../src/transport/conn.js';
import { subscribeLog } from '../src/log/client.js';
import { type Identity, type PkiFiles, cmd, issue, policy, serverPki, writeClient } from './helpers/pki.js';
import { handlerBundle, readLog, root as checkout, tlsRequest } from './helpers/tls-peer.js';
import { type RunDir, type VmmdProcess, binary, config, create, destroy, makeRunDir, nm, readAll, startVmmd, until } from './helpers/vmmd.js';

const INETD = '/usr/sbin/inetd';
const skip = !existsSync(INETD) ? 'openbsd-inetd is not installed' : !existsSync(handlerBundle) ? 'not built' : false;

let d: RunDir;
let pki: PkiFiles;
let inetd: ChildProcess | undefined;
let consoleD: ChildProcess | undefined;
let logD: ChildProcess | undefined;
let vmmd: VmmdProcess | undefined;
let port = 0;
let logfile: string;
let localSock: string;
let org: Identity;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function waitFor(what: string, f: () => Promise<boolean> | boolean): Promise<void> {
  const end = Date.now() + 15_000;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const canConnect = (opts: net.NetConnectOpts): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(opts);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });

const launcher = join(checkout, 'bin', 'vmmd_tls_inetd');

before(async () => {
  if (skip) return;
  d = makeRunDir();
  pki = await serverPki(d.root);
  logfile = join(d.root, 'handler.log');
  consoleD = spawn(process.execPath, [binary('vmmd_console'), '--tmpdir', d.tmpdir], { stdio: 'ignore' });
  await waitFor('console.sock', () => canConnect({ path: join(d.tmpdir, 'util', 'console.sock') }));
  logD = spawn(process.execPath, [binary('vmmd_log'), '--tmpdir', d.tmpdir, '--logfile', join(d.root, 'events')], { stdio: 'ignore' });
  await waitFor('log.sock', () => canConnect({ path: join(d.tmpdir, 'util', 'log.sock') }));
  vmmd = await startVmmd(d);
  port = await freePort();
  localSock = join(d.tmpdir, 'util', 'local.sock');
  const conf = join(d.root, 'inetd.conf');
  const common = `--logfile ${logfile} --tmpdir ${d.tmpdir}`;
  writeFileSync(conf, [
    // the TLS line runs the launcher as inetd.conf.example does (shebang, code cache)
    `127.0.0.1:${port} stream tcp nowait.1000 root ${launcher} vmmd_tls_inetd ${pki.ca} ${pki.cert} ${pki.key} ${common}`,
    `${localSock} stream unix nowait root ${process.execPath} node ${handlerBundle} --local --path org ${common}`,
    '',
  ].join('\n'));
  inetd = spawn(INETD, ['-d', conf], { stdio: 'ignore' });
  await waitFor('inetd', () => canConnect({ port, host: '127.0.0.1' }));
  org = await issue(pki.root, { cn: 'org', ca: true, command: cmd.policyAdd(policy({ unikernels: 2n, memory: 256, cpuids: [0] })) });
});

after(async () => {
  if (skip) return;
  inetd?.kill('SIGTERM');
  await vmmd?.stop();
  consoleD?.kill('SIGTERM');
  logD?.kill('SIGTERM');
  if (logD && logD.exitCode === null) await new Promise((r) => logD?.once('exit', r));
  if (inetd && inetd.exitCode === null) await new Promise((r) => inetd?.once('exit', r));
  if (consoleD && consoleD.exitCode === null) await new Promise((r) => consoleD?.once('exit', r));
  d.remove();
});

let n = 0;
const client = (chain: Identity[]) => writeClient(d.root, `c${n++}`, chain);

/** `openssl s_client` as the remote client: its stdout is the raw TLS payload. */
function sClient(files: { cert: string; key: string }, chainFile?: string): Wire[] {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-quiet', '-cert', files.cert, '-key', files.key, '-CAfile', pki.ca];
  if (chainFile) args.push('-cert_chain', chainFile);
  const r = spawnSync('openssl', args, { input: '', timeout: 15_000 });
  const { frames } = readFrames(new Uint8Array(r.stdout));
  return frames.map((f) => decodeWire(f)).filter((w) => w.ok).map((w) => (w as { value: Wire }).value);
}

test('remote create, console stream and info through inetd against vmmd and vmmd_console', { skip }, async () => {
  const hello = await issue(org, { cn: 'hello', command: create(config(['--lines=3', '--sleep'])) });
  const created = await tlsRequest(port, client([hello, org]), pki.ca);
  assert.equal(created.messages.length, 1, readLog(logfile));
  assert.equal(nameToString(created.messages[0].header.name), 'org:hello');
  assert.deepEqual(created.messages[0].payload, { kind: 'reply', value: { kind: 'string', value: 'created unikernel' } });

  const sub = await issue(org, { cn: 'hello', command: cmd.consoleSubscribe(10) });
  const lines: string[] = [];
  await until('console lines', async () => {
    const r = await tlsRequest(port, client([sub, org]), pki.ca, { stopAfter: 5 });
    lines.splice(0, lines.length, ...r.messages.flatMap((m) => (m.payload.kind === 'data' && m.payload.value.kind === 'console' ? [m.payload.value.value.line] : [])));
    return lines.includes('line 3');
  });
  assert.deepEqual(lines.filter((l) => l.startsWith('line ')), ['line 1', 'line 2', 'line 3']);

  // openssl as the client; the chain's intermediate passed with -cert_chain
  const infoLeaf = await issue(org, { cn: '.', command: cmd.info() });
  const files = client([infoLeaf]);
  const chainFile = join(d.root, 'org-chain.pem');
  writeFileSync(chainFile, org.pem);
  const info = sClient(files, chainFile);
  assert.equal(info.length, 1);
  assert.equal(info[0].payload.kind, 'reply');
  const list = info[0].payload.kind === 'reply' && info[0].payload.value.kind === 'unikernel_info' ? info[0].payload.value.value : [];
  assert.deepEqual(list.map((u) => nameToString(u.name)), [':hello']);

  // a policy larger than the one vmmd holds for org is refused by the handler, vmmd keeps its own
  const team = await issue(org, { cn: 'team', ca: true, command: cmd.policyAdd(policy({ memory: 4096 })) });
  const greedy = await issue(team, { cn: 'x', command: cmd.info() });
  const refused = await tlsRequest(port, client([greedy, team, org]), pki.ca);
  assert.deepEqual(refused.messages.map((m) => m.payload.kind), ['failure']);
  assert.match(readLog(logfile), /refused: delegation to org:team: exceeds the one to org:/);

  // every connection that ran a command was reported to vmmd_log as login and logout
  const events: string[] = [];
  const subscription = await subscribeLog(d.tmpdir, nm('org:'), { kind: 'count', value: 100 }, (e) => {
    if (e.event.kind === 'login' || e.event.kind === 'logout') events.push(`${e.event.kind} ${nameToString(e.event.value.name)}`);
  });
  assert.ok(subscription.ok);
  await until('login events', () => events.filter((e) => e === 'logout org:hello').length >= 2);
  subscription.value.close();
  assert.ok(events.includes('login org:hello') && events.includes('login org:'));

  const bye = await issue(org, { cn: 'hello', command: destroy });
  const destroyed = await tlsRequest(port, client([bye, org]), pki.ca);
  assert.deepEqual(destroyed.messages[0]?.payload, { kind: 'reply', value: { kind: 'string', value: 'destroyed unikernel' } });
});

test('a policy vmmd refuses stops the command written with it: the create behind it never runs', { skip }, async () => {
  const keep = await issue(org, { cn: 'keep', command: create(config(['--sleep'])) });
  const created = await tlsRequest(port, client([keep, org]), pki.ca);
  assert.equal(created.messages[0]?.payload.kind, 'reply', readLog(logfile));
  // org with less memory than :keep uses: the handler accepts the chain (org is the top), vmmd refuses the policy
  const small = await issue(pki.root, { cn: 'org', ca: true, command: cmd.policyAdd(policy({ unikernels: 2n, memory: 1, cpuids: [0] })) });
  const sneak = await issue(small, { cn: 'sneak', command: create(config(['--sleep'], { memory: 1 })) });
  const refused = await tlsRequest(port, client([sneak, small]), pki.ca);
  assert.equal(refused.messages.length, 1);
  const p = refused.messages[0].payload;
  assert.equal(p.kind, 'failure');
  assert.match(String(p.value), /^expected success when adding policy, got: failure/);
  const info = await tlsRequest(port, client([await issue(org, { cn: '.', command: cmd.info() }), org]), pki.ca);
  const list = info.messages[0]?.payload.kind === 'reply' && info.messages[0].payload.value.kind === 'unikernel_info' ? info.messages[0].payload.value.value : [];
  assert.deepEqual(list.map((u) => nameToString(u.name)), [':keep']);
  const bye = await issue(org, { cn: 'keep', command: destroy });
  assert.equal((await tlsRequest(port, client([bye, org]), pki.ca)).messages[0]?.payload.kind, 'reply');
});

test('local handler under inetd on a Unix socket, confined to its path', { skip }, async () => {
  const ask = async (name: string, c: Parameters<typeof command>[1]): Promise<Wire[]> => {
    const conn = await connectUnix(localSock);
    assert.ok(conn.ok);
    await conn.value.writeMessage(command(nm(name), c));
    return readAll(conn.value, 10_000);
  };
  const inside = await ask('org:', cmd.info());
  assert.equal(inside.length, 1);
  assert.equal(inside[0].payload.kind, 'reply');
  const outside = await ask('other:x', cmd.info());
  assert.deepEqual(outside.map((w) => w.payload), [{ kind: 'failure', value: 'other:x is outside org:' }]);
  const own = await ask('org:', cmd.policyAdd(policy({ memory: 100_000 })));
  assert.deepEqual(own.map((w) => w.payload.kind), ['failure']);
  assert.match(readLog(logfile), /local client: refused: policy add for org:: policies can only be changed below org:/);
});
