/**
 * vmmd_tls_inetd in nowait mode, one process per connection, against a daemon peer on
 * the Unix sockets: commands relayed with the chain's policies, and every attack refused
 * with its reason in the handler's log and nothing sent to the client.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nameToString } from '../src/core/name.js';
import { ALBATROSS_OID, describeCommand, encodeCertExtension } from '../src/core/wire/wire.js';
import { type Identity, type PkiFiles, cmd, issue, makeCrl, makeRoot, policy, serverPki, writeClient } from './helpers/pki.js';
import * as x509 from '@peculiar/x509'; // after the helper, which loads reflect-metadata
import { DaemonPeer, MiniInetd, rawFrame, readLog, tlsRequest } from './helpers/tls-peer.js';

let dir: string;
let pki: PkiFiles;
let peer: DaemonPeer;
let inetd: MiniInetd;
let logfile: string;
let org: Identity;
let n = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'albatross-tls-'));
  pki = await serverPki(dir);
  peer = new DaemonPeer(dir);
  await peer.start();
  logfile = join(dir, 'handler.log');
  inetd = new MiniInetd([pki.ca, pki.cert, pki.key, '--logfile', logfile, '--tmpdir', dir, '--handshake-timeout', '1', '--command-timeout', '2']);
  await inetd.start();
  org = await issue(pki.root, { cn: 'org', ca: true, command: cmd.policyAdd(policy({ unikernels: 4n, memory: 1024, cpuids: [0, 1] })) });
});

after(async () => {
  await inetd.close();
  await peer.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs one client connection and returns its messages and the log lines it produced. */
async function run(chain: Identity[], opts: { send?: Uint8Array[]; stopAfter?: number } = {}) {
  const before = readLog(logfile).length;
  const files = writeClient(dir, `client${n++}`, chain);
  const received = peer.received.length;
  const r = await tlsRequest(inetd.port, files, pki.ca, opts);
  await inetd.settle();
  return { ...r, log: readLog(logfile).slice(before), sent: peer.received.slice(received), exit: inetd.exits[inetd.exits.length - 1] };
}

/** The text of the one failure reply a refused client gets. */
function refusal(messages: { payload: { kind: string; value?: unknown } }[]): string {
  assert.equal(messages.length, 1, 'one failure reply reaches the client');
  assert.equal(messages[0].payload.kind, 'failure');
  return String(messages[0].payload.value);
}

async function refusedWith(chain: Identity[], reason: RegExp): Promise<void> {
  const r = await run(chain);
  // the reason reaches the client too, in a failure reply (before, the connection just ended)
  const told = refusal(r.messages);
  assert.ok(r.log.includes(`: ${told}`), `the client is told what the log says: ${told}`);
  assert.deepEqual(r.sent, [], 'nothing may reach a daemon');
  assert.match(r.log, /refused: /);
  assert.match(r.log, reason);
  assert.equal(r.exit, 1);
}

test('info through a delegation: policy installed first, then the command, one final reply', async () => {
  const leaf = await issue(org, { cn: 'hello', command: cmd.info() });
  const r = await run([leaf, org]);
  assert.equal(r.exit, 0);
  assert.equal(r.messages.length, 1);
  const m = r.messages[0];
  assert.equal(nameToString(m.header.name), 'org:hello');
  assert.equal(m.header.sequence, 0n);
  assert.equal(m.payload.kind, 'reply');
  assert.deepEqual(r.sent.map((x) => `${nameToString(x.wire.header.name)} ${x.wire.payload.kind === 'command' ? describeCommand(x.wire.payload.value) : ''}`), [
    'org: policy add',
    'org:hello unikernel info',
  ]);
  // one process-wide counter per handler process: 0 for the policy, 1 for the command
  assert.deepEqual(r.sent.map((x) => x.wire.header.sequence), [0n, 1n]);
  assert.match(r.log, /login .*org:hello unikernel info \(1 policy\)/);
  assert.match(r.log, /logout .*org:hello unikernel info.*reply unikernel_info/);
});

