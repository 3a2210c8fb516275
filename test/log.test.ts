import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { unwrap } from '../src/core/result.js';
import { limits } from '../src/core/limits.js';
import { parseName, nameToString } from '../src/core/name.js';
import { type LogEntry, type LogEvent, encodeLogRecord } from '../src/core/wire/log.js';
import { frame } from '../src/core/frame.js';
import { History, recoverLog, selectHistory, subscriptionMatches, type SequencedEntry } from '../src/log/store.js';
import { LogSender, subscribeLog } from '../src/log/client.js';
import { CLI_DIR, startDaemon, tempDir, waitFor } from './console-helpers.js';

const nm = (s: string) => unwrap(parseName(s));
const start = (name: string, pid: number): LogEvent => ({
  kind: 'unikernel_start',
  value: { name: nm(name), digest: new Uint8Array(32), pid, taps: [{ bridge: 'service', tap: 'tap0' }], blocks: [] },
});
const stop = (name: string, pid: number, code: number): LogEvent => ({
  kind: 'unikernel_stop',
  value: { name: nm(name), pid, status: { kind: 'exit', value: code } },
});
const action = (name: string, a: Extract<LogEvent, { kind: 'action' }>['value']['action']): LogEvent => ({ kind: 'action', value: { name: nm(name), action: a } });

test('subscriptions: a path sees the names inside it, a name what is at or below its trie key; root alone sees startup; history by count and since', () => {
  assert.ok(subscriptionMatches(nm('dept:'), start('dept:web', 1)));
  assert.ok(subscriptionMatches(nm(':dept'), start('dept:web', 1)), ':dept has the trie key of dept:');
  assert.ok(!subscriptionMatches(nm('dept:'), start('other:web', 1)));
  // a path covers the names whose path is in it: not the unikernel :dept of the same trie key
  assert.ok(!subscriptionMatches(nm('dept:'), start(':dept', 1)), ':dept is not inside dept:');
  assert.ok(!subscriptionMatches(nm('dept:sub:'), start('dept:sub', 1)), 'dept:sub is not inside dept:sub:');
  assert.ok(subscriptionMatches(nm('dept:'), action('dept:', { kind: 'policy_add', value: null })));
  assert.ok(subscriptionMatches(nm(':dept'), start(':dept', 1)), 'a name covers itself');
  assert.ok(subscriptionMatches(nm(':'), { kind: 'startup', value: null }));
  assert.ok(!subscriptionMatches(nm('dept:'), { kind: 'startup', value: null }));
  const entries: SequencedEntry[] = [0, 1, 2, 3, 4].map((i) => ({ seq: BigInt(i), entry: { timestamp: i * 1000, event: start(i % 2 ? 'a:x' : 'b:x', i) } }));
  assert.deepEqual(selectHistory(entries, nm('a:'), { kind: 'count', value: 1 }).map((x) => x.seq), [3n]);
  assert.deepEqual(selectHistory(entries, nm(':'), { kind: 'count', value: -1 }).length, 5);
  assert.deepEqual(selectHistory(entries, nm(':'), { kind: 'count', value: 1e15 }).length, 5);
  assert.deepEqual(selectHistory(entries, nm('b:'), { kind: 'since', value: 2500 }).map((x) => x.seq), [2n, 4n], 'compared at whole seconds (the precision on disk)');
  assert.deepEqual(selectHistory(entries, nm('b:'), { kind: 'since', value: 3000 }).map((x) => x.seq), [4n]);
});

test('History keeps the last entries only (limits.logHistoryEntries)', () => {
  const h = new History(3, 1e9);
  for (let i = 0; i < 100; i++) h.push({ seq: BigInt(i), entry: { timestamp: i, event: { kind: 'startup', value: null } } }, 10);
  assert.deepEqual(h.all().map((x) => x.seq), [97n, 98n, 99n]);
  assert.equal(h.bytes, 30);
});

