/**
 * Fuzzing of every decoder: random bytes, random DER-shaped trees, and mutations of valid
 * messages (every recorded upstream frame and generated ones: bit flips, truncation at
 * every offset, length tampering, inserted and deleted bytes). A decoder must return an
 * error value or a value that re-encodes (and whose encoding decodes to itself); it must
 * never throw. Round trips of generated valid values cover every command, reply and data
 * kind of the Wire message, the log protocol, the state file and the cert extension.
 *
 * FUZZ_RUNS scales every property (default 1000: over 100,000 cases in all); `npm run fuzz`
 * sets 200000. The seed is fixed (FUZZ_SEED overrides it; FUZZ_SEED=random draws one) and
 * printed with the number of cases per decoder as diagnostics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { type Codec, INT63_MAX, INT63_MIN, decodeDer, encodeDer, fromJson } from '../src/core/asn.js';
import { readHeader } from '../src/core/der.js';
import { FrameReader, frame } from '../src/core/frame.js';
import { type Name, nameKey, nameToString, parseName } from '../src/core/name.js';
import { type Result } from '../src/core/result.js';
import { readAbi, readManifest } from '../src/core/solo5.js';
import {
  type BlockDevice, type FailBehaviour, type NetDevice, type Policy, type UnikernelArgs, type UnikernelConfig,
} from '../src/core/wire/common.js';
import {
  type LogEvent, type LogRecord, type LogWire, decodeLogWire, encodeLogRecord, encodeLogWire, logRecord, logWire, readLogFile,
} from '../src/core/wire/log.js';
import { type StateFile, decodeState, encodeState, stateFile } from '../src/core/wire/state.js';
import { type NamedInfo, type UnikernelInfo } from '../src/core/wire/unikernel.js';
import {
  type CertExtension, type Command, type DataMsg, type Success, type Wire, certExtension, decodeCertExtension, decodeWire,
  encodeCertExtension, encodeWire, wire,
} from '../src/core/wire/wire.js';
import { certFacts, csrFacts, pemBlocks } from '../src/core/x509.js';
import { solo5Image } from './helpers/image.js';
import { jsonToWire, messageBytes, parseJsonDocuments, wireToJson } from '../src/inspect/inspect.js';

const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 1000));
/** Runs are reproducible: a fixed seed unless FUZZ_SEED gives another one (FUZZ_SEED=random for a new one each run). */
const SEED = process.env.FUZZ_SEED === 'random' ? Date.now() | 0 : Number(process.env.FUZZ_SEED ?? 20261125);
const params = (numRuns: number): fc.Parameters<unknown> => ({ numRuns: Math.max(1, Math.round(numRuns)), seed: SEED, includeErrorInReport: true });
const root = join(__dirname, '..', '..');
const fixtureDir = join(root, 'test', 'fixtures', 'upstream-2.7.2', 'run1');
const fixtures = readdirSync(fixtureDir).filter((f) => f.endsWith('.der')).sort()
  .map((f) => ({ name: f, bytes: new Uint8Array(readFileSync(join(fixtureDir, f))) }));
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Cases run per decoder, for the diagnostics and the total. */
const counts = new Map<string, number>();
const count = (what: string, n = 1): void => {
  counts.set(what, (counts.get(what) ?? 0) + n);
};

// ------------------------------------------------------------------ the checks

interface Target<T> {
  what: string;
  decode: (b: Uint8Array) => Result<T>;
  encode: (v: T) => Uint8Array;
}

/**
 * Decodes `input`: an error must be a non-empty string; a value must re-encode without
 * throwing, and that encoding must decode to a value with the same encoding.
 */
function check<T>(t: Target<T>, input: Uint8Array): void {
  count(t.what);
  const r = t.decode(input);
  if (!r.ok) {
    assert.equal(typeof r.error, 'string');
    assert.ok(r.error.length > 0, `${t.what}: empty error for ${hex(input)}`);
    return;
  }
  const e = t.encode(r.value);
  if (e.length === input.length && hex(e) === hex(input)) return; // canonical input: it is its own re-encoding
  const r2 = t.decode(e);
  assert.ok(r2.ok, `${t.what}: ${hex(input)} decoded, but its re-encoding ${hex(e)} fails: ${r2.ok ? '' : r2.error}`);
  assert.equal(hex(t.encode(r2.value)), hex(e), `${t.what}: re-encoding of ${hex(input)} is not stable`);
}

/** Round trip of a valid value: decode(encode(v)) succeeds and encodes to the same bytes, and so does its JSON form. */
function roundTrip<T>(t: Target<T>, codec: Codec<T> | undefined, v: T): void {
  count(t.what);
  const bytes = t.encode(v);
  const r = t.decode(bytes);
  assert.ok(r.ok, `${t.what}: ${hex(bytes)}: ${r.ok ? '' : r.error}`);
  assert.equal(hex(t.encode(r.value)), hex(bytes));
  if (codec !== undefined) {
    const j = fromJson(codec, JSON.parse(JSON.stringify(codec.toJson(r.value))));
    assert.ok(j.ok, j.ok ? '' : j.error);
    assert.equal(hex(t.encode(j.value)), hex(bytes), `${t.what}: JSON round trip`);
  }
}