test('console subscription streams the daemon messages, addressed below the chain path', async () => {
  const leaf = await issue(org, { cn: 'web', command: cmd.consoleSubscribe() });
  const r = await run([leaf, org], { stopAfter: 3 });
  assert.equal(r.messages.length, 3);
  assert.equal(r.messages[0].payload.kind, 'reply');
  assert.equal(r.messages[2].payload.kind, 'data');
  assert.deepEqual(r.sent.map((x) => [x.socket, nameToString(x.wire.header.name)]), [['console', 'org:web']]);
  assert.match(r.log, /client closed the connection/);
});

test("a console subscription to another tenant's unikernel cannot be expressed", async () => {
  const other = await issue(pki.root, { cn: 'other', ca: true, command: cmd.policyAdd(policy()) });
  for (const cn of ['other:web', ':other', 'org:..']) {
    const leaf = await issue(org, { cn, command: cmd.consoleSubscribe() });
    await refusedWith([leaf, org], /invalid label/);
  }
  // a leaf of org presented with other's CA: the chain does not verify
  const leaf = await issue(org, { cn: 'web', command: cmd.consoleSubscribe() });
  await refusedWith([leaf, other], /refused: client certificate refused/);
  assert.ok(peer.received.every((x) => x.socket !== 'console' || nameToString(x.wire.header.name).startsWith('org:')));
});

test('a leaf signed by an unknown CA is refused', async () => {
  const stranger = await makeRoot('stranger');
  const leaf = await issue(stranger, { cn: 'x', command: cmd.info() });
  await refusedWith([leaf, stranger], /client certificate refused: (SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT)/);
  const leaf2 = await issue(stranger, { cn: 'x', command: cmd.info() });
  await refusedWith([leaf2], /client certificate refused: (UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/);
});

test('an intermediate without CA basic constraints is refused', async () => {
  const notCa = await issue(pki.root, { cn: 'org', ca: true, noBasicConstraints: true, command: cmd.policyAdd(policy()) });
  const leaf = await issue(notCa, { cn: 'x', command: cmd.info() });
  await refusedWith([leaf, notCa], /client certificate refused: INVALID_CA/);
});

test('expired and not yet valid certificates are refused', async () => {
  const expired = await issue(org, { cn: 'x', command: cmd.info(), notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) });
  await refusedWith([expired, org], /CERT_HAS_EXPIRED/);
  const future = await issue(org, { cn: 'x', command: cmd.info(), notBefore: new Date(Date.now() + 3600_000) });
  await refusedWith([future, org], /CERT_NOT_YET_VALID/);
  const expiredCa = await issue(pki.root, { cn: 'org', ca: true, command: cmd.policyAdd(policy()), notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) });
  const leaf = await issue(expiredCa, { cn: 'x', command: cmd.info() });
  await refusedWith([leaf, expiredCa], /CERT_HAS_EXPIRED/);
});

test('a policy larger than its parent is refused before vmmd sees it', async () => {
  const team = await issue(org, { cn: 'team', ca: true, command: cmd.policyAdd(policy({ memory: 4096 })) });
  const leaf = await issue(team, { cn: 'x', command: cmd.info() });
  await refusedWith([leaf, team, org], /delegation to org:team: exceeds the one to org:: policy above allows 1024 MB memory, which is fewer than 4096 MB/);
});

test('a chain of 10 is refused; the root counts when the client sends it', async () => {
  const chain: Identity[] = [];
  let parent = pki.root;
  for (let i = 0; i < 9; i++) {
    parent = await issue(parent, { cn: `l${i}`, ca: true, command: cmd.policyAdd(policy()) });
    chain.unshift(parent);
  }
  const leaf = await issue(chain[0], { cn: 'x', command: cmd.info() });
  await refusedWith([leaf, ...chain], /certificate chain too long/);
  // 9 certificates: accepted without the root, 10 with it
  const nine = [await issue(chain[1], { cn: 'x', command: cmd.info() }), ...chain.slice(1)];
  const r = await run(nine);
  assert.equal(r.exit, 0, r.log);
  assert.equal(r.messages.length, 1);
  assert.equal(nameToString(r.messages[0].header.name), 'l0:l1:l2:l3:l4:l5:l6:l7:x');
  await refusedWith([...nine, pki.root], /certificate chain too long/);
});

