/**
 * The local handler without inetd: its confinement rules, and the handler process on a
 * Unix connection passed as standard input, against a daemon peer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { confinementError } from '../src/inetd/local-handler.js';
import { type Name, parsePath } from '../src/core/name.js';
import { unwrap } from '../src/core/result.js';
import { type Wire, command } from '../src/core/wire/wire.js';
import { FramedConn } from '../src/transport/conn.js';
import { cmd, policy } from './helpers/pki.js';
import { DaemonPeer, handlerBundle, readLog } from './helpers/tls-peer.js';
import { nm, readAll } from './helpers/vmmd.js';

const team = unwrap(parsePath('org:team'));

test('confinement: names at or below the path, policies only strictly below it, no daemon-internal commands', () => {
  const allowed: [string, ReturnType<typeof cmd.info>][] = [
    ['org:team:web', cmd.info()], ['org:team:', cmd.info()], ['org:team:sub:x', cmd.consoleSubscribe()],
    ['org:team:sub:', cmd.policyAdd(policy())], ['org:team:', cmd.policyInfo()], ['org:team:disk', cmd.blockAdd(10)],
  ];
  for (const [n, c] of allowed) assert.equal(confinementError(nm(n), c, team), undefined, n);
  const refused: [string, ReturnType<typeof cmd.info>, RegExp][] = [
    ['org:web', cmd.info(), /org:web is outside org:team:/],
    [':', cmd.info(), /is outside/],
    ['org:teamx:web', cmd.info(), /is outside/],
    ['org:team:', cmd.policyAdd(policy()), /policies can only be changed below org:team:/],
    ['org:team:', cmd.policyRemove(), /policies can only be changed below/],
    ['org:', cmd.policyAdd(policy()), /is outside/],
    // the unikernel `team` in path `org` shares the trie key of `org:team:` but is outside it
    ['org:team', cmd.info(), /org:team is outside org:team:/],
    ['org:team', cmd.destroy(), /is outside/],
    ['org:team', cmd.blockInfo(), /is outside/],
    // a policy command applies to the path of its name (vmmd ignores the label): this is org:team's own
    ['org:team:x', cmd.policyAdd(policy()), /policy add for org:team:x: policies can only be changed below org:team:/],
    ['org:team:web', cmd.consoleAdd(), /console add is not accepted from clients/],
    ['org:team:web', cmd.statsAdd(), /stats add is not accepted from clients/],
  ];
  for (const [n, c, re] of refused) assert.match(confinementError(nm(n), c, team) ?? '', re, n);
  // unconfined: everything a client may send
  assert.equal(confinementError({ path: [] } as Name, cmd.policyAdd(policy()), undefined), undefined);
  assert.match(confinementError(nm(':x'), cmd.consoleAdd(), undefined) ?? '', /not accepted/);
});

test('vmmd_tls_inetd --local on a Unix connection as standard input', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'albatross-local-'));
  const peer = new DaemonPeer(dir);
  await peer.start(['vmmd']);
  const logfile = join(dir, 'local.log');
  const sockPath = join(dir, 'local.sock');
  const server = net.createServer({ pauseOnConnect: true }, (sock) => {
    const child = spawn(process.execPath, [handlerBundle, '--local', '--path', 'org', '--tmpdir', dir, '--logfile', logfile], { stdio: [sock, sock, 'ignore'] });
    child.on('exit', () => server.emit('handled'));
    sock.destroy();
  });
  await new Promise<void>((r) => server.listen(sockPath, r));
  const ask = async (name: string, c: ReturnType<typeof cmd.info>): Promise<Wire[]> => {
    const s = net.connect(sockPath);
    await new Promise((r) => s.once('connect', r));
    const conn = new FramedConn(s);
    const handled = new Promise((r) => server.once('handled', r));
    await conn.writeMessage(command(nm(name), c));
    const out = await readAll(conn, 10_000);
    await handled;
    return out;
  };
  try {
    const ok = await ask('org:web', cmd.info());
    assert.equal(ok.length, 1);
    assert.equal(ok[0].payload.kind, 'reply');
    const out = await ask('other:web', cmd.info());
    assert.deepEqual(out.map((w) => w.payload), [{ kind: 'failure', value: 'other:web is outside org:' }]);
    assert.deepEqual(peer.received.map((x) => x.wire.header.name), [nm('org:web')]);
    assert.match(readLog(logfile), /local client: refused: other:web is outside org:/);
    // a client that sends nothing is cut off at the command deadline (default 30 s is too
    // long for a test; a broken frame ends the handler at once)
    const s = net.connect(sockPath);
    await new Promise((r) => s.once('connect', r));
    const handled = new Promise((r) => server.once('handled', r));
    s.end(Buffer.from([0, 0, 0, 5, 0x30]));
    await handled;
    assert.match(readLog(logfile), /local client: no command: connection closed in the middle of a frame/);
  } finally {
    server.close();
    await peer.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
