/**
 * The supervisor's pure transitions (src/state/vmmd.ts) without any IO: commands, the create
 * pipeline's outcome, process exits and restart decisions with back-off, waiting commands,
 * policies, block devices, persistence and shutdown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type Name, parseName, nameToString } from '../src/core/name.js';
import { command, decodeWire, encodeWire, type Command } from '../src/core/wire/wire.js';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Policy, UnikernelConfig } from '../src/core/wire/common.js';
import { MAX_UNIKERNELS } from '../src/core/policy.js';
import {
  type Effect, type Event, type VmmdState, backoffDelay, handle, initialState, restore, stateDump, getImage, consoleFailed,
} from '../src/state/vmmd.js';
import { solo5Image } from './helpers/image.js';
import { cfg, emptyState, uk } from './helpers/vmmd-state.js';

const nm = (s: string): Name => {
  const r = parseName(s);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};
const root: Policy = { unikernels: MAX_UNIKERNELS, cpuids: [0, 1], memory: 4096, block: 1000, bridges: ['br0'] };
const fresh = (baseMs = 1000): VmmdState => emptyState(root, { baseMs, maxMs: 8000, stableMs: 10_000 });
const cmd = (conn: number, name: string, c: Command): Event => ({ kind: 'command', conn, wire: command(nm(name), c) });

/** Effects in a short readable form. */
function show(effects: Effect[]): string[] {
  return effects.map((e) => {
    switch (e.kind) {
      case 'reply': {
        const p = e.wire.payload;
        const what = p.kind === 'failure' ? `fail ${p.value}` : p.kind === 'reply' && p.value.kind === 'string' ? `ok ${p.value.value}` : p.kind === 'reply' ? p.value.kind : p.kind;
        return `reply ${e.conn} ${what}${e.then === 'continue' ? ' (open)' : ''}`;
      }
      case 'create':
        return `create ${nameToString(e.name)} ${e.origin.kind}${e.origin.kind === 'restart' ? `/${e.origin.reason}` : ''} failures=${e.failures}`;
      case 'kill':
        return `kill ${e.pid}`;
      case 'cleanup':
        return `cleanup ${nameToString(e.name)}`;
      case 'save_state':
        return `save [${e.dump.unikernels.map((u) => nameToString(u.name)).join(',')}]`;
      case 'stats_add':
      case 'stats_remove':
        return `${e.kind} ${nameToString(e.name)}`;
      case 'timer':
        return `timer ${nameToString(e.name)} ${e.delayMs}`;
      case 'log':
        return e.event.kind === 'action' ? `log ${e.event.value.action.kind}` : `log ${e.event.kind}`;
      case 'warn':
        return 'warn';
      default:
        return e.kind;
    }
  });
}

/** Runs events in order, returning the final state and every effect in readable form. */
function run(s: VmmdState, events: Event[]): { state: VmmdState; out: string[][] } {
  const out: string[][] = [];
  for (const e of events) {
    const step = handle(s, e);
    s = step.state;
    out.push(show(step.effects));
  }
  return { state: s, out };
}

const started = (name: string, config: UnikernelConfig, pid: number, origin: Extract<Event, { kind: 'started' }>['origin'], failures = 0, at = 1000): Event => ({
  kind: 'started', origin, name: nm(name), config, failures,
  result: { ok: true, pid, taps: [], argv: ['x'], started: at, digest: new Uint8Array(32) },
});
const hdr = (name: string) => command(nm(name), uk({ kind: 'info', value: null })).header;
const exit = (name: string, pid: number, code: number, now = 2000): Event => ({ kind: 'exit', name: nm(name), pid, exit: { kind: 'exit', code }, now });