test('commands not allowed through a certificate are refused', async () => {
  for (const c of [cmd.consoleAdd(), cmd.statsAdd()]) {
    const leaf = await issue(org, { cn: 'x', command: c });
    await refusedWith([leaf, org], /unexpected command/);
  }
  // policy add in a leaf only below the chain's path: not at org itself, whose policy its CA carries
  const own = await issue(org, { cn: '.', command: cmd.policyAdd(policy()) });
  await refusedWith([own, org], /refused: policy add may not have an empty name: a leaf certificate adds or removes policies below the path of its chain \(org:\)/);
  const bare = await issue(org, { cn: 'x' });
  await refusedWith([bare, org], /leaf certificate does not contain an albatross extension/);
  const odd = await issue(pki.root, { cn: 'odd', ca: true, command: cmd.info() });
  const leaf = await issue(odd, { cn: 'x', command: cmd.info() });
  await refusedWith([leaf, odd], /unexpected wire unikernel info/);
});

test('a leaf with two Albatross extensions is refused (RFC 5280 4.2: one instance of each extension); the first no longer wins', async () => {
  const second = new x509.Extension(ALBATROSS_OID, false, encodeCertExtension(cmd.destroy()));
  const leaf = await issue(org, { cn: 'x', command: cmd.info(), extraExtensions: [second] });
  await refusedWith([leaf, org], new RegExp(`refused: leaf certificate \\(CN "x"\\): extension ${ALBATROSS_OID.replace(/\./g, '\\.')} \\(albatross\\) appears 2 times`));
  // in a delegating CA as well
  const twice = await issue(pki.root, {
    cn: 'twice', ca: true, command: cmd.policyAdd(policy()),
    extraExtensions: [new x509.Extension(ALBATROSS_OID, false, encodeCertExtension(cmd.policyAdd(policy({ memory: 1024 }))))],
  });
  const below = await issue(twice, { cn: 'x', command: cmd.info() });
  await refusedWith([below, twice], /refused: certificate 1 \(top of the chain\) \(CN "twice"\): extension .* \(albatross\) appears 2 times/);
});

test('a leaf that is a CA (basicConstraints cA TRUE) carrying a command is refused', async () => {
  const caLeaf = await issue(org, { cn: 'x', ca: true, command: cmd.info() });
  await refusedWith([caLeaf, org], /refused: leaf certificate \(CN "x"\) is a CA \(basicConstraints cA TRUE\): a command must come in an end-entity certificate/);
});

test('an unknown critical extension is refused with its OID named (not UNSPECIFIED)', async () => {
  const oid = '1.3.6.1.4.1.99999.7';
  const leaf = await issue(org, { cn: 'x', command: cmd.info(), extraExtensions: [new x509.Extension(oid, true, new Uint8Array([0x05, 0x00]))] });
  const r = await run([leaf, org]);
  assert.match(refusal(r.messages), /^client certificate refused: leaf certificate \(CN "x"\) has the unhandled critical extension 1\.3\.6\.1\.4\.1\.99999\.7$/);
  assert.deepEqual(r.sent, []);
  assert.equal(r.exit, 1);
  assert.match(r.log, /refused: client certificate refused: leaf certificate \(CN "x"\) has the unhandled critical extension 1\.3\.6\.1\.4\.1\.99999\.7/);
  assert.doesNotMatch(r.log, /UNSPECIFIED/);
  // in an intermediate
  const crit = await issue(pki.root, { cn: 'crit', ca: true, command: cmd.policyAdd(policy()), extraExtensions: [new x509.Extension(oid, true, new Uint8Array([0x05, 0x00]))] });
  const below = await issue(crit, { cn: 'y', command: cmd.info() });
  const r2 = await run([below, crit]);
  assert.match(refusal(r2.messages), /has the unhandled critical extension/);
  assert.match(r2.log, /refused: client certificate refused: certificate 1 \(CN "crit"\) has the unhandled critical extension 1\.3\.6\.1\.4\.1\.99999\.7/);
});

