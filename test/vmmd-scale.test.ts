/**
 * What keeps vmmd fast with many unikernels, checked for correctness (the speed itself is
 * measured by bench/vmmd.ts): info replies assembled from the encodings remembered when each
 * unikernel started are byte for byte what a full encoding gives, and change with the
 * unikernel; the state file dump of a `save_state` effect is made only when it is read;
 * remembered encodings are used only for the values that were remembered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type Name, parseName, nameToString } from '../src/core/name.js';
import { encodeDer, int, remembering, seq, seqOf, utf8 } from '../src/core/asn.js';
import { command, decodeWire, encodeWire, type Wire } from '../src/core/wire/wire.js';
import type { Policy, UnikernelConfig } from '../src/core/wire/common.js';
import {
  type NamedInfo, type UnikernelInfo, namedInfoList, namedInfoListGeneric, rememberedUnikernelInfo, unikernelInfo,
} from '../src/core/wire/unikernel.js';
import { MAX_UNIKERNELS } from '../src/core/policy.js';
import { type Effect, type Event, type VmmdState, handle, stateDump } from '../src/state/vmmd.js';
import { type StateDump, encodeState } from '../src/core/wire/state.js';
import { StateEncoder } from '../src/state/persist.js';
import { cfg, emptyState, uk } from './helpers/vmmd-state.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const nm = (s: string): Name => {
  const r = parseName(s);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const root: Policy = { unikernels: MAX_UNIKERNELS, cpuids: [0, 1, 2, 3], memory: 1 << 20, block: 1000, bridges: ['br0', 'br1'] };

const fresh = (): VmmdState => emptyState(root, { baseMs: 0, maxMs: 0, stableMs: 0 });
const started = (name: string, config: UnikernelConfig, pid: number, at = 1_700_000_000_123): Event => ({
  kind: 'started', origin: { kind: 'startup' }, name: nm(name), config, failures: 0,
  result: { ok: true, pid, taps: config.bridges.map((_, i) => `tap${pid}-${i}`), argv: [], started: at, digest: new Uint8Array(32).fill(pid & 0xff) },
});

function apply(s: VmmdState, e: Event): { state: VmmdState; effects: Effect[] } {
  return handle(s, e);
}

/** The reply of an info command for `name`, as vmmd would send it. */
function infoReply(s: VmmdState, name: string, kind: 'info' | 'info_v5' | 'info_v4' = 'info'): Wire {
  const step = handle(s, { kind: 'command', conn: 1, wire: command(nm(name), uk({ kind, value: null })) });
  const eff = step.effects[0];
  assert.equal(eff.kind, 'reply');
  return (eff as Extract<Effect, { kind: 'reply' }>).wire;
}

/** The same reply with every info a fresh copy, so nothing remembered can be used. */
function copied(w: Wire): Wire {
  assert.ok(w.payload.kind === 'reply' && w.payload.value.kind === 'unikernel_info');
  const list: NamedInfo[] = w.payload.value.value.map((e) => ({ name: e.name, info: structuredClone(e.info) }));
  return { header: w.header, payload: { kind: 'reply', value: { kind: 'unikernel_info', value: list } } };
}

const infos = (w: Wire): Array<[string, UnikernelInfo]> => {
  const d = decodeWire(encodeWire(w));
  assert.ok(d.ok);
  const p = d.value.payload;
  assert.ok(p.kind === 'reply' && p.value.kind === 'unikernel_info');
  return p.value.value.map((e) => [nameToString(e.name), e.info]);
};