test('History holds at most maxBytes of records (limits.logHistoryBytes), always the newest entry', () => {
  const h = new History(1000, 100);
  const e = (i: number): SequencedEntry => ({ seq: BigInt(i), entry: { timestamp: i, event: { kind: 'startup', value: null } } });
  for (let i = 0; i < 10; i++) h.push(e(i), 30);
  assert.deepEqual(h.all().map((x) => x.seq), [7n, 8n, 9n], 'three records of 30 octets fit in 100, four do not');
  assert.equal(h.bytes, 90);
  h.push(e(10), 500);
  assert.deepEqual(h.all().map((x) => x.seq), [10n], 'an entry larger than the whole budget is kept alone');
  h.push(e(11), 1);
  assert.deepEqual(h.all().map((x) => x.seq), [11n]);
  assert.equal(h.bytes, 1);
});

test('vmmd_log: the history in memory is bounded by octets (limits.logHistoryBytes): exec events with 1 MB command lines', async () => {
  const dir = tempDir('alb-log-');
  const logfile = join(dir, 'log', 'albatross');
  fs.mkdirSync(join(dir, 'log'));
  const sock = join(dir, 'util', 'log.sock');
  const d = await startDaemon('vmmd_log', ['--tmpdir', dir, '--logfile', logfile], sock);
  try {
    const sender = new LogSender(dir);
    const big = 'x'.repeat(1_000_000);
    const exec = action('t:web', { kind: 'exec', value: { pid: 1, argv: ['solo5-hvt', big], taps: [] } });
    const record = encodeLogRecord({ timestamp: Date.now(), event: exec }).length;
    const fit = Math.floor(limits.logHistoryBytes / record);
    assert.ok(fit >= 4 && fit < 40, `${fit} records of ${record} octets fit`);
    for (let i = 0; i < fit + 4; i++) assert.deepEqual(await sender.send(exec), { ok: true, value: undefined });
    const got: { seq: bigint; entry: LogEntry }[] = [];
    const s = unwrap(await subscribeLog(dir, nm(':'), { kind: 'count', value: -1 }, (entry, seq) => got.push({ seq, entry })));
    assert.ok((await sender.send(start('t:marker', 2))).ok);
    await waitFor('the live marker', () => got.some((x) => x.entry.event.kind === 'unikernel_start'));
    s.close();
    sender.close();
    const history = got.filter((x) => x.entry.event.kind !== 'unikernel_start');
    assert.equal(history.length, fit, `the history holds ${fit} records, not all ${fit + 5} events (startup and ${fit + 4} execs)`);
    assert.equal(history[history.length - 1].seq, BigInt(fit + 4), 'the newest are kept');
    assert.ok(history.every((x) => x.entry.event.kind === 'action'));
  } finally {
    await d.stop();
  }
});

test('recoverLog: a torn last record is reported with the valid length', () => {
  const e: LogEntry = { timestamp: 1_700_000_000_000, event: stop(':x', 5, 0) };
  const one = encodeLogRecord(e);
  const bytes = Buffer.concat([one, one, one.subarray(0, one.length - 3)]);
  const r = recoverLog(bytes);
  assert.equal(r.entries.length, 2);
  assert.equal(r.validLength, one.length * 2);
  assert.equal(r.torn, one.length - 3);
});

async function collect(tmpdir: string, name: string, count: number, want: number): Promise<{ seq: bigint; entry: LogEntry }[]> {
  const got: { seq: bigint; entry: LogEntry }[] = [];
  const s = unwrap(await subscribeLog(tmpdir, nm(name), { kind: 'count', value: count }, (entry, seq) => got.push({ seq, entry })));
  await waitFor(`${want} events`, () => got.length >= want);
  s.close();
  return got;
}