test('block set: raw chunks relayed to vmmd, end marker forwarded', async () => {
  const leaf = await issue(org, { cn: 'disk', command: cmd.blockSet() });
  const chunk = new Uint8Array(5000).fill(7);
  const r = await run([leaf, org], { send: [rawFrame(chunk), rawFrame(chunk.subarray(0, 10)), new Uint8Array(4)] });
  assert.equal(r.messages.length, 1);
  assert.deepEqual(r.messages[0].payload, { kind: 'reply', value: { kind: 'string', value: 'set block device (5010 bytes)' } });
  const set = r.sent.find((x) => x.chunks !== undefined);
  assert.deepEqual(set?.chunks?.map((c) => c.length), [5000, 10]);
});

test('block dump: data forwarded, end marker becomes the final reply', async () => {
  const leaf = await issue(org, { cn: 'disk', command: cmd.blockDump() });
  const r = await run([leaf, org]);
  assert.deepEqual(r.messages.map((m) => m.payload.kind), ['reply', 'data', 'data']);
  assert.deepEqual(r.messages[2].payload, { kind: 'data', value: { kind: 'block', value: { kind: 'eof', value: null } } });
  assert.equal(r.messages[2].header.sequence, 0n);
});

test('no daemon: the final reply says so', async () => {
  const leaf = await issue(org, { cn: 'x', command: cmd.statsSubscribe() });
  const r = await run([leaf, org]);
  assert.equal(r.messages.length, 1);
  assert.deepEqual(r.messages[0].payload, { kind: 'failure', value: "couldn't reach service" });
  assert.match(r.log, /no socket at .*stat\.sock/);
});

test('a client that sends nothing, or stops mid-handshake, is cut off at the deadline', async () => {
  for (const bytes of [new Uint8Array(0), new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])]) {
    const before = readLog(logfile).length;
    const s = net.connect(inetd.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    if (bytes.length > 0) s.write(bytes);
    const closed = await new Promise<boolean>((resolve) => {
      s.once('close', () => resolve(true));
      s.resume();
    });
    assert.ok(closed);
    await inetd.settle();
    assert.match(readLog(logfile).slice(before), /TLS handshake failed: no TLS handshake within 1000 ms/);
    assert.equal(inetd.exits[inetd.exits.length - 1], 1);
  }
});

test('bulk image upload: a create with an empty image waits for the chunks; EOF first aborts', async () => {
  const config = {
    typ: 'solo5' as const, compressed: false, image: new Uint8Array(0), addName: true,
    failBehaviour: { kind: 'quit' as const, value: null }, cpuids: [0], memory: 32, blocks: [], bridges: [], cpus: 1,
  };
  const create = { kind: 'unikernel', value: { kind: 'create', value: config } } as Parameters<typeof describeCommand>[0];
  const leaf = await issue(org, { cn: 'up', command: create });
  const image = new Uint8Array(3000).fill(0x41);
  const r = await run([leaf, org], { send: [rawFrame(image.subarray(0, 1000)), rawFrame(image.subarray(1000)), new Uint8Array(4)] });
  assert.equal(r.messages.length, 1);
  const c = r.sent.find((x) => x.wire.payload.kind === 'command' && x.wire.payload.value.kind === 'unikernel');
  const sentCmd = c?.wire.payload.kind === 'command' ? c.wire.payload.value : undefined;
  assert.ok(sentCmd?.kind === 'unikernel' && sentCmd.value.kind === 'create');
  assert.equal((sentCmd.value.value as { image: Uint8Array }).image.length, 3000);
  // the upload deadline (--command-timeout 2) cuts off a client that never finishes
  const r2 = await run([leaf, org], { send: [rawFrame(image.subarray(0, 10))] });
  assert.deepEqual(r2.messages, []);
  assert.match(r2.log, /aborted: reading the image upload: timed out/);
});