const wireTarget: Target<Wire> = { what: 'decodeWire', decode: (b) => decodeWire(b), encode: encodeWire };
const logTarget: Target<LogWire> = { what: 'decodeLogWire', decode: decodeLogWire, encode: encodeLogWire };
const stateTarget: Target<StateFile> = {
  what: 'decodeState',
  // decodeState normalises the alternatives; re-encoding needs the alternative as it was
  decode: (b) => {
    const r = decodeState(b);
    return r.ok ? decodeDer(stateFile, b) : r;
  },
  encode: (s) => encodeDer(stateFile, s),
};
const certExtTarget: Target<CertExtension> = {
  what: 'decodeCertExtension', decode: decodeCertExtension, encode: (v) => encodeCertExtension(v.command),
};

// ------------------------------------------------------------------ mutations

/** Positions of every TLV's length field: [offset of the first length octet, number of length octets, length]. */
function lengthSites(b: Uint8Array): [number, number, number][] {
  const out: [number, number, number][] = [];
  const walk = (pos: number, end: number, depth: number): void => {
    while (pos < end) {
      const h = readHeader(b, pos, end);
      const tagLen = b[pos] % 32 === 31 ? h.headerLength - lengthOctets(b, pos, h.headerLength) : 1;
      out.push([pos + tagLen, h.headerLength - tagLen, h.length]);
      const cstart = pos + h.headerLength;
      if (h.constructed && depth < 40) walk(cstart, cstart + h.length, depth + 1);
      pos = cstart + h.length;
    }
  };
  try {
    walk(0, b.length, 0);
  } catch {
    // a seed that is not DER has no length sites
  }
  return out;
}
function lengthOctets(b: Uint8Array, pos: number, headerLength: number): number {
  const l0 = b[pos + headerLength - 1];
  for (let n = 1; n <= 5; n++) {
    const first = b[pos + headerLength - n];
    if (n === 1 && first < 0x80) return 1;
    if (first === (0x80 | (n - 1))) return n;
  }
  return l0 < 0x80 ? 1 : 2;
}
function encodeLength(n: number, longForm = 0): number[] {
  if (n < 0x80 && longForm === 0) return [n];
  const bytes: number[] = [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x % 256);
  while (bytes.length < longForm) bytes.unshift(0);
  return [0x80 | bytes.length, ...bytes];
}

type Mutation = { kind: number; a: number; b: number; bytes: Uint8Array };
const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.nat(7), a: fc.nat(), b: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }),
});
const splice = (b: Uint8Array, at0: number, remove0: number, insert: ArrayLike<number>): Uint8Array => {
  const at = Math.min(at0, b.length);
  const remove = Math.min(remove0, b.length - at);
  const out = new Uint8Array(b.length - remove + insert.length);
  out.set(b.subarray(0, at));
  out.set(insert, at);
  out.set(b.subarray(at + remove), at + insert.length);
  return out;
};

/** Applies one mutation: bit flip, byte set, truncation, insertion, deletion, length tampering, or two bit flips. */
function mutate(b: Uint8Array, m: Mutation, sites: [number, number, number][]): Uint8Array {
  const n = b.length;
  if (n === 0) return m.bytes;
  const p = m.a % n;
  switch (m.kind) {
    case 0: {
      const out = b.slice();
      out[p] ^= 1 << (m.b % 8);
      return out;
    }
    case 1: {
      const out = b.slice();
      out[p] = m.bytes[0];
      return out;
    }
    case 2:
      return b.subarray(0, p);
    case 3:
      return splice(b, m.a % (n + 1), 0, m.bytes);
    case 4:
      return splice(b, p, Math.min(n - p, 1 + (m.b % 4)), []);
    case 5:
    case 6: {
      if (sites.length === 0) return b.subarray(0, p);
      const [at, len, value] = sites[m.a % sites.length];
      const choices = [value + 1, value - 1, value + 2, Math.max(0, value - 2), 0, 0x7f, 0x80, value * 2, m.b % 0x10000, 0x7fffffff];
      const v = Math.max(0, choices[m.b % choices.length]);
      const repl = m.kind === 6 ? (m.b % 3 === 0 ? [0x80] : encodeLength(value, 1 + (m.b % 3))) : encodeLength(v);
      return splice(b, at, len, repl);
    }
    default: {
      const out = b.slice();
      out[p] ^= 1 << (m.b % 8);
      out[m.b % n] ^= 1 << (m.a % 8);
      return out;
    }
  }
}

/** Random DER-shaped values: trees of tags the decoders know, with plausible and random contents. */
const derTree: fc.Arbitrary<Uint8Array> = fc.letrec<{ node: Uint8Array; prim: Uint8Array; cons: Uint8Array }>((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('prim'), tie('cons')),
  prim: fc.oneof(
    fc.integer({ min: -300, max: 300 }).map((x) => tlv(0x02, intContent(x))),
    fc.constantFrom(tlv(0x01, [0xff]), tlv(0x01, [0]), tlv(0x05, []), tlv(0x02, [5])),
    fc.constantFrom(':a', 'a:b', 'x', ':', 'dept:', '', 'a::b', 'UP').map((s) => tlv(0x0c, [...Buffer.from(s)])),
    fc.constantFrom('20240102030405Z', '20240102030405.678Z', '19700101000000Z', '240102030405Z', '2024').map((s) => tlv(0x18, [...Buffer.from(s)])),
    fc.constantFrom('240102030405Z', '991231235959Z').map((s) => tlv(0x17, [...Buffer.from(s)])),
    fc.uint8Array({ maxLength: 9 }).map((c) => tlv(0x04, [...c])),
    fc.tuple(fc.integer({ min: 0x80, max: 0x9f }), fc.uint8Array({ maxLength: 4 })).map(([t, c]) => tlv(t, [...c])),
  ),
  cons: fc.tuple(
    fc.oneof(fc.constantFrom(0x30, 0x31), fc.integer({ min: 0xa0, max: 0xb5 })),
    fc.array(tie('node'), { maxLength: 5 }),
  ).map(([t, kids]) => tlv(t, kids.flatMap((k) => [...k]))),
})).node;
function tlv(tag: number, content: ArrayLike<number>): Uint8Array {
  return Uint8Array.from([tag, ...encodeLength(content.length), ...Array.from(content)]);
}
function intContent(x: number): number[] {
  const out: number[] = [];
  let v = x;
  do {
    out.unshift(v & 0xff);
    v >>= 8;
  } while (!((v === 0 && (out[0] & 0x80) === 0) || (v === -1 && (out[0] & 0x80) !== 0)));
  return out;
}