test('create: admission, then the pipeline, then registration with state file, stats, log and answer', () => {
  const c = cfg();
  const { state, out } = run(fresh(), [
    cmd(1, 'a', uk({ kind: 'create', value: c })),
    started('a', c, 100, { kind: 'command', conn: 1, header: hdr('a') }),
    cmd(2, 'a', uk({ kind: 'create', value: c })),
    cmd(3, 'b', uk({ kind: 'create', value: cfg({ memory: 5000 }) })),
    cmd(4, 'b', uk({ kind: 'create', value: cfg({ cpuids: [] }) })),
  ]);
  assert.deepEqual(out, [
    ['create :a command failures=0'],
    ['save [:a]', 'stats_add :a', 'log create', 'log unikernel_start', 'reply 1 ok created unikernel'],
    ['reply 2 fail Unikernel with same name is already running'],
    ['reply 3 fail maximum allowed memory (4096, used 32) would be exceeded (requesting 5000)'],
    ['reply 4 fail CPUids may not be empty'],
  ]);
  assert.deepEqual(stateDump(state).unikernels.map((u) => nameToString(u.name)), [':a']);
});

test('a failed pipeline answers the error to the client; for a restart it is logged and the unikernel dropped from the state', () => {
  const c = cfg();
  const failed = (origin: Extract<Event, { kind: 'started' }>['origin']): Event => ({ kind: 'started', origin, name: nm('a'), config: c, failures: 0, result: { ok: false, error: consoleFailed() } });
  const { out } = run(fresh(), [failed({ kind: 'command', conn: 1, header: hdr('a') }), failed({ kind: 'restart', reason: 'fail-behaviour' })]);
  assert.deepEqual(out, [['reply 1 fail could not create unikernel: console failed'], ['warn', 'save []']]);
  assert.equal(consoleFailed('oops'), 'could not create unikernel: console failed, and also oops while cleaning resources');
});

test('exit without an exit handler: resources released, state rewritten without it', () => {
  const c = cfg();
  const { state, out } = run(fresh(), [started('a', c, 100, { kind: 'startup' }), exit('a', 100, 0), exit('a', 100, 0)]);
  assert.deepEqual(out[1], ['cleanup :a', 'stats_remove :a', 'log unikernel_stop', 'save []']);
  assert.deepEqual(out[2], ['warn'], 'an unknown exit is only logged');
  assert.ok(state.resources.unikernels.isEmpty);
});

test('restart on failure: first quick failure restarts at once, then back-off doubles up to the maximum; destroy cancels', () => {
  const c = cfg({ failBehaviour: { kind: 'restart', value: [3] } });
  const { state, out } = run(fresh(1000), [
    started('a', c, 100, { kind: 'startup' }, 0, 1000),
    exit('a', 100, 3, 2000),
    started('a', c, 101, { kind: 'restart', reason: 'fail-behaviour' }, 1, 2000),
    exit('a', 101, 3, 2100),
  ]);
  assert.deepEqual(out[1], ['cleanup :a', 'stats_remove :a', 'log unikernel_stop', 'create :a restart/fail-behaviour failures=1']);
  assert.deepEqual(out[2], ['stats_add :a', 'log exec', 'log unikernel_start'], 'a restart-on-failure restart does not rewrite the state file');
  assert.deepEqual(out[3], ['cleanup :a', 'stats_remove :a', 'log unikernel_stop', 'warn', 'timer :a 1000']);
  assert.deepEqual(stateDump(state).unikernels.map((u) => nameToString(u.name)), [':a'], 'still persisted while waiting');
  const info = run(state, [cmd(5, 'a', uk({ kind: 'info', value: null }))]);
  assert.deepEqual(info.out, [['reply 5 unikernel_info']]);
  const due = run(state, [{ kind: 'restart_due', name: nm('a') }]);
  assert.deepEqual(due.out, [['create :a restart/fail-behaviour failures=2']]);
  const cancelled = run(state, [cmd(6, 'a', uk({ kind: 'destroy', value: null })), { kind: 'restart_due', name: nm('a') }, cmd(7, 'a', uk({ kind: 'destroy', value: null }))]);
  assert.deepEqual(cancelled.out, [['save []', 'log destroy', 'reply 6 ok destroyed: removed from restarting'], [], ['reply 7 fail destroy: not found']]);
  const refused = run(state, [cmd(8, 'a', uk({ kind: 'create', value: c }))]);
  assert.match(refused.out[0][0], /^reply 8 fail Unikernel with same name is restarting/);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 10].map((n) => backoffDelay({ baseMs: 1000, maxMs: 8000, stableMs: 0 }, n)), [0, 1000, 2000, 4000, 8000, 8000, 8000]);
  assert.equal(backoffDelay({ baseMs: 0, maxMs: 8000, stableMs: 0 }, 9), 0, '0 restarts at once every time (upstream)');
});

