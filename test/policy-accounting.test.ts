/**
 * Policy accounting and confinement end to end: the real vmmd and vmmd_console with the fake
 * tender, vmmd_tls with a certificate chain per request, and the local handler (as inetd
 * spawns it: one process per Unix connection, the connection as standard input and output)
 * confined with --path.
 *
 * Guards: sibling sub-policies cannot multiply their parent's delegation (every policy on a
 * unikernel's path counts it); a name below a path without a policy of its own is limited by
 * the policies above it; the root unikernel `:team` is not inside `team:` (not listed, not
 * destroyed, not created through a handler confined to `team`); a tenant's info lists only
 * what is at or below its path; the number of policies below a policy is bounded; a state
 * file that breaks these rules is restored with warnings.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { nameToString } from '../src/core/name.js';
import { limits } from '../src/core/limits.js';
import type { Policy } from '../src/core/wire/common.js';
import { type Command, type Wire, command } from '../src/core/wire/wire.js';
import { encodeState } from '../src/core/wire/state.js';
import { FramedConn } from '../src/transport/conn.js';
import { type Identity, type PkiFiles, cmd, issue, serverPki, writeClient } from './helpers/pki.js';
import { handlerBundle, readLog, root as checkout, tlsRequest } from './helpers/tls-peer.js';
import {
  type RunDir, type VmmdProcess, RealConsole, ask, config, create, describe, destroy, info, makeRunDir, nm, readAll, request,
  startVmmd, until,
} from './helpers/vmmd.js';

let d: RunDir;
let cp: RealConsole;
let v: VmmdProcess;
let pki: PkiFiles;
let tlsd: ChildProcess;
let tlsPort = 0;
const servers: net.Server[] = [];

const P = (p: Partial<Policy>): Policy => ({ unikernels: 2n, cpuids: [0], memory: 64, bridges: [], ...p });
const policyAdd = (p: Policy): Command => ({ kind: 'policy', value: { kind: 'add', value: p } });
const blockAdd = (mb: number): Command => ({ kind: 'block', value: { kind: 'add', value: mb } });
const sleeper = (memory = 32, args: string[] = []) => config(['--sleep', ...args], { memory });

before(async () => {
  d = makeRunDir();
  cp = new RealConsole(d.tmpdir);
  await cp.start();
  v = await startVmmd(d);
  pki = await serverPki(d.root);
  const logfile = path.join(d.root, 'tls.log');
  tlsd = spawn(process.execPath, [path.join(checkout, 'dist', 'vmmd_tls.js'), pki.ca, pki.cert, pki.key, '--ip', '127.0.0.1', '--port', '0', '--tmpdir', d.tmpdir, '--logfile', logfile], { stdio: 'ignore' });
  await until('vmmd_tls listening', () => {
    const m = /listening on .*:(\d+)/.exec(readLog(logfile));
    if (m) tlsPort = Number(m[1]);
    return tlsPort !== 0;
  });
});

after(async () => {
  for (const s of servers) s.close();
  if (tlsd.exitCode === null) {
    tlsd.kill('SIGTERM');
    await new Promise((r) => tlsd.once('exit', r));
  }
  const code = await v.stop();
  await cp.stop();
  assert.equal(code, 0, v.stderr());
  d.remove();
});

/** One TLS request with the chain `leaf, ...cas`; the payloads of the answer. */
async function viaTls(label: string, chain: Identity[]): Promise<Wire['payload'][]> {
  const r = await tlsRequest(tlsPort, writeClient(d.root, label, chain), pki.ca);
  return r.messages.map((m) => m.payload);
}
const failureOf = (ps: Wire['payload'][]): string => {
  const last = ps.at(-1);
  return last?.kind === 'failure' ? last.value : `not a failure: ${JSON.stringify(last?.kind)}`;
};
const namesOf = (ps: Wire['payload'][]): string[] => {
  const last = ps.at(-1);
  assert.ok(last?.kind === 'reply', last?.kind === 'failure' ? last.value : last?.kind);
  const r = last.value;
  assert.ok(r.kind === 'unikernel_info' || r.kind === 'block_devices' || r.kind === 'policies', r.kind);
  return (r.value as Array<{ name: Parameters<typeof nameToString>[0] }>).map((e) => nameToString(e.name)).sort();
};

