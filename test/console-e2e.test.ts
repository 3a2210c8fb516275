/**
 * End to end with the real vmmd and the fake tender: a unikernel's console read through
 * vmmd_console, its statistics through vmmd_stats, its start and stop in vmmd_log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { command, type Wire } from '../src/core/wire/wire.js';
import type { LogEntry } from '../src/core/wire/log.js';
import { subscribeLog } from '../src/log/client.js';
import { unwrap } from '../src/core/result.js';
import { nameToString } from '../src/core/name.js';
import { RealConsole, ask as vmmdAsk, config, create, destroy, livePids, makeRunDir, nm, startVmmd } from './helpers/vmmd.js';
import { ask, connect, next, payloadText, startDaemon, waitFor } from './console-helpers.js';

test('vmmd + fake tender: console lines, statistics and the start/stop events of a unikernel', async () => {
  const d = makeRunDir();
  const cons = new RealConsole(d.tmpdir);
  await cons.start();
  const log = await startDaemon('vmmd_log', ['--tmpdir', d.tmpdir, '--logfile', join(d.root, 'events')], join(d.tmpdir, 'util', 'log.sock'));
  const v = await startVmmd(d);
  const stats = await startDaemon('vmmd_stats', ['--tmpdir', d.tmpdir, '--interval-ms', '200'], join(d.tmpdir, 'util', 'stat.sock'));
  try {
    assert.equal(await vmmdAsk(v.sock, 'e2e:web', create(config(['--lines=3', '--sleep']))), 'ok: created unikernel');
    // console: the tender's lines, by subscription
    const c = await connect(join(d.tmpdir, 'util', 'console.sock'));
    const lines: string[] = [];
    await waitFor('console lines', async () => {
      const s = await connect(join(d.tmpdir, 'util', 'console.sock'));
      const r = await ask(s, command(nm('e2e:web'), { kind: 'console', value: { kind: 'subscribe', value: { kind: 'count', value: 100 } } }));
      lines.length = 0;
      if (payloadText(r) === 'string subscribed') {
        for (;;) {
          const m = await s.readMessage(300);
          if (m.kind !== 'message') break;
          const p = m.wire.payload;
          if (p.kind === 'data' && p.value.kind === 'console') lines.push(p.value.value.line);
        }
      }
      s.close();
      return lines.includes('line 2');
    }, 15_000);
    c.close();
    assert.ok(lines.indexOf('line 0') < lines.indexOf('line 2'));
    // statistics: vmmd told vmmd_stats about the tender; data named relative to the subscription
    const st = await connect(join(d.tmpdir, 'util', 'stat.sock'));
    assert.equal(payloadText(await ask(st, command(nm('e2e:'), { kind: 'stats', value: { kind: 'subscribe', value: null } }))), 'string subscribed');
    const w: Wire = await next(st, 15_000);
    assert.equal(nameToString(w.header.name), ':web');
    assert.ok(w.payload.kind === 'data' && w.payload.value.kind === 'statistics');
    assert.ok((w.payload.value.value.kinfoMem?.vsize ?? 0n) > 0n);
    st.close();
    // log: start, then stop after destroy
    assert.match(await vmmdAsk(v.sock, 'e2e:web', destroy), /^ok/);
    const events: LogEntry[] = [];
    const sub = unwrap(await subscribeLog(d.tmpdir, nm('e2e:'), { kind: 'count', value: -1 }, (e) => events.push(e)));
    await waitFor('start and stop logged', () => events.some((e) => e.event.kind === 'unikernel_stop'), 15_000);
    sub.close();
    const kinds = events.map((e) => e.event.kind);
    assert.ok(kinds.indexOf('unikernel_start') >= 0 && kinds.indexOf('unikernel_start') < kinds.indexOf('unikernel_stop'), kinds.join(','));
  } finally {
    await stats.stop();
    await v.stop();
    await log.stop();
    await cons.stop();
    assert.deepEqual(livePids(d), []);
    d.remove();
  }
});