test('restart on failure: a unikernel that ran long enough starts a fresh series; signals and exit 1 never restart', () => {
  const c = cfg({ failBehaviour: { kind: 'restart', value: [] } });
  const long = run(fresh(), [started('a', c, 100, { kind: 'startup' }, 5, 0), exit('a', 100, 2, 60_000)]);
  assert.deepEqual(long.out[1].at(-1), 'create :a restart/fail-behaviour failures=1');
  for (const e of [{ kind: 'signal' as const, signal: 9 }, { kind: 'exit' as const, code: 1 }, { kind: 'exit' as const, code: 63 }]) {
    const r = run(fresh(), [started('a', c, 100, { kind: 'startup' }), { kind: 'exit', name: nm('a'), pid: 100, exit: e, now: 5 }]);
    assert.equal(r.out[1].at(-1), 'save []');
  }
});

test('add-name: exit 64 starts it again without --name and rewrites the state', () => {
  const c = cfg({ addName: true });
  const r = handle(run(fresh(), [started('a', c, 100, { kind: 'startup' })]).state, exit('a', 100, 64));
  const create = r.effects.find((e) => e.kind === 'create');
  assert.ok(create !== undefined && create.kind === 'create');
  assert.equal(create.config.addName, false);
  assert.deepEqual(create.origin, { kind: 'restart', reason: 'add-name' });
  const after = handle(r.state, started('a', create.config, 101, create.origin));
  assert.deepEqual(show(after.effects)[0], 'save [:a]');
});

test('destroy, force-create and restart wait for the exit; one SIGTERM, every waiter answered', () => {
  const c = cfg();
  const base = run(fresh(), [started('a', c, 100, { kind: 'startup' })]).state;
  const d = run(base, [cmd(1, 'a', uk({ kind: 'destroy', value: null })), cmd(2, 'a', uk({ kind: 'destroy', value: null })), exit('a', 100, 0)]);
  assert.deepEqual(d.out, [['kill 100'], [], ['cleanup :a', 'stats_remove :a', 'log unikernel_stop', 'log destroy', 'reply 1 ok destroyed unikernel', 'save []', 'reply 2 ok destroyed unikernel']]);
  const c2 = cfg({ memory: 64 });
  const f = run(base, [cmd(3, 'a', uk({ kind: 'force_create', value: c2 })), exit('a', 100, 0)]);
  assert.deepEqual(f.out, [['kill 100'], ['cleanup :a', 'stats_remove :a', 'log unikernel_stop', 'create :a command failures=0']]);
  const tooBig = run(base, [cmd(4, 'a', uk({ kind: 'force_create', value: cfg({ memory: 5000 }) }))]);
  assert.deepEqual(tooBig.out, [['reply 4 fail maximum allowed memory (4096, used 0) would be exceeded (requesting 5000)']], 'the running one is discounted');
  const rs = run(base, [cmd(5, 'a', uk({ kind: 'restart', value: { kind: 'no_arguments', value: null } })), exit('a', 100, 0)]);
  assert.deepEqual(rs.out[1].at(-1), 'create :a command failures=0');
  const none = run(base, [cmd(6, 'b', uk({ kind: 'restart', value: { kind: 'no_arguments', value: null } }))]);
  assert.deepEqual(none.out, [['reply 6 fail destroy: not found']]);
  const fresh2 = run(fresh(), [cmd(7, 'z', uk({ kind: 'force_create', value: c }))]);
  assert.deepEqual(fresh2.out, [['create :z command failures=0']], 'force-create of a stopped unikernel is a create');
});