test('info replies built from remembered encodings equal a full encoding, for any path queried', () => {
  let s = fresh();
  s = apply(s, { kind: 'block_added', conn: 9, header: command(nm('org:disk'), uk({ kind: 'info', value: null })).header, size: 7 }).state;
  const configs: Array<[string, UnikernelConfig]> = [
    [':top', cfg()],
    ['org:web', cfg({ startup: 10, arguments: ['--ipv4=10.0.0.2/24', ''], cpuids: [3, 1], memory: 64 })],
    ['org:db', cfg({ blocks: [{ blockName: 'storage', blockDeviceName: 'disk', blockSectorSize: 4096 }], bridges: [{ netif: 'service', bridge: 'br0' }, { netif: 'br1' }] })],
    ['org:team:app', cfg({ failBehaviour: { kind: 'restart', value: [2, 1] }, linuxBootPartition: 'boot', cpus: 1 })],
    ['other:x', cfg({ arguments: [] })],
  ];
  configs.forEach(([n, c], i) => {
    s = apply(s, started(n, c, 100 + i)).state;
  });
  for (const q of [':', 'org:', 'org:team:', 'org:web', 'org:db', 'nothing:', 'org:nothing']) {
    const w = infoReply(s, q);
    assert.equal(hex(encodeWire(w)), hex(encodeWire(copied(w))), q);
  }
  const all = infos(infoReply(s, ':'));
  assert.deepEqual(all.map(([n]) => n).sort(), configs.map(([n]) => n).sort());
  const db = all.find(([n]) => n === 'org:db')?.[1];
  assert.deepEqual(db?.blocks, [{ unikernelDevice: 'storage', hostDevice: 'disk', sectorSize: 4096, blockSize: 7 }]);
  assert.deepEqual(db?.bridges.map((b) => b.hostDevice).sort(), ['br0', 'br1'], 'a SET OF, in DER order');
  assert.deepEqual(infos(infoReply(s, 'org:')).map(([n]) => n).sort(), [':db', ':web', 'team:app']);
  // the legacy forms still work from the same values
  for (const kind of ['info_v5', 'info_v4'] as const) {
    const w = infoReply(s, 'org:', kind);
    const d = decodeWire(encodeWire(w));
    assert.ok(d.ok && d.value.payload.kind === 'reply' && d.value.payload.value.kind === `unikernel_${kind}`);
  }
});

test('the info reported follows the unikernel: a force-create with new settings replaces the remembered encoding', () => {
  let s = fresh();
  s = apply(s, started('org:web', cfg({ memory: 32, arguments: ['--a'] }), 100, 1000)).state;
  const before = infos(infoReply(s, 'org:web'));
  assert.equal(before[0][1].memory, 32);
  // force-create parks the command and kills the process; the exit continues with the create
  const next = cfg({ memory: 48, arguments: ['--b'], cpuids: [2] });
  let step = apply(s, { kind: 'command', conn: 2, wire: command(nm('org:web'), uk({ kind: 'force_create', value: next })) });
  assert.deepEqual(step.effects.map((e) => e.kind), ['kill']);
  step = apply(step.state, { kind: 'exit', name: nm('org:web'), pid: 100, exit: { kind: 'signal', signal: 15 }, now: 5000 });
  assert.ok(step.effects.some((e) => e.kind === 'create'));
  assert.deepEqual(infoReply(step.state, 'org:web').payload, { kind: 'reply', value: { kind: 'unikernel_info', value: [] } }, 'nothing while it is down');
  s = apply(step.state, started('org:web', next, 101, 6000)).state;
  const w = infoReply(s, 'org:web');
  assert.equal(hex(encodeWire(w)), hex(encodeWire(copied(w))));
  const [[, info]] = infos(w);
  assert.equal(info.memory, 48);
  assert.deepEqual(info.arguments, ['--b']);
  assert.deepEqual(info.cpuids, [2]);
  assert.equal(info.started, 6000);
});

test('remembering: a remembered value encodes to the same octets as before; other values are encoded as they are', () => {
  const c = seq('T', { a: int, b: seqOf(utf8) });
  const r = remembering(c);
  fc.assert(fc.property(fc.record({ a: fc.maxSafeInteger(), b: fc.array(fc.string()) }), (v) => {
    const plain = hex(encodeDer(c, v));
    assert.equal(hex(encodeDer(r, v)), plain, 'not remembered');
    r.remember(v);
    assert.equal(hex(encodeDer(r, v)), plain, 'remembered');
    const other = { a: v.a, b: [...v.b, 'x'] };
    assert.equal(hex(encodeDer(r, other)), hex(encodeDer(c, other)), 'an equal-looking other object is not confused with it');
  }), { numRuns: Math.min(RUNS, 500) });
  // the codec of info replies: a value built by hand (a client's) is encoded in full
  const i: UnikernelInfo = {
    typ: 'solo5', failBehaviour: { kind: 'quit', value: null }, cpuids: [1], memory: 1, digest: new Uint8Array(32), blocks: [], bridges: [], started: 0, cpus: 1,
  };
  assert.equal(hex(encodeDer(rememberedUnikernelInfo, i)), hex(encodeDer(unikernelInfo, i)));
});