test('--crl-mode strict: a revoked leaf and a leaf below a revoked intermediate are refused, others pass, a CA without a CRL locks out its subtree', async () => {
  const team = await issue(org, { cn: 'team', ca: true, command: cmd.policyAdd(policy({ unikernels: 1n })) });
  const good = await issue(team, { cn: 'good', command: cmd.info() });
  const bad = await issue(team, { cn: 'bad', command: cmd.info() });
  const revokedCa = await issue(org, { cn: 'gone', ca: true, command: cmd.policyAdd(policy({ unikernels: 1n })) });
  const underRevoked = await issue(revokedCa, { cn: 'x', command: cmd.info() });
  const crlDir = join(dir, 'crl');
  rmSync(crlDir, { recursive: true, force: true });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(crlDir);
  writeFileSync(join(crlDir, 'root.pem'), await makeCrl(pki.root, []));
  writeFileSync(join(crlDir, 'org.pem'), await makeCrl(org, [revokedCa.serial]));
  writeFileSync(join(crlDir, 'team.pem'), await makeCrl(team, [bad.serial])); // issued by an intermediate for its subtree
  writeFileSync(join(crlDir, 'gone.pem'), await makeCrl(revokedCa, []));
  const log2 = join(dir, 'crl.log');
  const crlInetd = new MiniInetd([pki.ca, pki.cert, pki.key, '--logfile', log2, '--tmpdir', dir, '--crl', crlDir, '--crl-mode', 'strict']);
  const port = await crlInetd.start();
  try {
    const go = async (chain: Identity[]) => {
      const files = writeClient(dir, `crl${n++}`, chain);
      const before = readLog(log2).length;
      const r = await tlsRequest(port, files, pki.ca);
      await crlInetd.settle();
      return { r, log: readLog(log2).slice(before) };
    };
    const ok = await go([good, team, org]);
    assert.equal(ok.r.messages.length, 1, ok.log);
    const revoked = await go([bad, team, org]);
    assert.equal(refusal(revoked.r.messages), 'client certificate refused: CERT_REVOKED');
    assert.match(revoked.log, /client certificate refused: CERT_REVOKED/);
    const below = await go([underRevoked, revokedCa, org]);
    assert.equal(refusal(below.r.messages), 'client certificate refused: CERT_REVOKED');
    assert.match(below.log, /client certificate refused: CERT_REVOKED/);
    // a CA without a CRL: refused (documented: --crl must cover every CA)
    const nocrl = await issue(org, { cn: 'nocrl', ca: true, command: cmd.policyAdd(policy({ unikernels: 1n })) });
    const leaf = await issue(nocrl, { cn: 'x', command: cmd.info() });
    const missing = await go([leaf, nocrl, org]);
    assert.equal(refusal(missing.r.messages), 'client certificate refused: UNABLE_TO_GET_CRL');
    assert.match(missing.log, /UNABLE_TO_GET_CRL/);
  } finally {
    await crlInetd.close();
  }
});