test('policies: add keeps the connection open, unchanged, refusal, info relative, remove', () => {
  const p: Policy = { unikernels: 2n, cpuids: [0], memory: 100, bridges: [] };
  const pc = (kind: 'add' | 'remove' | 'info', v?: Policy): Command => ({ kind: 'policy', value: kind === 'add' ? { kind, value: v as Policy } : { kind, value: null } }) as Command;
  const { out } = run(fresh(), [
    cmd(1, 'org:', pc('add', p)),
    cmd(2, 'org:', pc('add', p)),
    cmd(3, 'org:team:', pc('add', { ...p, memory: 200 })),
    cmd(4, 'org:', pc('info')),
    cmd(5, 'org:', pc('remove')),
    cmd(6, 'org:', pc('remove')),
  ]);
  assert.deepEqual(out, [
    ['save []', 'log policy_add', 'reply 1 ok added policy (open)'],
    ['reply 2 ok no modification of policy (open)'],
    ['reply 3 fail policy above allows 100 MB memory, which is fewer than 200 MB'],
    ['reply 4 policies'],
    ['save []', 'log policy_remove', 'reply 5 ok removed policy'],
    ['reply 6 fail unknown policy'],
  ]);
});

test('block devices: add after the file is created, transfers mark the device in use', () => {
  const bc = (v: Extract<Command, { kind: 'block' }>['value']): Command => ({ kind: 'block', value: v });
  const h = hdr('st:data');
  let r = run(fresh(), [
    cmd(1, 'st:data', bc({ kind: 'add', value: 4 })),
    { kind: 'block_added', conn: 1, header: h, size: 4 },
    cmd(2, 'st:data', bc({ kind: 'add', value: 4 })),
    cmd(3, 'st:data', bc({ kind: 'set', value: false })),
    cmd(4, 'st:data', bc({ kind: 'dump', value: 0 })),
  ]);
  assert.deepEqual(r.out, [['block_create'], ['log block_add', 'reply 1 ok added block device'], ['reply 2 fail block device with same name already exists'], ['block_upload'], ['reply 4 fail dump block: is in use']]);
  r = run(r.state, [{ kind: 'block_transferred', conn: 3, header: h, op: 'set' }, cmd(5, 'st:data', bc({ kind: 'remove', value: null })), { kind: 'block_removed', conn: 5, header: h }, cmd(6, 'st:data', bc({ kind: 'remove', value: null }))]);
  assert.deepEqual(r.out, [['log block_remove', 'log block_add', 'reply 3 ok set block device'], ['block_delete'], ['log block_remove', 'reply 5 ok removed block'], ['reply 6 fail remove block: not found']]);
  const failedFile = run(fresh(), [{ kind: 'block_added', conn: 1, header: h, size: 4, error: 'file already exists' }]);
  assert.deepEqual(failedFile.out, [['reply 1 fail file already exists']]);
});

test('shutdown: every unikernel is sent SIGTERM, exits do not rewrite the state, then the daemon exits', () => {
  const c = cfg({ failBehaviour: { kind: 'restart', value: [] } });
  const base = run(fresh(), [started('a', c, 100, { kind: 'startup' }), started('b', c, 101, { kind: 'startup' })]).state;
  const { out } = run(base, [{ kind: 'shutdown' }, cmd(9, 'x', uk({ kind: 'info', value: null })), exit('a', 100, 0), exit('b', 101, 0)]);
  assert.deepEqual(out, [
    ['kill 100', 'kill 101'],
    ['reply 9 fail vmmd is shutting down'],
    ['cleanup :a', 'stats_remove :a', 'log unikernel_stop'],
    ['cleanup :b', 'stats_remove :b', 'log unikernel_stop', 'exit_daemon'],
  ]);
  assert.deepEqual(run(fresh(), [{ kind: 'shutdown' }]).out, [['exit_daemon']]);
});