/** A Unix socket whose every connection is handed to a fresh `vmmd_tls_inetd --local --path P` (as inetd does). */
async function localHandler(confine: string): Promise<(name: string, c: Command) => Promise<Wire['payload'][]>> {
  const sock = path.join(d.root, `local-${confine}.sock`);
  const logfile = path.join(d.root, `local-${confine}.log`);
  const server = net.createServer({ pauseOnConnect: true }, (s) => {
    const child = spawn(process.execPath, [handlerBundle, '--local', '--path', confine, '--tmpdir', d.tmpdir, '--logfile', logfile], { stdio: [s, s, 'ignore'] });
    child.on('exit', () => server.emit('handled'));
    s.destroy();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(sock, r));
  return async (name, c) => {
    const s = net.connect(sock);
    await new Promise((r) => s.once('connect', r));
    const conn = new FramedConn(s);
    const handled = new Promise((r) => server.once('handled', r));
    await conn.writeMessage(command(nm(name), c));
    const out = await readAll(conn, 20_000);
    await handled;
    return out.map((w) => w.payload);
  };
}

const infoNames = async (name: string): Promise<string[]> => {
  const ws = await request(v.sock, name, info);
  return namesOf(ws.map((w) => w.payload));
};

test('sibling sub-CAs with their parent\'s full policy cannot multiply it: dept (2 unikernels, 64 MB), dept:s1, s2, s3', async () => {
  const dept = await issue(pki.root, { cn: 'dept', ca: true, command: cmd.policyAdd(P({})) });
  const subs = await Promise.all(['s1', 's2', 's3'].map((cn) => issue(dept, { cn, ca: true, command: cmd.policyAdd(P({})) })));
  const createIn = async (sub: number, label: string): Promise<Wire['payload'][]> => {
    const leaf = await issue(subs[sub], { cn: label, command: create(sleeper(32)) });
    return viaTls(`s${sub + 1}-${label}`, [leaf, subs[sub], dept]);
  };
  assert.deepEqual((await createIn(0, 'u1')).map((p) => p.kind), ['reply']);
  assert.deepEqual((await createIn(1, 'u1')).map((p) => p.kind), ['reply']);
  // dept's count is exhausted at the second unikernel in s2, although s2's policy allows two
  assert.equal(failureOf(await createIn(1, 'u2')), 'create dept:s2:u2: one more unikernel would exceed policy dept (2 unikernels, 2 running below it)');
  // and the third pair, under s3, is refused
  assert.equal(failureOf(await createIn(2, 'u1')), 'create dept:s3:u1: one more unikernel would exceed policy dept (2 unikernels, 2 running below it)');
  assert.equal(failureOf(await createIn(2, 'u2')), 'create dept:s3:u2: one more unikernel would exceed policy dept (2 unikernels, 2 running below it)');
  assert.deepEqual(await infoNames('dept:'), ['s1:u1', 's2:u1']);
  // all three sub-policies were installed: caps, not reservations
  assert.deepEqual(namesOf((await request(v.sock, 'dept:', { kind: 'policy', value: { kind: 'info', value: null } })).map((w) => w.payload)), [':', 's1:', 's2:', 's3:']);
  // memory: with room in dept's count, two of 32 MB fill its 64 MB; the ancestor is named with its figures
  assert.equal(await ask(v.sock, 'mem:', policyAdd(P({ unikernels: 6n }))), 'ok: added policy');
  for (const s of ['s1', 's2', 's3']) assert.equal(await ask(v.sock, `mem:${s}:`, policyAdd(P({ unikernels: 6n }))), 'ok: added policy');
  assert.equal(await ask(v.sock, 'mem:s1:a', create(sleeper(32))), 'ok: created unikernel');
  assert.equal(await ask(v.sock, 'mem:s2:a', create(sleeper(32))), 'ok: created unikernel');
  assert.equal(await ask(v.sock, 'mem:s3:a', create(sleeper(32))), 'fail: create mem:s3:a: memory 32 MB would exceed policy mem (64 MB, 64 MB in use below it)');
  // block devices: stored below dept counts against dept's block size
  assert.equal(await ask(v.sock, 'blk:', policyAdd(P({ block: 10 }))), 'ok: added policy');
  for (const s of ['s1', 's2']) assert.equal(await ask(v.sock, `blk:${s}:`, policyAdd(P({ block: 10 }))), 'ok: added policy');
  assert.equal(await ask(v.sock, 'blk:s1:d', blockAdd(8)), 'ok: added block device');
  assert.equal(await ask(v.sock, 'blk:s2:d', blockAdd(8)), 'fail: block add blk:s2:d: 8 MB would exceed the block storage of policy blk (10 MB, 8 MB in use below it)');
  // a sub-policy smaller than what already runs below it is refused, naming the figures
  assert.equal(await ask(v.sock, 'mem:s1:', policyAdd(P({ unikernels: 6n, memory: 16 }))), 'fail: unikernel would exceed running memory limit set by policy to 16 MB, used 32 MB');
  for (const n of ['dept:s1:u1', 'dept:s2:u1', 'mem:s1:a', 'mem:s2:a']) assert.equal(await ask(v.sock, n, destroy), 'ok: destroyed unikernel');
  // once they stopped, s3 may run dept's whole delegation
  assert.deepEqual((await createIn(2, 'u1')).map((p) => p.kind), ['reply']);
  assert.equal(await ask(v.sock, 'dept:s3:u1', destroy), 'ok: destroyed unikernel');
});

test(`at most ${limits.maxPoliciesBelowPolicy} policies below a policy (maxPoliciesBelowPolicy); the operator's top-level policies are not counted`, async () => {
  const max = limits.maxPoliciesBelowPolicy;
  assert.equal(await ask(v.sock, 'many:', policyAdd(P({}))), 'ok: added policy');
  for (let i = 0; i < max; i++) assert.equal(await ask(v.sock, `many:p${i}:`, policyAdd(P({}))), 'ok: added policy', `many:p${i}`);
  assert.equal(await ask(v.sock, `many:p${max}:`, policyAdd(P({}))),
    `fail: policy for many:p${max}: ${max} policies are already installed below many, at most ${max} are allowed below a policy (maxPoliciesBelowPolicy)`);
  assert.equal(await ask(v.sock, 'many:p0:deeper:', policyAdd(P({}))),
    `fail: policy for many:p0:deeper: ${max} policies are already installed below many, at most ${max} are allowed below a policy (maxPoliciesBelowPolicy)`);
  assert.equal(await ask(v.sock, 'many:p3:', policyAdd(P({ memory: 32 }))), 'ok: added policy', 'replacing one is no new policy');
  assert.equal(await ask(v.sock, 'top-level-beyond:', policyAdd(P({}))), 'ok: added policy');
});

test('--local --path team: a name below a sub-path without a policy is limited by team\'s; the root unikernel :team is outside team:', async () => {
  const local = await localHandler('team');
  assert.equal(await ask(v.sock, 'team:', policyAdd(P({ unikernels: 1n, memory: 32, cpuids: [0] }))), 'ok: added policy');
  // the operator's root-level unikernel with team's label
  assert.equal(await ask(v.sock, ':team', create(sleeper(32, ['--operator-only']))), 'ok: created unikernel');
  const big = config(['--sleep'], { memory: 4096, cpuids: [1] });
  assert.deepEqual(await local('team:nopol:big1', create(big)),
    [{ kind: 'failure', value: 'create team:nopol:big1: memory 4096 MB would exceed policy team (32 MB, 0 MB in use below it)' }]);
  assert.deepEqual((await local('team:nopol:ok1', create(sleeper(32)))).map((p) => p.kind), ['reply']);
  assert.deepEqual(await local('team:nopol:ok2', create(sleeper(1))),
    [{ kind: 'failure', value: 'create team:nopol:ok2: one more unikernel would exceed policy team (1 unikernels, 1 running below it)' }]);
  // `:team` (path root, label team) is not inside team:
  assert.deepEqual(await local(':team', info), [{ kind: 'failure', value: ':team is outside team:' }]);
  assert.deepEqual(await local(':team', destroy), [{ kind: 'failure', value: ':team is outside team:' }]);
  assert.deepEqual(await local(':team', create(config(['--sleep'], { memory: 8192 }))), [{ kind: 'failure', value: ':team is outside team:' }]);
  assert.deepEqual(namesOf(await local('team:', info)), ['nopol:ok1']);
  // policies only strictly below team, also when the label would be ignored
  assert.deepEqual(await local('team:x', policyAdd(P({ memory: 100_000 }))),
    [{ kind: 'failure', value: 'policy add for team:x: policies can only be changed below team:' }]);
  assert.ok((await infoNames(':')).includes(':team'));
  assert.equal(await ask(v.sock, ':team', destroy), 'ok: destroyed unikernel', 'still running');
  assert.equal(await ask(v.sock, 'team:nopol:ok1', destroy), 'ok: destroyed unikernel');
});

test('a tenant\'s info of its own path lists only names at or below it: not the operator\'s :dept (TLS and --local --path)', async () => {
  assert.equal(await ask(v.sock, 'view:', policyAdd(P({ block: 10 }))), 'ok: added policy');
  assert.equal(await ask(v.sock, ':view', create(sleeper(32, ['--operator-secret']))), 'ok: created unikernel');
  assert.equal(await ask(v.sock, 'view:web', create(sleeper(32))), 'ok: created unikernel');
  assert.equal(await ask(v.sock, ':view', blockAdd(1)), 'ok: added block device');
  assert.equal(await ask(v.sock, 'view:disk', blockAdd(1)), 'ok: added block device');
  const ca = await issue(pki.root, { cn: 'view', ca: true, command: cmd.policyAdd(P({ block: 10 })) });
  const tls = async (c: Command): Promise<string[]> => namesOf(await viaTls(`view-${c.kind}`, [await issue(ca, { cn: '.', command: c }), ca]));
  assert.deepEqual(await tls(info), [':web']);
  assert.deepEqual(await tls(cmd.blockInfo()), [':disk']);
  assert.deepEqual(await tls(cmd.policyInfo()), [':']);
  const local = await localHandler('view');
  assert.deepEqual(namesOf(await local('view:', info)), [':web']);
  assert.deepEqual(namesOf(await local('view:', cmd.blockInfo())), [':disk']);
  assert.deepEqual(namesOf(await local('view:', cmd.policyInfo())), [':']);
  // the operator at the root sees both
  const all = await infoNames(':');
  assert.ok(all.includes(':view') && all.includes('view:web'), all.join(' '));
  for (const n of [':view', 'view:web']) assert.equal(await ask(v.sock, n, destroy), 'ok: destroyed unikernel');
});

test('start-up restores a state file whose siblings together exceed their parent (older versions, upstream): all run, with warnings', async () => {
  const r = makeRunDir();
  const c2 = new RealConsole(r.tmpdir);
  await c2.start();
  const dept = P({});
  const uk = (n: string) => ({ name: nm(n), config: sleeper(32) });
  fs.writeFileSync(path.join(r.dbdir, 'state'), encodeState({
    unikernels: ['dept:s1:a', 'dept:s1:b', 'dept:s2:a', 'dept:s2:b'].map(uk),
    // dept:big is larger than dept (a state edited by hand, or written under other rules)
    policies: [{ name: nm('dept:'), policy: dept }, { name: nm('dept:s1:'), policy: dept }, { name: nm('dept:s2:'), policy: dept }, { name: nm('dept:big:'), policy: P({ unikernels: 9n }) }],
  }));
  const w = await startVmmd(r);
  try {
    const ws = await request(w.sock, 'dept:', info);
    assert.deepEqual(namesOf(ws.map((x) => x.payload)), ['s1:a', 's1:b', 's2:a', 's2:b']);
    const log = w.stderr();
    assert.match(log, /policy for dept:big: from the state file does not fit \(policy above allows 2 unikernels, which is fewer than 9\); installed anyway/);
    assert.match(log, /dept:s2:a from the state file exceeds a policy above its own \(create dept:s2:a: one more unikernel would exceed policy dept \(2 unikernels, 2 running below it\)\); started anyway/);
    assert.equal(describe((await request(w.sock, 'dept:s1:c', create(sleeper(1))))[0]), 'fail: maximum amount of unikernels (2) reached');
  } finally {
    assert.equal(await w.stop(), 0, w.stderr());
    await c2.stop();
    r.remove();
  }
});