/** Wraps DER-shaped trees in a Wire-like envelope so that decoding gets past the header. */
const envelope = (payload: Uint8Array): Uint8Array =>
  tlv(0x30, [...tlv(0x30, [0x02, 0x01, 0x05, 0x04, 0x08, 0, 0, 0, 0, 0, 0, 0, 1, ...tlv(0x0c, [0x3a, 0x61])]), ...payload]);

// ------------------------------------------------------------------ arbitraries of the domain types

const label = fc.stringMatching(/^[a-z0-9.][a-z0-9.-]{0,10}$/);
const nameArb: fc.Arbitrary<Name> = fc.tuple(fc.array(label, { maxLength: 3 }), fc.option(label, { nil: undefined }))
  .map(([path, l]) => (l === undefined ? { path } : { path, label: l }));
const text = fc.oneof(fc.string({ maxLength: 10 }), fc.string({ unit: 'grapheme', maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 4 }));
const int = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.maxSafeInteger());
const int63 = fc.bigInt(INT63_MIN, INT63_MAX);
const int64 = fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n);
const time = fc.integer({ min: 0, max: 253402300799999 });
const bytes = fc.uint8Array({ maxLength: 24 });
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 });
const optional = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });
const alt = <K extends string, V>(kind: K, value: fc.Arbitrary<V>): fc.Arbitrary<{ kind: K; value: V }> => value.map((v) => ({ kind, value: v }));
const unit = <K extends string>(kind: K): fc.Arbitrary<{ kind: K; value: null }> => fc.constant({ kind, value: null });

const failBehaviour: fc.Arbitrary<FailBehaviour> = fc.oneof(unit('quit'), alt('restart', fc.array(fc.integer({ min: -5, max: 300 }), { maxLength: 4 })));
const blockDevice: fc.Arbitrary<BlockDevice> = fc.record({ blockName: text, blockDeviceName: optional(text), blockSectorSize: optional(int) });
const netDevice: fc.Arbitrary<NetDevice> = fc.record({ netif: text, bridge: optional(text), mac: optional(mac) });
const cpuList = (single: boolean): fc.Arbitrary<number[]> =>
  single ? int.map((x) => [x]) : fc.array(int, { minLength: 1, maxLength: 4 });

const configArb = (single: boolean, maxBlocks = 3): fc.Arbitrary<UnikernelConfig> => fc.record({
  typ: fc.constantFrom('solo5' as const, 'bhyve' as const),
  compressed: fc.boolean(),
  image: bytes,
  startup: optional(int),
  addName: fc.boolean(),
  failBehaviour,
  cpuids: cpuList(single),
  memory: int,
  blocks: fc.array(blockDevice, { maxLength: maxBlocks }),
  bridges: fc.array(netDevice, { maxLength: 3 }),
  arguments: optional(fc.array(text, { maxLength: 3 })),
  cpus: int,
  linuxBootPartition: optional(text),
});
const argsArb = (single: boolean): fc.Arbitrary<UnikernelArgs> => fc.record({
  failBehaviour, startup: optional(int), addName: fc.boolean(), cpuids: cpuList(single), memory: int,
  blocks: fc.array(blockDevice, { maxLength: 3 }), bridges: fc.array(netDevice, { maxLength: 3 }),
  arguments: optional(fc.array(text, { maxLength: 3 })), cpus: int, linuxBootPartition: optional(text),
});
const policyArb: fc.Arbitrary<Policy> = fc.record({
  cpuids: fc.array(int, { maxLength: 4 }), unikernels: int63, memory: int, block: optional(int), bridges: fc.array(text, { maxLength: 3 }),
});
const sinceCount = fc.oneof(alt('since', time), alt('count', int));

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  alt('console', fc.oneof(alt('add', int63), alt('subscribe', sinceCount), unit('list_inactive'))),
  alt('stats', fc.oneof(
    alt('add', fc.record({ vmmdev: text, pid: int, network: fc.array(fc.record({ bridge: text, tap: text }), { maxLength: 3 }) })),
    unit('remove'), unit('subscribe'), unit('initial'))),
  alt('unikernel', fc.oneof(
    unit('destroy'), alt('create_v3', configArb(true)), alt('force_create_v3', configArb(true)), alt('get', int),
    alt('restart', fc.oneof(unit('no_arguments'), alt('arguments_v0', argsArb(true)), alt('arguments_v1', argsArb(true)), alt('arguments', argsArb(false)))),
    unit('info_v4'), alt('create_v4', configArb(true)), alt('force_create_v4', configArb(true)), unit('info_v5'), unit('info'),
    alt('create', configArb(false)), alt('force_create', configArb(false)))),
  alt('policy', fc.oneof(unit('info'), alt('add', policyArb), unit('remove'))),
  alt('block', fc.oneof(
    unit('info'), alt('add', int), unit('remove'),
    alt('add_old', fc.record({ size: int, compress: fc.boolean(), data: optional(bytes) })),
    alt('set_old', fc.record({ compress: fc.boolean(), data: bytes })),
    alt('dump_old', int), alt('dump', int), alt('set', fc.boolean()))),
) as fc.Arbitrary<Command>;