test('--crl-mode present (the default): the CRLs there are apply to their issuer\'s certificates; a CA without a CRL, or one past its nextUpdate, refuses nothing by itself', async () => {
  const team = await issue(org, { cn: 'team2', ca: true, command: cmd.policyAdd(policy({ unikernels: 1n })) });
  const good = await issue(team, { cn: 'good', command: cmd.info() });
  const bad = await issue(team, { cn: 'bad', command: cmd.info() });
  const revokedCa = await issue(org, { cn: 'gone2', ca: true, command: cmd.policyAdd(policy({ unikernels: 1n })) });
  const underRevoked = await issue(revokedCa, { cn: 'x', command: cmd.info() });
  const nocrl = await issue(org, { cn: 'nocrl2', ca: true, command: cmd.policyAdd(policy({ unikernels: 1n })) });
  const underNocrl = await issue(nocrl, { cn: 'y', command: cmd.info() });
  const revokedByRoot = await issue(pki.root, { cn: 'cut', ca: true, command: cmd.policyAdd(policy({ unikernels: 1n })) });
  const underCut = await issue(revokedByRoot, { cn: 'z', command: cmd.info() });
  const crlDir = join(dir, 'crl-present');
  rmSync(crlDir, { recursive: true, force: true });
  mkdirSync(crlDir);
  // the root's CRL covers the CAs it issued; org's its subtree; team's (past its nextUpdate) still counts
  writeFileSync(join(crlDir, 'root.pem'), await makeCrl(pki.root, [revokedByRoot.serial]));
  writeFileSync(join(crlDir, 'org.pem'), await makeCrl(org, [revokedCa.serial]));
  writeFileSync(join(crlDir, 'team.pem'), await makeCrl(team, [bad.serial], { nextUpdate: new Date(Date.now() - 86_400_000) }));
  // a CRL that names team's subject but is not signed by team's key applies to nothing
  const impostor = await issue(pki.root, { cn: 'team2', ca: true });
  writeFileSync(join(crlDir, 'fake.pem'), await makeCrl(impostor, [good.serial]));
  const log2 = join(dir, 'crl-present.log');
  const crlInetd = new MiniInetd([pki.ca, pki.cert, pki.key, '--logfile', log2, '--tmpdir', dir, '--crl', crlDir]);
  const port = await crlInetd.start();
  try {
    const go = async (chain: Identity[]) => {
      const files = writeClient(dir, `crl${n++}`, chain);
      const before = readLog(log2).length;
      const r = await tlsRequest(port, files, pki.ca);
      await crlInetd.settle();
      return { r, log: readLog(log2).slice(before) };
    };
    const passes = async (chain: Identity[]): Promise<void> => {
      const p = await go(chain);
      assert.equal(p.r.messages.length, 1, p.log);
      assert.equal(p.r.messages[0].payload.kind, 'reply', p.log);
    };
    await passes([good, team, org]);
    // before: UNABLE_TO_GET_CRL for every chain through nocrl2 (strict was the only mode)
    await passes([underNocrl, nocrl, org]);
    assert.equal(refusal((await go([bad, team, org])).r.messages), 'client certificate refused: CERT_REVOKED (certificate 0, CN "bad", is in the CRL of CN "team2")');
    assert.equal(refusal((await go([underRevoked, revokedCa, org])).r.messages), 'client certificate refused: CERT_REVOKED (certificate 1, CN "gone2", is in the CRL of CN "org")');
    assert.equal(refusal((await go([underCut, revokedByRoot])).r.messages), 'client certificate refused: CERT_REVOKED (certificate 1, CN "cut", is in the CRL of CN "albatross test root")');
  } finally {
    await crlInetd.close();
  }
});