test('restore: the host root policy wins, stored policies are checked, unikernels start by priority', () => {
  const s0 = initialState({ tmpdir: '/t', dbdir: '/d', platform: 'linux', dropPath: true, restartArgs: 'all', backoff: { baseMs: 0, maxMs: 0, stableMs: 0 } });
  const u = (n: string, startup?: number) => ({ name: nm(n), config: cfg(startup === undefined ? {} : { startup }) });
  const r = restore(s0, { unikernels: [u('a', 60), u('b'), u('c', 10), u('d', 50)], policies: [{ name: { path: [] }, policy: { ...root, memory: 1 } }, { name: nm('org:'), policy: { unikernels: 1n, cpuids: [0], memory: 64, bridges: [] } }] }, root);
  assert.ok(r.ok);
  assert.deepEqual(r.value.creates.map((x) => nameToString(x.name)), [':c', ':b', ':d', ':a']);
  assert.equal(r.value.warnings.length, 1);
  assert.equal(stateDump(r.value.state).policies.length, 2);
});

test('restore: a state file that breaks the rules (older versions, upstream) is restored with warnings, never refused', () => {
  const s0 = initialState({ tmpdir: '/t', dbdir: '/d', platform: 'linux', dropPath: true, restartArgs: 'all', backoff: { baseMs: 0, maxMs: 0, stableMs: 0 } });
  const bad = restore(s0, { unikernels: [], policies: [{ name: nm('org:'), policy: { unikernels: 1n, cpuids: [0], memory: 64, bridges: [] } }, { name: nm('org:x:'), policy: { unikernels: 9n, cpuids: [0], memory: 64, bridges: [] } }] }, root);
  assert.ok(bad.ok);
  assert.deepEqual(bad.value.warnings, ['policy for org:x: from the state file does not fit (policy above allows 1 unikernels, which is fewer than 9); installed anyway']);
  assert.equal(stateDump(bad.value.state).policies.length, 3);
  // siblings that upstream admitted (each within its own policy) but that together exceed
  // their parent: all of them start again, with a warning naming the parent
  const dept: Policy = { unikernels: 2n, cpuids: [0], memory: 64, bridges: [] };
  const dump = {
    unikernels: ['dept:s1:a', 'dept:s1:b', 'dept:s2:a', 'dept:s2:b'].map((n) => ({ name: nm(n), config: cfg({ memory: 32 }) })),
    policies: ['dept:', 'dept:s1:', 'dept:s2:'].map((n) => ({ name: nm(n), policy: dept })),
  };
  const r = restore(s0, dump, root);
  assert.ok(r.ok);
  assert.deepEqual(r.value.warnings, []);
  let s = r.value.state;
  const warnings: string[] = [];
  r.value.creates.forEach((c, i) => {
    const step = handle(s, { kind: 'launch', name: c.name, config: c.config });
    for (const e of step.effects) if (e.kind === 'warn') warnings.push(e.message);
    assert.equal(step.effects.at(-1)?.kind, 'create', nameToString(c.name));
    s = handle(step.state, started(nameToString(c.name), c.config, 100 + i, { kind: 'startup' })).state;
  });
  assert.equal(s.resources.unikernels.size, 4);
  assert.deepEqual(warnings, [
    'dept:s2:a from the state file exceeds a policy above its own (create dept:s2:a: one more unikernel would exceed policy dept (2 unikernels, 2 running below it)); started anyway',
    'dept:s2:b from the state file exceeds a policy above its own (create dept:s2:b: one more unikernel would exceed policy dept (2 unikernels, 3 running below it)); started anyway',
  ]);
  // a new create below dept is refused until enough have stopped
  const c = handle(s, cmd(1, 'dept:s1:c', uk({ kind: 'create', value: cfg({ memory: 1 }) })));
  assert.deepEqual(show(c.effects), ['reply 1 fail maximum amount of unikernels (2) reached']);
  // upstream's own rule still applies at start-up: a unikernel beyond its own policy is not started
  const own = handle(s, { kind: 'launch', name: nm('dept:s1:c'), config: cfg({ memory: 1 }) });
  assert.deepEqual(show(own.effects), ['warn']);
});