const infoArb = (single: boolean): fc.Arbitrary<UnikernelInfo> => fc.record({
  typ: fc.constantFrom('solo5' as const, 'bhyve' as const), startup: optional(int), failBehaviour, cpuids: cpuList(single), memory: int,
  digest: bytes,
  blocks: fc.array(fc.record({ unikernelDevice: text, hostDevice: text, sectorSize: int, blockSize: int }), { maxLength: 3 }),
  bridges: fc.array(fc.record({ unikernelDevice: text, hostDevice: text, mac }), { maxLength: 3 }),
  arguments: optional(fc.array(text, { maxLength: 3 })), started: time, cpus: int, linuxBootPartition: optional(text),
});
const namedInfos = (single: boolean): fc.Arbitrary<NamedInfo[]> => fc.array(fc.record({ name: nameArb, info: infoArb(single) }), { maxLength: 3 });
const image = fc.record({ compressed: fc.boolean(), image: bytes });

const successArb: fc.Arbitrary<Success> = fc.oneof(
  unit('empty'), alt('string', text), alt('policies', fc.array(fc.record({ name: nameArb, policy: policyArb }), { maxLength: 3 })),
  alt('block_devices', fc.array(fc.record({ name: nameArb, size: int, active: fc.boolean() }), { maxLength: 3 })),
  alt('unikernel_image', image), alt('old_block_device_image', image), alt('unikernel_info_v4', namedInfos(true)),
  alt('block_device_image', fc.boolean()), alt('unikernel_info_v5', namedInfos(true)), alt('consoles', fc.array(nameArb, { maxLength: 4 })),
  alt('unikernel_info', namedInfos(false)),
) as fc.Arbitrary<Success>;

const timeval = fc.record({ seconds: int64, microseconds: int });
const int64s = <K extends string>(keys: readonly K[]): fc.Arbitrary<Record<K, bigint>> =>
  fc.tuple(...keys.map(() => int64)).map((vs) => Object.fromEntries(keys.map((k, i) => [k, vs[i]])) as Record<K, bigint>);
const rusage = fc.tuple(timeval, timeval, int64s(['maxrss', 'ixrss', 'idrss', 'isrss', 'minflt', 'majflt', 'nswap', 'inblock',
  'outblock', 'msgsnd', 'msgrcv', 'nsignals', 'nvcsw', 'nivcsw'] as const)).map(([utime, stime, rest]) => ({ utime, stime, ...rest }));
const ifData = fc.tuple(text, fc.tuple(fc.integer(), fc.integer(), fc.integer(), fc.integer(), fc.integer()),
  int64s(['baudrate', 'inputPackets', 'inputErrors', 'outputPackets', 'outputErrors', 'collisions', 'inputBytes', 'outputBytes',
    'inputMcast', 'outputMcast', 'inputDropped', 'outputDropped'] as const))
  .map(([bridge, [flags, sendLength, maxSendLength, sendDrops, mtu], rest]) => ({ bridge, flags, sendLength, maxSendLength, sendDrops, mtu, ...rest }));
const kinfoMem = fc.tuple(int64s(['vsize', 'rss', 'tsize', 'dsize', 'ssize', 'runtime'] as const), int, timeval)
  .map(([rest, cow, start]) => ({ ...rest, cow, start }));

const dataArb: fc.Arbitrary<DataMsg> = fc.oneof(
  alt('statistics', fc.record({
    resourceUsage: rusage, ifdata: fc.array(ifData, { maxLength: 2 }),
    vmmStats: optional(fc.array(fc.record({ key: text, value: int64 }), { maxLength: 3 })), kinfoMem: optional(kinfoMem),
  })),
  alt('console', fc.record({ timestamp: time, line: text })),
  alt('block', fc.oneof(alt('chunk', bytes), unit('eof'))),
) as fc.Arbitrary<DataMsg>;

const headerArb = fc.record({ version: fc.constant(5), sequence: int64, name: nameArb });
const wireArb: fc.Arbitrary<Wire> = fc.record({
  header: headerArb,
  payload: fc.oneof(alt('command', commandArb), alt('reply', successArb), alt('failure', text), alt('data', dataArb)),
}) as fc.Arbitrary<Wire>;