test('vmmd_log: events acknowledged after they are on disk, sequence numbers, prefix subscriptions, live events', async () => {
  const dir = tempDir('alb-log-');
  const logfile = join(dir, 'log', 'albatross');
  fs.mkdirSync(join(dir, 'log')); // the log file's directory must exist
  const sock = join(dir, 'util', 'log.sock');
  const d = await startDaemon('vmmd_log', ['--tmpdir', dir, '--logfile', logfile], sock);
  try {
    const sender = new LogSender(dir);
    const events = [
      action('dept:web', { kind: 'create', value: null }),
      action('dept:web', { kind: 'exec', value: { pid: 42, argv: ['solo5-hvt', '--mem=32', 'web.hvt'], taps: [{ bridge: 'service', tap: 'tap0' }] } }),
      start('dept:web', 42),
      action('other:db', { kind: 'login', value: '[2001:db8::1]:4711' }),
      stop('dept:web', 42, 1),
      action('dept:', { kind: 'policy_add', value: null }),
    ];
    const sizes: number[] = [];
    for (const e of events) {
      assert.deepEqual(await sender.send(e), { ok: true, value: undefined });
      sizes.push(fs.statSync(logfile).size);
    }
    assert.ok(sizes.every((s, i) => i === 0 || s > sizes[i - 1]), 'each acknowledged event is already in the file');
    const all = await collect(dir, ':', -1, 7);
    assert.equal(all[0].entry.event.kind, 'startup');
    assert.deepEqual(all.map((x) => x.seq), [0n, 1n, 2n, 3n, 4n, 5n, 6n]);
    const dept = await collect(dir, 'dept:', 100, 5);
    assert.deepEqual(dept.map((x) => x.entry.event.kind), ['action', 'action', 'unikernel_start', 'unikernel_stop', 'action']);
    assert.ok(dept.every((x) => x.entry.event.kind !== 'action' || nameToString(x.entry.event.value.name).startsWith('dept:')));
    // live: a subscriber to one unikernel sees only its later events
    const live: LogEntry[] = [];
    const s = unwrap(await subscribeLog(dir, nm('dept:web'), { kind: 'count', value: 0 }, (e) => live.push(e)));
    await sender.send(start('other:db', 7));
    await sender.send(action('dept:web', { kind: 'destroy', value: null }));
    await waitFor('live event', () => live.length === 1);
    assert.equal(live[0].event.kind, 'action');
    s.close();
    // malformed input closes only that connection
    const raw = net.createConnection({ path: sock });
    raw.write(frame(new Uint8Array([1, 2, 3])));
    await new Promise((r) => raw.once('close', r));
    assert.ok((await sender.send(stop('dept:web', 43, 0))).ok);
    sender.close();
    // SIGHUP after an external rotation: a new file is begun with a hup record
    fs.renameSync(logfile, `${logfile}.rotated`);
    d.proc.kill('SIGHUP');
    await waitFor('hup', () => fs.existsSync(logfile) && fs.statSync(logfile).size > 0);
    const sender3 = new LogSender(dir);
    assert.ok((await sender3.send(stop('dept:web', 44, 0))).ok);
    sender3.close();
    const afterHup = execFileSync(process.execPath, [join(CLI_DIR, 'vmmd_log.js'), '--read-only', '--logfile', logfile]).toString().trim().split('\n');
    assert.equal(afterHup.length, 2);
    assert.match(afterHup[0], /^10 \S+ log file reopened \(hup\)$/, 'numbering goes on in the new file');
    assert.match(afterHup[1], /^11 \S+ dept:web stopped pid 44/);
    fs.renameSync(`${logfile}.rotated`, logfile);
    fs.rmSync(`${logfile}.seq`);
    const printed = execFileSync(process.execPath, [join(CLI_DIR, 'vmmd_log.js'), '--read-only', '--logfile', logfile]).toString();
    assert.match(printed, /^0 \S+Z log daemon started$/m);
    assert.match(printed, /^2 \S+ dept:web exec pid 42 argv \["solo5-hvt","--mem=32","web.hvt"\] service=tap0$/m);
    assert.match(printed, /other:db login from \[2001:db8::1\]:4711/);
    assert.match(printed, /dept:web stopped pid 42 exit code 1/);
  } finally {
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('vmmd_log survives kill -9 with a torn last record, and rotation keeps numbering across restarts', async () => {
  const dir = tempDir('alb-log-');
  const logfile = join(dir, 'albatross');
  const sock = join(dir, 'util', 'log.sock');
  let d = await startDaemon('vmmd_log', ['--tmpdir', dir, '--logfile', logfile, '--max-size', '2048'], sock);
  try {
    const sender = new LogSender(dir);
    for (let i = 0; i < 40; i++) assert.ok((await sender.send(start(`t:u${i}`, 100 + i))).ok);
    sender.close();
    assert.ok(fs.existsSync(`${logfile}.1`), 'rotated');
    assert.ok(fs.statSync(logfile).size <= 2048);
    d.proc.kill('SIGKILL');
    await d.exited;
    // an append interrupted half-way
    const rec = encodeLogRecord({ timestamp: Date.now(), event: start('t:torn', 1) });
    fs.appendFileSync(logfile, rec.subarray(0, 10));
    const sizeWithTorn = fs.statSync(logfile).size;
    d = await startDaemon('vmmd_log', ['--tmpdir', dir, '--logfile', logfile, '--max-size', '2048'], sock);
    assert.match(d.stderr(), /cutting off 10 bytes of an incomplete last record/);
    assert.ok(fs.statSync(logfile).size < sizeWithTorn + 100);
    const sender2 = new LogSender(dir);
    assert.ok((await sender2.send(start('t:after', 1))).ok);
    sender2.close();
    const got = await collect(dir, 't:', 3, 3);
    // u39, then the restart's startup is not under t:, then the new one
    assert.deepEqual(got.map((x) => (x.entry.event as { value: { name: { label?: string } } }).value.name.label), ['u38', 'u39', 'after']);
    const seqs = got.map((x) => x.seq);
    assert.equal(seqs[1], 40n, 'startup is 0, u0..u39 are 1..40');
    assert.equal(seqs[2], 42n, 'the second startup is 41');
    const printed = execFileSync(process.execPath, [join(CLI_DIR, 'vmmd_log.js'), '--read-only', '--logfile', logfile]).toString().trim().split('\n');
    assert.match(printed[printed.length - 1], /^42 .* t:after started pid 1/);
  } finally {
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('vmmd_log: a subscription to the path dept: does not get the events of the unikernel :dept (same trie key, root path)', async () => {
  const dir = tempDir('alb-log-');
  const sock = join(dir, 'util', 'log.sock');
  const d = await startDaemon('vmmd_log', ['--tmpdir', dir, '--logfile', join(dir, 'albatross')], sock);
  try {
    const sender = new LogSender(dir);
    for (const e of [start(':dept', 1), start('dept:web', 2), action('dept:', { kind: 'policy_add', value: null }), start('dept:sub:x', 3), stop(':dept', 1, 0)]) {
      assert.ok((await sender.send(e)).ok);
    }
    /** History then live: the names of the subscription's events up to the live marker (a destroy of `marker`). */
    const seen = async (sub: string, marker: string): Promise<string[]> => {
      const got: LogEntry[] = [];
      const s = unwrap(await subscribeLog(dir, nm(sub), { kind: 'count', value: -1 }, (e) => got.push(e)));
      assert.ok((await sender.send(action(marker, { kind: 'destroy', value: null }))).ok);
      const named = () => got.map((e) => nameToString((e.event as { value: { name: Parameters<typeof nameToString>[0] } }).value.name));
      await waitFor('the live marker', () => named().includes(marker));
      s.close();
      return named().filter((n) => !/:end\d$/.test(n));
    };
    assert.deepEqual(await seen('dept:', 'dept:end1'), ['dept:web', 'dept:', 'dept:sub:x']);
    assert.deepEqual(await seen('dept:sub:', 'dept:sub:end2'), ['dept:sub:x']);
    // a name: itself and, as upstream's trie, what is below its key
    assert.deepEqual(await seen(':dept', 'dept:end3'), [':dept', 'dept:web', 'dept:', 'dept:sub:x', ':dept']);
    sender.close();
  } finally {
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