test('info of a path lists only what is at or below that path, not the root unikernel or block device of the same label', () => {
  const bc = (v: Extract<Command, { kind: 'block' }>['value']): Command => ({ kind: 'block', value: v });
  const pa = (v: Policy): Command => ({ kind: 'policy', value: { kind: 'add', value: v } });
  let s = run(fresh(), [
    started(':dept', cfg({ arguments: ['secret'] }), 100, { kind: 'startup' }),
    started('dept:web', cfg(), 101, { kind: 'startup' }),
    started('dept:team:db', cfg(), 102, { kind: 'startup' }),
    { kind: 'block_added', conn: 1, header: hdr(':dept'), size: 4 },
    { kind: 'block_added', conn: 2, header: hdr('dept:disk'), size: 4 },
    cmd(3, 'dept:', pa({ unikernels: 5n, cpuids: [0], memory: 512, block: 100, bridges: [] })),
  ]).state;
  const replyOf = (name: string, c: Command) => {
    const e = handle(s, cmd(9, name, c)).effects[0];
    assert.ok(e.kind === 'reply' && e.wire.payload.kind === 'reply');
    return e.wire.payload.value;
  };
  const names = (v: ReturnType<typeof replyOf>): string[] => {
    assert.ok(v.kind === 'unikernel_info' || v.kind === 'unikernel_info_v5' || v.kind === 'block_devices' || v.kind === 'policies');
    return (v.value as Array<{ name: Name }>).map((x) => nameToString(x.name)).sort();
  };
  assert.deepEqual(names(replyOf('dept:', uk({ kind: 'info', value: null }))), [':web', 'team:db']);
  assert.deepEqual(names(replyOf('dept:', uk({ kind: 'info_v5', value: null }))), [':web', 'team:db']);
  assert.deepEqual(names(replyOf('dept:', bc({ kind: 'info', value: null }))), [':disk']);
  assert.deepEqual(names(replyOf('dept:', { kind: 'policy', value: { kind: 'info', value: null } })), [':']);
  // the root sees everything
  assert.deepEqual(names(replyOf(':', uk({ kind: 'info', value: null }))), [':dept', 'dept:team:db', 'dept:web']);
  assert.deepEqual(names(replyOf(':', bc({ kind: 'info', value: null }))), [':dept', 'dept:disk']);
  s = run(s, [exit(':dept', 100, 0)]).state;
  assert.deepEqual(names(replyOf('dept:', uk({ kind: 'info', value: null }))), [':web', 'team:db']);
});

test('older info forms carry one CPU id (the lowest), so a multi-CPU unikernel still encodes', () => {
  const c = cfg({ cpuids: [1, 0] });
  const s = run(fresh(), [started('a', c, 100, { kind: 'startup' })]).state;
  const step = handle(s, cmd(1, 'a', uk({ kind: 'info_v5', value: null })));
  const r = step.effects[0];
  assert.ok(r.kind === 'reply' && r.wire.payload.kind === 'reply' && r.wire.payload.value.kind === 'unikernel_info_v5');
  assert.deepEqual(r.wire.payload.value.value[0].info.cpuids, [0]);
  assert.doesNotThrow(() => encodeWire(r.wire));
  const v4 = handle(s, cmd(2, ':', uk({ kind: 'info_v4', value: null }))).effects[0];
  assert.ok(v4.kind === 'reply');
  assert.doesNotThrow(() => encodeWire(v4.wire));
});

test('get: the compression table of SEMANTICS.md §5.6', () => {
  const img = solo5Image();
  const plain = cfg({ image: img });
  assert.deepEqual(getImage(plain, 0), { ok: true, value: { compressed: false, image: img } });
  const g = getImage(plain, 3);
  assert.ok(g.ok && g.value.compressed);
  assert.deepEqual(getImage(plain, 12), { ok: false, error: 'invalid compression level 12 (0 to 9)' });
});