const logEventArb = (nm: fc.Arbitrary<Name>): fc.Arbitrary<LogEvent> => {
  const endpoint = fc.record({ name: nm, ip: fc.uint8Array({ minLength: 4, maxLength: 4 }), port: int });
  const tap = fc.record({ bridge: text, tap: text });
  return fc.oneof(
    unit('startup'), alt('login', endpoint), alt('logout', endpoint),
    alt('unikernel_start_old0', fc.record({ name: nm, pid: int, taps: fc.array(text, { maxLength: 2 }), block: optional(text) })),
    alt('unikernel_stop', fc.record({ name: nm, pid: int, status: fc.oneof(alt('exit', int), alt('signal', int), alt('stopped', int)) })),
    unit('hup'),
    alt('unikernel_start_old1', fc.record({ name: nm, pid: int, taps: fc.array(tap, { maxLength: 2 }), blocks: fc.array(fc.record({ name: text, device: text }), { maxLength: 2 }) })),
    alt('unikernel_start', fc.record({ name: nm, digest: bytes, pid: int, taps: fc.array(tap, { maxLength: 2 }), blocks: fc.array(fc.record({ name: text, device: nm }), { maxLength: 2 }) })),
  ) as fc.Arbitrary<LogEvent>;
};
const logWireArb: fc.Arbitrary<LogWire> = fc.record({
  header: headerArb,
  payload: fc.oneof(
    alt('reply', fc.oneof(unit('empty'), alt('string', text))), alt('failure', text),
    alt('command', alt('subscribe', sinceCount)), alt('data', fc.record({ timestamp: time, event: logEventArb(nameArb) })),
  ),
}) as fc.Arbitrary<LogWire>;
/** Names as version 4 records carry them (label lists): a unikernel name, or the root. */
const v4Name = fc.array(label, { maxLength: 3 }).map((ls): Name => (ls.length === 0 ? { path: [] } : { path: ls.slice(0, -1), label: ls[ls.length - 1] }));
const logRecordArb: fc.Arbitrary<LogRecord> = fc.oneof(
  fc.record({ version: fc.constant(5), entry: fc.record({ timestamp: time, event: logEventArb(nameArb) }) }),
  fc.record({ version: fc.constantFrom(3, 4), entry: fc.record({ timestamp: time, event: logEventArb(v4Name) }) }),
);

const keyOf = (n: Name): string => nameKey(n).join(':');
const entries = <T>(value: fc.Arbitrary<T>) => fc.uniqueArray(fc.record({ name: nameArb, config: value }), { maxLength: 3, selector: (e) => keyOf(e.name) });
const policies = fc.uniqueArray(fc.record({ name: nameArb, policy: policyArb }), { maxLength: 3, selector: (e) => keyOf(e.name) });
const stateArb: fc.Arbitrary<StateFile> = fc.oneof(
  alt('v1_unikernels', entries(configArb(true))),
  alt('v0_unikernels', entries(configArb(true, 1))),
  alt('v2_unikernels', entries(configArb(true))),
  alt('v3_unikernels', entries(configArb(true))),
  alt('v3_unikernels_and_policies', fc.record({ unikernels: entries(configArb(true)), policies })),
  alt('v4_unikernels_and_policies', fc.record({ unikernels: entries(configArb(true)), policies })),
  alt('unikernels_and_policies', fc.record({ unikernels: entries(configArb(false)), policies })),
) as fc.Arbitrary<StateFile>;
const certExtArb: fc.Arbitrary<CertExtension> = commandArb.map((command) => ({ version: 5, command }));

// ------------------------------------------------------------------ seeds

const sample = <T>(a: fc.Arbitrary<T>, n: number, seed: number): T[] => fc.sample(a, { numRuns: n, seed });
const small = fixtures.filter((f) => f.bytes.length <= 4096);
const large = fixtures.filter((f) => f.bytes.length > 4096);
const wireSeeds = [...fixtures.map((f) => f.bytes), ...sample(wireArb, 60, 1).map(encodeWire)];
const logSeeds = sample(logWireArb, 40, 2).map(encodeLogWire);
const stateSeeds = [...sample(stateArb, 30, 3).map((s) => encodeDer(stateFile, s)),
  encodeState({ unikernels: [], policies: [] })];
const certExtSeeds = sample(certExtArb, 40, 4).map((v) => encodeCertExtension(v.command));

/** Mutations of the seeds, plus DER-shaped trees and random bytes, through `check`. */
function fuzzTarget<T>(t: Target<T>, seeds: Uint8Array[], runs: number, wrap: (b: Uint8Array) => Uint8Array = (b) => b): void {
  const sites = seeds.map(lengthSites);
  fc.assert(fc.property(fc.nat(seeds.length - 1), mutationArb, (i, m) => check(t, mutate(seeds[i], m, sites[i]))), params(runs));
  fc.assert(fc.property(fc.nat(seeds.length - 1), mutationArb, mutationArb, (i, m1, m2) =>
    {
    const once = mutate(seeds[i], m1, sites[i]);
    check(t, mutate(once, m2, lengthSites(once)));
  }), params(runs / 4));
  fc.assert(fc.property(derTree, (b) => check(t, wrap(b))), params(runs / 2));
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (b) => check(t, b)), params(runs / 4));
}

/**
 * Deterministic: truncation at every offset of every seed (near both ends of large ones),
 * and a flip of every bit of the first `flipped` seeds that are small.
 */
function exhaustive<T>(t: Target<T>, seeds: Uint8Array[], flipped = seeds.length): void {
  seeds.forEach((s, k) => {
    const offsets = s.length <= 4096 ? s.keys() : [...Array(512).keys(), ...Array.from({ length: 512 }, (_, i) => s.length - 512 + i)];
    for (const i of offsets) check(t, s.subarray(0, i));
    if (s.length > 4096 || k >= flipped) return;
    for (let i = 0; i < s.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const m = s.slice();
        m[i] ^= 1 << bit;
        check(t, m);
      }
    }
  });
}

function report(t: { diagnostic: (s: string) => void }, ...names: string[]): void {
  for (const n of names) t.diagnostic(`${n}: ${counts.get(n) ?? 0} cases`);
}