test('configuration errors: more than one CA certificate, said on standard error too without --logfile or --syslog', async () => {
  const two = join(dir, 'two.pem');
  writeFileSync(two, pki.root.pem + pki.server.pem);
  const { spawnSync } = await import('node:child_process');
  const { handlerBundle } = await import('./helpers/tls-peer.js');
  const log3 = join(dir, 'conf.log');
  const r = spawnSync(process.execPath, [handlerBundle, two, pki.cert, pki.key, '--logfile', log3], { input: '' });
  assert.equal(r.status, 2);
  assert.match(readLog(log3), /expect single ca as cacert/);
  // standard error a file (an operator's terminal, not a socket): the reason is printed there
  const errFile = join(dir, 'stderr.txt');
  const { openSync, closeSync } = await import('node:fs');
  const fd = openSync(errFile, 'w');
  const q = spawnSync(process.execPath, [handlerBundle, two, pki.cert, pki.key, '--quiet'], { stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  assert.equal(q.status, 2);
  assert.match(readLog(errFile), /expect single ca as cacert/);
});

test('without --logfile, --syslog or --quiet the handler logs to syslog and serves the client (upstream exits 3 before the handshake)', async () => {
  const fake = join(dir, 'fakebin-default');
  mkdirSync(fake, { recursive: true });
  const out = join(dir, 'syslog-default.txt');
  writeFileSync(join(fake, 'logger'), `#!/bin/sh\necho "args: $*" >> '${out}'\ncat >> '${out}'\n`, { mode: 0o755 });
  const sys = new MiniInetd([pki.ca, pki.cert, pki.key, '--tmpdir', dir], { ...process.env, PATH: `${fake}:${process.env.PATH ?? ''}` });
  await sys.start();
  try {
    const leaf = await issue(org, { cn: 'hello', command: cmd.info() });
    const r = await tlsRequest(sys.port, writeClient(dir, `client${n++}`, [leaf, org]), pki.ca);
    assert.equal(r.messages.length, 1);
    await sys.settle();
    assert.deepEqual(sys.exits, [0]);
    const text = readLog(out);
    assert.match(text, /^args: -t vmmd_tls_inetd\[\d+\] -p daemon\.info$/m);
    assert.match(text, /^info: logout .*org:hello unikernel info/m);
  } finally {
    await sys.close();
  }
});

test('--syslog: the lines reach logger(1), tagged with the handler, once the client has its answer', async () => {
  // logger(1) needs a syslog daemon; a stand-in of the same name on PATH records what it gets
  const fake = join(dir, 'fakebin');
  mkdirSync(fake, { recursive: true });
  const out = join(dir, 'syslog.txt');
  writeFileSync(join(fake, 'logger'), `#!/bin/sh\necho "args: $*" >> '${out}'\ncat >> '${out}'\n`, { mode: 0o755 });
  const sys = new MiniInetd([pki.ca, pki.cert, pki.key, '--syslog', '--tmpdir', dir], { ...process.env, PATH: `${fake}:${process.env.PATH ?? ''}` });
  await sys.start();
  try {
    const leaf = await issue(org, { cn: 'hello', command: cmd.info() });
    const r = await tlsRequest(sys.port, writeClient(dir, `client${n++}`, [leaf, org]), pki.ca);
    assert.equal(r.messages.length, 1);
    await sys.settle();
    assert.deepEqual(sys.exits, [0]);
    const text = readLog(out);
    assert.match(text, /^args: -t vmmd_tls_inetd\[\d+\] -p daemon\.info$/m);
    assert.match(text, /^info: login .*org:hello unikernel info/m);
    assert.match(text, /^info: logout .*org:hello unikernel info/m);
    assert.equal((text.match(/^args:/gm) ?? []).length, 1, 'one logger process per handler');
  } finally {
    await sys.close();
  }
});

test('status and log leaves (vmmd_tls_inetd, the code path of vmmd_tls): a vmmd without the status query and a missing vmmd_log are failures that say so', async () => {
  const { encodeLeafExtension } = await import('../src/core/wire/leaf.js');
  const { STATUS_UNKNOWN } = await import('../src/inetd/proxy.js');
  // the daemon peer is a vmmd without the status query: it closes on a message that is not Wire
  const status = await issue(org, { cn: 'hello', extValue: encodeLeafExtension({ kind: 'status', value: { kind: 'status', value: null } }) });
  let r = await run([status, org]);
  assert.equal(refusal(r.messages), STATUS_UNKNOWN);
  assert.equal(nameToString(r.messages[0].header.name), 'org:hello');
  assert.match(r.log, /login .*: org:hello status/);
  assert.deepEqual(r.sent, [], 'no policy is installed for a status query, and the peer read no Wire command');
  // no vmmd_log in this run directory
  const log = await issue(org, { cn: '.', extValue: encodeLeafExtension({ kind: 'log', value: { kind: 'subscribe', value: { kind: 'count', value: 5 } } }) });
  r = await run([log, org]);
  assert.match(refusal(r.messages), /^the event log is not available: vmmd_log is not running \(no socket at .*log\.sock/);
  assert.match(r.log, /logout .*: org: log subscribe \(1 policy\): failure "the event log is not available: vmmd_log is not running/);
});