test('random event sequences never throw, and the running table matches the created minus the exited', () => {
  const names = ['a', 'b', 'o:c'];
  const ev = fc.oneof(
    fc.record({ k: fc.constant('create' as const), n: fc.constantFrom(...names), mem: fc.integer({ min: 1, max: 3000 }), restart: fc.boolean() }),
    fc.record({ k: fc.constant('destroy' as const), n: fc.constantFrom(...names) }),
    fc.record({ k: fc.constant('exit' as const), n: fc.constantFrom(...names), code: fc.integer({ min: 0, max: 70 }) }),
    fc.record({ k: fc.constant('due' as const), n: fc.constantFrom(...names) }),
  );
  fc.assert(
    fc.property(fc.array(ev, { maxLength: 40 }), (evs) => {
      let s = fresh(100);
      let pid = 1000;
      let t = 0;
      const pending: Effect[] = [];
      const apply = (e: Event): void => {
        const step = handle(s, e);
        s = step.state;
        pending.push(...step.effects);
      };
      for (const e of evs) {
        t += 10;
        if (e.k === 'create') apply(cmd(1, e.n, uk({ kind: 'create', value: cfg({ memory: e.mem, failBehaviour: e.restart ? { kind: 'restart', value: [] } : { kind: 'quit', value: null } }) })));
        else if (e.k === 'destroy') apply(cmd(2, e.n, uk({ kind: 'destroy', value: null })));
        else if (e.k === 'due') apply({ kind: 'restart_due', name: nm(e.n) });
        else {
          const r = s.resources.unikernels.find([...nm(e.n).path, nm(e.n).label as string]);
          if (r !== undefined) apply({ kind: 'exit', name: nm(e.n), pid: r.pid, exit: { kind: 'exit', code: e.code }, now: t });
        }
        // the shell runs every create pipeline to completion before the next event
        while (pending.length > 0) {
          const f = pending.shift() as Effect;
          if (f.kind === 'create') apply({ kind: 'started', origin: f.origin, name: f.name, config: f.config, failures: f.failures, result: { ok: true, pid: pid++, taps: [], argv: [], started: t, digest: new Uint8Array(32) } });
        }
      }
      // only the policy at a unikernel's own path is consulted (upstream): the root's covers :a and :b
      let memory = 0;
      for (const [k, r] of s.resources.unikernels.all()) if (k.length === 1) memory += r.config.memory;
      assert.ok(memory <= root.memory, 'never over-committed');
      for (const [k] of s.resources.unikernels.all()) assert.ok(!s.restarting.has(nameToString({ path: k.slice(0, -1), label: k[k.length - 1] })), 'running and restarting are exclusive');
    }),
    { numRuns: 300 },
  );
});

test('hostile commands: every decodable mutation of the recorded upstream requests is handled without a throw, and every answer encodes', () => {
  const dir = join(__dirname, '..', '..', 'test', 'fixtures', 'upstream-2.7.2', 'run1');
  const reqs = readdirSync(dir).filter((f) => /^vmmd\..*\.req\.der$/.test(f)).map((f) => new Uint8Array(readFileSync(join(dir, f))));
  let base = run(fresh(), [started('a', cfg(), 100, { kind: 'startup' })]).state;
  base = handle(base, { kind: 'block_added', conn: 0, header: hdr('storage'), size: 4 }).state;
  let handled = 0;
  fc.assert(
    fc.property(fc.nat(reqs.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 3 }), (i, flips) => {
      const m = new Uint8Array(reqs[i]);
      for (const [at, x] of flips) m[at % m.length] ^= x;
      const w = decodeWire(m);
      if (!w.ok) return;
      handled++;
      const step = handle(base, { kind: 'command', conn: 1, wire: w.value });
      for (const e of step.effects) if (e.kind === 'reply') encodeWire(e.wire);
    }),
    { numRuns: 400 },
  );
  assert.ok(handled > 50, `only ${handled} decodable inputs`);
});