// ------------------------------------------------------------------ tests

test(`round trip of generated valid values of every top-level type (${RUNS} runs each)`, (t) => {
  fc.assert(fc.property(wireArb, (w) => roundTrip(wireTarget, wire, w)), params(RUNS));
  fc.assert(fc.property(logWireArb, (w) => roundTrip(logTarget, logWire, w)), params(RUNS / 2));
  fc.assert(fc.property(stateArb, (s) => roundTrip(stateTarget, stateFile, s)), params(RUNS / 2));
  fc.assert(fc.property(certExtArb, (v) => roundTrip(certExtTarget, certExtension, v)), params(RUNS / 2));
  const recordTarget: Target<LogRecord> = {
    what: 'log record', decode: (b) => decodeDer(logRecord, b), encode: (r) => encodeLogRecord(r.entry, r.version),
  };
  fc.assert(fc.property(logRecordArb, (r) => roundTrip(recordTarget, logRecord, r)), params(RUNS / 2));
  // every kind is generated: the arbitraries reach each command, reply and data alternative
  const kinds = new Set(sample(wireArb, 3000, 5).map((w) => {
    const p = w.payload;
    return p.kind === 'command' ? `command.${p.value.kind}.${p.value.value.kind}` : p.kind === 'failure' ? 'failure' : `${p.kind}.${p.value.kind}`;
  }));
  assert.ok(kinds.size >= 4 + 4 + 12 + 3 + 8 + 11 + 3 + 1 - 3, `only ${kinds.size} kinds: ${[...kinds].join(' ')}`);
  t.diagnostic(`${kinds.size} payload kinds generated`);
  report(t, 'decodeWire', 'decodeLogWire', 'decodeState', 'decodeCertExtension', 'log record');
});

test('decodeWire: every recorded frame and generated messages, mutated; DER-shaped trees; random bytes', (t) => {
  const before = counts.get('decodeWire') ?? 0;
  exhaustive(wireTarget, [...small.map((f) => f.bytes), ...large.map((f) => f.bytes), ...wireSeeds.slice(fixtures.length)], small.length);
  fuzzTarget(wireTarget, wireSeeds, RUNS * 8, envelope);
  // nesting at and beyond the depth limit, and lengths that claim far more than is there
  for (let depth = 1; depth <= 300; depth += depth < 40 ? 1 : 26) {
    let b: Uint8Array = new Uint8Array([0x05, 0x00]);
    for (let i = 0; i < depth; i++) b = tlv(i % 2 === 0 ? 0x30 : 0xa1, b);
    check(wireTarget, b);
    check(wireTarget, envelope(b));
  }
  for (const len of [[0x84, 0x7f, 0xff, 0xff, 0xff], [0x84, 0xff, 0xff, 0xff, 0xff], [0x85, 1, 0, 0, 0, 0], [0x83, 0x10, 0, 0], [0x80]]) {
    check(wireTarget, Uint8Array.from([0x30, ...len, 0x30, 0x00]));
    check(wireTarget, envelope(Uint8Array.from([0xa0, ...len, 0x05, 0x00])));
  }
  t.diagnostic(`decodeWire: ${(counts.get('decodeWire') ?? 0) - before} cases (${fixtures.length} recorded frames, ${wireSeeds.length - fixtures.length} generated seeds)`);
});

test('decodeLogWire, decodeState, decodeCertExtension: mutated valid messages, DER-shaped trees, random bytes', (t) => {
  const before = new Map(counts);
  exhaustive(logTarget, logSeeds.slice(0, 10), 3);
  fuzzTarget(logTarget, logSeeds, RUNS * 2, envelope);
  // wire messages are not log messages (except replies); mutating them exercises the refusals
  fuzzTarget(logTarget, wireSeeds.slice(0, fixtures.length), RUNS / 2);
  exhaustive(stateTarget, stateSeeds.slice(0, 10), 2);
  fuzzTarget(stateTarget, stateSeeds, RUNS * 2, (b) => tlv(0xa6, [...tlv(0x30, [...b, 0x30, 0x00])]));
  exhaustive(certExtTarget, certExtSeeds.slice(0, 10), 3);
  fuzzTarget(certExtTarget, certExtSeeds, RUNS * 2, (b) => tlv(0x30, [0x02, 0x01, 0x05, ...b]));
  for (const n of ['decodeLogWire', 'decodeState', 'decodeCertExtension'])
    t.diagnostic(`${n}: ${(counts.get(n) ?? 0) - (before.get(n) ?? 0)} cases`);
});