test('save_state: the dump is made when read, and is the state at the time of the change', () => {
  let s = fresh();
  const effects: Effect[] = [];
  for (let i = 0; i < 50; i++) {
    const step = apply(s, started(`p:u${i}`, cfg({ memory: 1 }), 1000 + i));
    s = step.state;
    effects.push(...step.effects.filter((e) => e.kind === 'save_state'));
  }
  assert.equal(effects.length, 50);
  // each dump holds the unikernels running right after its change, in trie pre-order
  effects.forEach((e, i) => {
    assert.ok(e.kind === 'save_state');
    assert.equal(e.dump.unikernels.length, i + 1);
    assert.equal(e.dump, e.dump, 'made once');
  });
  const last = effects[effects.length - 1];
  assert.ok(last.kind === 'save_state');
  assert.deepEqual(last.dump, stateDump(s));
});

test('the state encoder tells names apart by the octets it keeps, also for long names', () => {
  const enc = new StateEncoder();
  const c = cfg({ arguments: ['--x'] });
  const label = (ch: string): string => ch.repeat(63);
  // 1, 2 and 4 labels of 63 characters: name lengths below 128, below 256 and above
  for (const path of [[], [label('a')], [label('a'), label('b'), label('c')]]) {
    for (const last of [label('x'), label('y'), 'x']) {
      const dump: StateDump = { unikernels: [{ name: { path, label: last }, config: c }], policies: [] };
      assert.equal(hex(enc.encode(dump)), hex(encodeState(dump)), `${path.length} labels, then ${last.slice(0, 3)}`);
    }
  }
});

test('info lists written straight into one buffer are the octets the combinators give, remembered infos or not', () => {
  const base: UnikernelInfo = {
    typ: 'solo5', failBehaviour: { kind: 'restart', value: [3, 1] }, cpuids: [1, 0], memory: 64, digest: new Uint8Array(32).fill(7),
    blocks: [{ unikernelDevice: 'storage', hostDevice: 'disk', sectorSize: 512, blockSize: 10 }],
    bridges: [{ unikernelDevice: 'service', hostDevice: 'br0', mac: Uint8Array.of(2, 0, 0, 0, 0, 1) }],
    arguments: ['--a', 'b'.repeat(200)], started: 1_700_000_000_123, cpus: 1, startup: 5,
  };
  const label = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,62}$/);
  const entry = fc.record({
    path: fc.array(label, { maxLength: 4 }), label: fc.option(label, { nil: undefined }), memory: fc.nat(1 << 20),
    args: fc.option(fc.array(fc.string({ maxLength: 90 }), { maxLength: 3 }), { nil: undefined }), remember: fc.boolean(),
  }).map((e): NamedInfo => {
    const info: UnikernelInfo = { ...base, memory: e.memory };
    if (e.args === undefined) delete info.arguments;
    else info.arguments = e.args;
    if (e.remember) rememberedUnikernelInfo.remember(info);
    return { name: e.label === undefined ? { path: e.path } : { path: e.path, label: e.label }, info };
  });
  fc.assert(fc.property(fc.array(entry, { maxLength: 40 }), (list) => {
    assert.equal(hex(encodeDer(namedInfoList, list)), hex(encodeDer(namedInfoListGeneric, list)));
  }), { numRuns: Math.min(RUNS, 300) });
  // a reply over 64 KiB: three length octets at the top
  const many = Array.from({ length: 400 }, (_, i): NamedInfo => ({ name: nm(`org:u${i}`), info: base }));
  const big = encodeDer(namedInfoList, many);
  assert.ok(big.length > 65536);
  assert.equal(hex(big), hex(encodeDer(namedInfoListGeneric, many)));
});