test('readLogFile: concatenated records, mutated, never throw; every record read re-encodes', (t) => {
  const files = sample(fc.array(logRecordArb, { minLength: 1, maxLength: 6 }), 50, 6)
    .map((rs) => ({ n: rs.length, bytes: Buffer.concat(rs.map((r) => encodeLogRecord(r.entry, r.version))) }));
  for (const f of files) {
    const r = readLogFile(f.bytes);
    assert.equal(r.records.length, f.n);
    assert.equal(r.truncated, 0);
    assert.deepEqual(r.skipped, []);
  }
  const sites = files.map((f) => lengthSites(f.bytes));
  const checkFile = (b: Uint8Array): void => {
    count('readLogFile');
    const r = readLogFile(b);
    assert.ok(r.truncated >= 0 && r.truncated <= b.length);
    for (const s of r.skipped) assert.match(s, /^record at byte \d+: ./);
    for (const rec of r.records) {
      const e = encodeLogRecord(rec.entry, rec.version);
      const again = readLogFile(e);
      assert.equal(again.records.length, 1, hex(e));
    }
  };
  for (const f of files.slice(0, 10)) for (let i = 0; i <= f.bytes.length; i++) checkFile(f.bytes.subarray(0, i));
  fc.assert(fc.property(fc.nat(files.length - 1), fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (i, ms) =>
    checkFile(ms.reduce<Uint8Array>((b, m, k) => mutate(b, m, k === 0 ? sites[i] : lengthSites(b)), new Uint8Array(files[i].bytes)))), params(RUNS * 2));
  fc.assert(fc.property(fc.array(derTree, { maxLength: 4 }), (ts) => checkFile(Buffer.concat(ts))), params(RUNS / 2));
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), checkFile), params(RUNS / 2));
  report(t, 'readLogFile');
});

test('FrameReader: frames split anywhere come back whole; random octets never throw and errors stick', (t) => {
  const bodies = fc.array(fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.constant(new Uint8Array(0))), { maxLength: 6 });
  fc.assert(fc.property(bodies, fc.array(fc.nat(), { maxLength: 8 }), (bs, cuts) => {
    count('FrameReader');
    // an empty body is written as the end marker (length 0)
    const stream = Buffer.concat(bs.map((b) => (b.length === 0 ? new Uint8Array(4) : frame(b))));
    const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
    const r = new FrameReader(64);
    let last = 0;
    const got: string[] = [];
    const drain = (): void => {
      for (let x = r.next(); x.kind !== 'need-more'; x = r.next()) {
        assert.notEqual(x.kind, 'error');
        got.push(x.kind === 'frame' ? hex(x.body) : `end ${x.kind === 'end' ? x.length : ''}`);
      }
    };
    for (const p of [...points, stream.length]) {
      r.push(stream.subarray(last, p));
      last = p;
      drain();
    }
    assert.deepEqual(got, bs.map((b) => (b.length === 0 ? 'end 0' : hex(b))));
    assert.equal(r.buffered, 0);
  }), params(RUNS * 4));
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 12 }), { maxLength: 8 }), fc.integer({ min: 0, max: 100 }), (chunks, max) => {
    count('FrameReader');
    const r = new FrameReader(max);
    let failed: string | undefined;
    for (const c of chunks) {
      r.push(c);
      for (let x = r.next(), n = 0; x.kind !== 'need-more' && n < 1000; x = r.next(), n++) {
        if (x.kind === 'error') {
          assert.match(x.error, /exceeds the limit/);
          if (failed !== undefined) assert.equal(x.error, failed);
          failed = x.error;
          break;
        }
        if (x.kind === 'frame') assert.ok(x.body.length > 0 && x.body.length <= max);
        if (x.kind === 'end') assert.ok(x.length <= 0);
      }
    }
    if (failed !== undefined) assert.equal(r.next().kind, 'error');
  }), params(RUNS * 4));
  report(t, 'FrameReader');
});

test('certFacts and csrFacts: mutated openssl certificates and requests, DER-shaped trees, random bytes', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fuzz-x509-'));
  try {
    const openssl = (args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    };
    const ext = hex(encodeCertExtension({ kind: 'console', value: { kind: 'subscribe', value: { kind: 'count', value: 20 } } }));
    openssl(['req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '2',
      '-subj', '/CN=fuzz', '-addext', `1.3.6.1.4.1.49836.42=DER:${ext}`, '-addext', 'basicConstraints=critical,CA:TRUE']);
    openssl(['req', '-new', '-key', 'k.pem', '-out', 'r.pem', '-subj', '/CN=fuzz', '-addext', `1.3.6.1.4.1.49836.42=DER:${ext}`]);
    const cert = pemBlocks(readFileSync(join(dir, 'c.pem'), 'utf8'))[0].der;
    const csr = pemBlocks(readFileSync(join(dir, 'r.pem'), 'utf8'))[0].der;
    assert.ok(certFacts(cert).ok && csrFacts(csr).ok);
    const seeds = [cert, csr];
    const sites = seeds.map(lengthSites);
    const checkX509 = (b: Uint8Array): void => {
      count('certFacts/csrFacts');
      for (const r of [certFacts(b), csrFacts(b)]) {
        if (!r.ok) assert.ok(typeof r.error === 'string' && r.error.length > 0);
        else assert.ok(Array.isArray(r.value.extensions));
      }
    };
    for (const s of seeds) for (let i = 0; i < s.length; i++) checkX509(s.subarray(0, i));
    for (const s of seeds) {
      for (let i = 0; i < s.length; i++) {
        for (const bit of [0, 7]) {
          const m = s.slice();
          m[i] ^= 1 << bit;
          checkX509(m);
        }
      }
    }
    fc.assert(fc.property(fc.nat(1), mutationArb, (i, m) => checkX509(mutate(seeds[i], m, sites[i]))), params(RUNS));
    fc.assert(fc.property(derTree, checkX509), params(RUNS / 2));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), checkX509), params(RUNS / 4));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  report(t, 'certFacts/csrFacts');
});

test('parseName: any string gives an error or a name whose text parses to itself', (t) => {
  const check1 = (s: string): void => {
    count('parseName');
    const r = parseName(s);
    if (!r.ok) {
      assert.ok(r.error.length > 0);
      return;
    }
    const again = parseName(nameToString(r.value));
    assert.ok(again.ok);
    assert.deepEqual(again.value, r.value);
  };
  const chars = fc.constantFrom(...'aZ09.-:_ :\u00e9'.split(''));
  fc.assert(fc.property(fc.array(chars, { maxLength: 80 }).map((cs) => cs.join('')), check1), params(RUNS * 8));
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), check1), params(RUNS));
  fc.assert(fc.property(fc.array(fc.stringMatching(/^[a-z0-9.][a-z0-9.-]{0,62}$/), { maxLength: 4 }), fc.boolean(), (ls, trailing) =>
    check1(`${ls.join(':')}${trailing ? ':' : ''}`)), params(RUNS));
  report(t, 'parseName');
});

test('readAbi and readManifest: mutated Solo5 images, random bytes', (t) => {
  const seeds = [solo5Image(), solo5Image({ blocks: ['storage'], nets: ['service', 'other'] }), solo5Image({ target: 'hvt', abi: 3 })];
  for (const s of seeds) assert.ok(readAbi(s).ok && readManifest(s).ok);
  const checkElf = (b: Uint8Array): void => {
    count('readAbi/readManifest');
    const a = readAbi(b);
    if (!a.ok) assert.ok(a.error.length > 0);
    else assert.ok(Number.isInteger(a.value.version));
    const m = readManifest(b);
    if (!m.ok) assert.ok(m.error.length > 0);
    else assert.ok(m.value.entries.length <= 64);
  };
  for (const s of seeds.slice(0, 2)) {
    for (let i = 0; i < s.length; i++) {
      checkElf(s.subarray(0, i));
      for (const v of [0x00, 0xff, 0x80]) {
        const m = s.slice();
        m[i] = v;
        checkElf(m);
      }
    }
  }
  // wide values written at random offsets hit offsets, sizes and counts of the headers
  const wide = fc.tuple(fc.nat(2), fc.nat(), fc.constantFrom(1, 2, 4, 8), fc.constantFrom(0n, 1n, 0x7fn, 0xffffn, 0xffffffffn, 2n ** 63n, 2n ** 64n - 1n))
    .map(([i, pos, w, v]) => {
      const b = seeds[i].slice();
      const at = pos % Math.max(1, b.length - w);
      for (let k = 0; k < w; k++) b[at + k] = Number((v >> BigInt(8 * k)) & 0xffn);
      return b;
    });
  fc.assert(fc.property(wide, checkElf), params(RUNS));
  fc.assert(fc.property(fc.nat(2), mutationArb, (i, m) => checkElf(mutate(seeds[i], m, []))), params(RUNS));
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
    // random bytes behind a valid ELF magic get further into the parser
    checkElf(b);
    const withMagic = Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, ...b]);
    checkElf(withMagic);
  }), params(RUNS / 2));
  report(t, 'readAbi/readManifest');
});

test('vmmc_inspect core: JSON of any message encodes back; input forms and JSON documents never throw', (t) => {
  const viaJson: Target<Uint8Array> = {
    what: 'vmmc_inspect wire/encode',
    decode: (b) => {
      const j = wireToJson(b);
      if (!j.ok) return j;
      const d = jsonToWire(JSON.parse(JSON.stringify(j.value.json)));
      assert.ok(d.ok, d.ok ? '' : d.error);
      return { ok: true, value: d.value.der };
    },
    encode: (der) => der,
  };
  fc.assert(fc.property(fc.oneof(wireArb.map(encodeWire), logWireArb.map(encodeLogWire)), (b) => roundTrip(viaJson, undefined, b)), params(RUNS / 2));
  const sites = wireSeeds.map(lengthSites);
  fc.assert(fc.property(fc.nat(wireSeeds.length - 1), mutationArb, (i, m) => check(viaJson, mutate(wireSeeds[i], m, sites[i]))), params(RUNS / 2));
  fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), fc.boolean(), fc.boolean(), (b, h, f) => {
    count('vmmc_inspect input forms');
    const r = messageBytes(b, { hex: h, frame: f });
    if (!r.ok) assert.ok(r.error.length > 0);
    else if (!h && !f) assert.equal(hex(r.value), hex(b));
  }), params(RUNS));
  const jsonish = fc.array(fc.constantFrom(...'{}[]",:\\ a1\n'.split('')), { maxLength: 30 }).map((cs) => cs.join(''));
  fc.assert(fc.property(fc.oneof(jsonish, fc.json()), fc.json(), (a, b) => {
    count('vmmc_inspect JSON documents');
    const r = parseJsonDocuments(a);
    if (!r.ok) assert.ok(r.error.length > 0);
    const two = parseJsonDocuments(`[${b}]\n {"x": ${b}}`);
    assert.ok(two.ok);
    assert.deepEqual(two.value, [[JSON.parse(b)], { x: JSON.parse(b) }]);
  }), params(RUNS));
  report(t, 'vmmc_inspect wire/encode', 'vmmc_inspect input forms', 'vmmc_inspect JSON documents');
});

test('case counts', (t) => {
  let total = 0;
  for (const [name, n] of [...counts].sort()) {
    t.diagnostic(`${name}: ${n}`);
    total += n;
  }
  t.diagnostic(`total: ${total} cases (FUZZ_RUNS=${RUNS}, FUZZ_SEED=${SEED})`);
  assert.ok(total >= 40 * RUNS, `only ${total} cases`);
  if (process.env.FUZZ_RUNS === undefined) assert.ok(total >= 100_000, `only ${total} cases by default`);
});
