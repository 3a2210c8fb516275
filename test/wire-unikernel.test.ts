import { test } from 'node:test';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { choice, decodeDer, encodeDer, explicit, seq, utf8, type Codec } from '../src/core/asn.js';
import { header, type UnikernelConfig, type UnikernelArgs } from '../src/core/wire/common.js';
import { parseName } from '../src/core/name.js';
import { unwrap } from '../src/core/result.js';
import {
  unikernelCmd, unikernelConfig, unikernelConfigV0, unikernelConfigV1, unikernelConfigV2, unikernelConfigV3,
  unikernelConfigV4, unikernelArgs, unikernelArgsV0, unikernelArgsV1, restartArgs, unikernelInfo, unikernelInfoV4,
  unikernelInfoV5, namedInfoList, namedInfoV4List, namedInfoV5List, type UnikernelCmd, type UnikernelInfo,
} from '../src/core/wire/unikernel.js';
import { FALSE, NULL, QUIT, SOLO5, TRUE, ascii, int, oct, str, tlv } from './helpers/der-bytes.js';

// ------------------------------------------------------------------ helpers

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/[^0-9a-fA-F]/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** decode(bytes) equals value, and encode(value) equals bytes. */
function both<T>(c: Codec<T>, bytes: Uint8Array, value: T): void {
  assert.deepEqual(unwrap(decodeDer(c, bytes)), value);
  assert.equal(toHex(encodeDer(c, value)), toHex(bytes));
}
/** decode then encode gives the same bytes; returns the decoded value. */
function roundTrip<T>(c: Codec<T>, bytes: Uint8Array): T {
  const v = unwrap(decodeDer(c, bytes));
  assert.equal(toHex(encodeDer(c, v)), toHex(bytes));
  return v;
}
function decodeError<T>(c: Codec<T>, bytes: Uint8Array): string {
  const r = decodeDer(c, bytes);
  assert.equal(r.ok, false, 'expected a decode error');
  return r.ok ? '' : r.error;
}

/** Just enough of Wire to carry the unikernel family (the full codec is wire.ts). */
const frame = seq('Wire', {
  header,
  payload: choice('Payload', {
    command: explicit(0, choice('Command', { unikernel: explicit(3, unikernelCmd) })),
    reply: explicit(1, choice('Success', {
      string: explicit(1, utf8),
      unikernel_info_v4: explicit(9, namedInfoV4List),
      unikernel_info_v5: explicit(11, namedInfoV5List),
      unikernel_info: explicit(13, namedInfoList),
    })),
  }),
});

const fixture = (f: string): Uint8Array =>
  new Uint8Array(readFileSync(join(__dirname, '..', '..', 'test', 'fixtures', 'upstream-2.7.2', 'run1', f)));
const nm = (s: string) => unwrap(parseName(s));
const hdr = (name: string) => ({ version: 5, sequence: 0n, name: nm(name) });

function commandOf(bytes: Uint8Array): UnikernelCmd {
  const w = unwrap(decodeDer(frame, bytes));
  assert.equal(toHex(encodeDer(frame, w)), toHex(bytes), 'the frame re-encodes to the same bytes');
  assert.equal(w.payload.kind, 'command');
  if (w.payload.kind !== 'command') throw new Error('unreachable');
  return w.payload.value.value;
}
function createConfig(cmd: UnikernelCmd): UnikernelConfig {
  assert.equal(cmd.kind, 'create');
  if (cmd.kind !== 'create') throw new Error('unreachable');
  return cmd.value;
}

// ------------------------------------------------------------------ worked examples

const example7 = hex(`
30 4F
   30 15 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 06 3A 68 65 6C 6C 6F
   A0 36 A3 34 B4 32
      30 30
         A0 02 05 00
         01 01 00
         04 04 7F 45 4C 46
         01 01 FF
         A0 02 05 00
         31 03 02 01 00
         02 01 20
         A1 0D 31 0B 30 09 0C 07 73 65 72 76 69 63 65
         A3 03 02 01 01`);

const helloConfig: UnikernelConfig = {
  typ: 'solo5', compressed: false, image: hex('7F454C46'), addName: true, failBehaviour: { kind: 'quit', value: null },
  cpuids: [0], memory: 32, blocks: [], bridges: [{ netif: 'service' }], cpus: 1,
};

test('WIRE.md example 7: create :hello, both directions', () => {
  both(frame, example7, {
    header: hdr(':hello'),
    payload: { kind: 'command', value: { kind: 'unikernel', value: { kind: 'create', value: helloConfig } } },
  });
  // the configuration alone is the inner SEQUENCE
  both(unikernelConfig, example7.subarray(example7.length - 0x32), helloConfig);
});

test('WIRE.md example 13: destroy and restart :hello, both directions', () => {
  const destroy = hex('30 1F 30 15 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 06 3A 68 65 6C 6C 6F A0 06 A3 04 A3 02 05 00');
  both(frame, destroy, {
    header: hdr(':hello'),
    payload: { kind: 'command', value: { kind: 'unikernel', value: { kind: 'destroy', value: null } } },
  });
  const restart = hex('30 21 30 15 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 06 3A 68 65 6C 6C 6F A0 08 A3 06 AE 04 A0 02 05 00');
  both(frame, restart, {
    header: hdr(':hello'),
    payload: {
      kind: 'command',
      value: { kind: 'unikernel', value: { kind: 'restart', value: { kind: 'no_arguments', value: null } } },
    },
  });
  // restart-on-fail rows, inside a configuration
  const withFail = (fb: Uint8Array) =>
    tlv(0x30, SOLO5, FALSE, oct([]), TRUE, fb, tlv(0x31, int(0)), int(32), tlv(0xa3, int(1)));
  const anyCode = unwrap(decodeDer(unikernelConfig, withFail(hex('A1 02 31 00'))));
  assert.deepEqual(anyCode.failBehaviour, { kind: 'restart', value: [] });
  const codes = { ...anyCode, failBehaviour: { kind: 'restart' as const, value: [255, 2, 10] } };
  assert.equal(toHex(encodeDer(unikernelConfig, codes)), toHex(withFail(hex('A1 0C 31 0A 02 01 02 02 01 0A 02 02 00 FF'))));
});

// ------------------------------------------------------------------ recorded upstream frames

test('upstream 2.7.2 run1: create hello (vmmd.8) carries the described configuration', () => {
  const c = createConfig(commandOf(fixture('vmmd.8.000.req.der')));
  assert.equal(c.typ, 'solo5');
  assert.equal(c.compressed, false);
  assert.equal(toHex(c.image.subarray(0, 4)), '7f454c46', 'an ELF image');
  assert.equal(c.image.length, 0x13be8);
  assert.equal(c.startup, undefined);
  assert.equal(c.addName, true);
  assert.deepEqual(c.failBehaviour, { kind: 'quit', value: null });
  assert.deepEqual(c.cpuids, [0]);
  assert.equal(c.memory, 32);
  assert.deepEqual(c.blocks, []);
  assert.deepEqual(c.bridges, []);
  assert.deepEqual(c.arguments, ['Hello_Solo5']);
  assert.equal(c.cpus, 1);
  assert.equal(c.linuxBootPartition, undefined);
});

test('upstream 2.7.2 run1: create blk --block=storage --mem=16 --restart-on-fail --exit-code=3 (vmmd.10)', () => {
  const c = createConfig(commandOf(fixture('vmmd.10.000.req.der')));
  assert.deepEqual(c.failBehaviour, { kind: 'restart', value: [3] });
  assert.equal(c.memory, 16);
  assert.deepEqual(c.cpuids, [0]);
  assert.deepEqual(c.blocks, [{ blockName: 'storage' }]);
  assert.deepEqual(c.bridges, []);
  assert.equal(c.arguments, undefined);
  assert.equal(c.startup, undefined);
  assert.equal(c.cpus, 1);
});

test('upstream 2.7.2 run1: create dept:net --net=service0:br0 --cpu=1 --mem=64 --startup=10 (vmmd.11)', () => {
  const c = createConfig(commandOf(fixture('vmmd.11.000.req.der')));
  assert.equal(c.startup, 10);
  assert.deepEqual(c.cpuids, [1]);
  assert.equal(c.memory, 64);
  assert.deepEqual(c.bridges, [{ netif: 'service0', bridge: 'br0' }]);
  assert.deepEqual(c.blocks, []);
  assert.equal(c.arguments, undefined);
  assert.deepEqual(c.failBehaviour, { kind: 'quit', value: null });
});

test('upstream 2.7.2 run1: create dept:big --net=service0:br0 --mem=512 (vmmd.12)', () => {
  const c = createConfig(commandOf(fixture('vmmd.12.000.req.der')));
  assert.equal(c.memory, 512);
  assert.deepEqual(c.cpuids, [0]);
  assert.equal(c.startup, undefined);
  assert.deepEqual(c.bridges, [{ netif: 'service0', bridge: 'br0' }]);
});

test('upstream 2.7.2 run1: info, destroy and restart requests, empty info replies', () => {
  for (const f of ['vmmd.1.000.req.der', 'vmmd.9.000.req.der', 'vmmd.13.000.req.der', 'vmmd.21.000.req.der'])
    assert.deepEqual(commandOf(fixture(f)), { kind: 'info', value: null }, f);
  for (const f of ['vmmd.14.000.req.der', 'vmmd.15.000.req.der', 'vmmd.20.000.req.der'])
    assert.deepEqual(commandOf(fixture(f)), { kind: 'destroy', value: null }, f);
  assert.deepEqual(commandOf(fixture('vmmd.19.000.req.der')), { kind: 'restart', value: { kind: 'no_arguments', value: null } });
  for (const [f, n] of [['vmmd.1.000.rep.der', ':'], ['vmmd.9.000.rep.der', ':'], ['vmmd.13.000.rep.der', ':dept'], ['vmmd.21.000.rep.der', ':']]) {
    const bytes = fixture(f);
    const w = roundTrip(frame, bytes);
    assert.deepEqual(w, { header: hdr(n), payload: { kind: 'reply', value: { kind: 'unikernel_info', value: [] } } }, f);
  }
});

// ------------------------------------------------------------------ normalisation of the current form

test('UnikernelConfig: absent lists and cpus normalise; encode emits what upstream emits', () => {
  const minimal = tlv(0x30, SOLO5, FALSE, oct([1]), TRUE, QUIT, tlv(0x31, int(0)), int(8));
  const c = unwrap(decodeDer(unikernelConfig, minimal));
  assert.deepEqual(c, {
    typ: 'solo5', compressed: false, image: hex('01'), addName: true, failBehaviour: { kind: 'quit', value: null },
    cpuids: [0], memory: 8, blocks: [], bridges: [], cpus: 1,
  });
  // cpus is always emitted
  assert.equal(toHex(encodeDer(unikernelConfig, c)), toHex(tlv(0x30, minimal.subarray(2), tlv(0xa3, int(1)))));
  // an explicitly empty argument list is A2 02 30 00
  const withArgs = encodeDer(unikernelConfig, { ...c, arguments: [] });
  assert.ok(toHex(withArgs).endsWith('a2023000a303020101'));
  assert.deepEqual(unwrap(decodeDer(unikernelConfig, withArgs)).arguments, []);
});

test('UnikernelConfig: every field, bhyve, several CPUs, boot partition', () => {
  const mac = [0x00, 0xde, 0xad, 0xbe, 0xef, 0x01];
  const bytes = tlv(0x30,
    tlv(0xa1, NULL), TRUE, oct([]), int(20), FALSE, tlv(0xa1, tlv(0x31, int(2), int(3))),
    tlv(0x31, int(0), int(1)), int(2048),
    tlv(0xa0, tlv(0x31, tlv(0x30, str('disk'), str('vol1'), int(4096)))),
    tlv(0xa1, tlv(0x31, tlv(0x30, str('eth1')), tlv(0x30, str('eth0'), str('br0'), oct(mac)))),
    tlv(0xa2, tlv(0x30, str('--foo'), str('bar'))),
    tlv(0xa3, int(2)),
    tlv(0xa4, str('/dev/sda1')));
  const c = roundTrip(unikernelConfig, bytes);
  assert.deepEqual(c, {
    typ: 'bhyve', compressed: true, image: new Uint8Array(0), startup: 20, addName: false,
    failBehaviour: { kind: 'restart', value: [2, 3] }, cpuids: [0, 1], memory: 2048,
    blocks: [{ blockName: 'disk', blockDeviceName: 'vol1', blockSectorSize: 4096 }],
    bridges: [{ netif: 'eth1' }, { netif: 'eth0', bridge: 'br0', mac: new Uint8Array(mac) }],
    arguments: ['--foo', 'bar'], cpus: 2, linuxBootPartition: '/dev/sda1',
  });
  // the JSON form (vmmc_inspect) goes back to the same value
  assert.deepEqual(unikernelConfig.fromJson(unikernelConfig.toJson(c), 'x'), c);
});

// ------------------------------------------------------------------ legacy configurations

test('UnikernelConfigV4 (create-v4 [16]): cpuids {cpuid}, cpus 1, same bytes again', () => {
  const v4 = tlv(0x30, SOLO5, FALSE, oct([0xaa]), int(5), FALSE, QUIT, int(1), int(32),
    tlv(0xa1, tlv(0x31, tlv(0x30, str('service'), str('br0')))));
  const c = roundTrip(unikernelConfigV4, v4);
  assert.deepEqual(c, {
    typ: 'solo5', compressed: false, image: hex('aa'), startup: 5, addName: false,
    failBehaviour: { kind: 'quit', value: null }, cpuids: [1], memory: 32, blocks: [],
    bridges: [{ netif: 'service', bridge: 'br0' }], cpus: 1,
  });
  const cmd = tlv(0xb0, v4);
  assert.deepEqual(roundTrip(unikernelCmd, cmd), { kind: 'create_v4', value: c });
  assert.deepEqual(roundTrip(unikernelCmd, tlv(0xb1, v4)), { kind: 'force_create_v4', value: c });
});

test('UnikernelConfigV3 (create-v3 [9]): startup none, add-name TRUE, same bytes again', () => {
  const mac = [0x02, 0, 0, 0, 0, 0x07];
  const v3 = tlv(0x30, SOLO5, TRUE, oct([1, 2, 3]), tlv(0xa1, tlv(0x31, int(5))), int(2), int(64),
    tlv(0xa0, tlv(0x31, tlv(0x30, str('data'), str('disk0'), int(4096)))),
    tlv(0xa1, tlv(0x31, tlv(0x30, str('net'), oct(mac)))),
    tlv(0xa2, tlv(0x30, str('-v'))));
  const c = roundTrip(unikernelConfigV3, v3);
  assert.deepEqual(c, {
    typ: 'solo5', compressed: true, image: hex('010203'), addName: true,
    failBehaviour: { kind: 'restart', value: [5] }, cpuids: [2], memory: 64,
    blocks: [{ blockName: 'data', blockDeviceName: 'disk0', blockSectorSize: 4096 }],
    bridges: [{ netif: 'net', mac: new Uint8Array(mac) }], arguments: ['-v'], cpus: 1,
  });
  assert.deepEqual(roundTrip(unikernelCmd, tlv(0xa9, v3)), { kind: 'create_v3', value: c });
  assert.deepEqual(roundTrip(unikernelCmd, tlv(0xaa, v3)), { kind: 'force_create_v3', value: c });
});

test('UnikernelConfigV2 (state [2]): block names, bridges with optional host bridge', () => {
  const v2 = tlv(0x30, SOLO5, FALSE, oct([]), QUIT, int(0), int(10),
    tlv(0xa0, tlv(0x31, str('a'), str('bb'))),
    tlv(0xa1, tlv(0x30, tlv(0x30, str('service')), tlv(0x30, str('other'), str('br1')))),
    tlv(0xa2, tlv(0x30)));
  const c = roundTrip(unikernelConfigV2, v2);
  assert.deepEqual(c, {
    typ: 'solo5', compressed: false, image: new Uint8Array(0), addName: true,
    failBehaviour: { kind: 'quit', value: null }, cpuids: [0], memory: 10,
    blocks: [{ blockName: 'a' }, { blockName: 'bb' }],
    bridges: [{ netif: 'service' }, { netif: 'other', bridge: 'br1' }], arguments: [], cpus: 1,
  });
});

test('UnikernelConfigV1 (state [0]): block and network names only', () => {
  const v1 = tlv(0x30, SOLO5, TRUE, oct([9]), tlv(0xa1, tlv(0x31)), int(3), int(128),
    tlv(0xa0, tlv(0x31, str('blk'))),
    tlv(0xa1, tlv(0x31, str('net0'), str('net1'))));
  const c = roundTrip(unikernelConfigV1, v1);
  assert.deepEqual(c, {
    typ: 'solo5', compressed: true, image: hex('09'), addName: true,
    failBehaviour: { kind: 'restart', value: [] }, cpuids: [3], memory: 128,
    blocks: [{ blockName: 'blk' }], bridges: [{ netif: 'net0' }, { netif: 'net1' }], cpus: 1,
  });
});

test('UnikernelConfigV0 (state [1]): solo5, quit, compressed from the image alternative', () => {
  const v0 = tlv(0x30, int(3), int(16), str('block'), tlv(0x30, str('tap')), tlv(0xa2, oct([0xaa, 0xbb])),
    tlv(0x30, str('-l')));
  const c = roundTrip(unikernelConfigV0, v0);
  assert.deepEqual(c, {
    typ: 'solo5', compressed: true, image: hex('aabb'), addName: true, failBehaviour: { kind: 'quit', value: null },
    cpuids: [3], memory: 16, blocks: [{ blockName: 'block' }], bridges: [{ netif: 'tap' }], arguments: ['-l'],
    cpus: 1,
  });
  const minimal = tlv(0x30, int(0), int(8), tlv(0xa0, oct([])));
  assert.deepEqual(roundTrip(unikernelConfigV0, minimal), {
    typ: 'solo5', compressed: false, image: new Uint8Array(0), addName: true,
    failBehaviour: { kind: 'quit', value: null }, cpuids: [0], memory: 8, blocks: [], bridges: [], cpus: 1,
  });
  // the architecture is not kept (as upstream): hvt-arm64 decodes as uncompressed and re-encodes as hvt-amd64
  const arm = tlv(0x30, int(0), int(8), tlv(0xa1, oct([1])));
  const a = unwrap(decodeDer(unikernelConfigV0, arm));
  assert.equal(a.compressed, false);
  assert.equal(toHex(encodeDer(unikernelConfigV0, a)), toHex(tlv(0x30, int(0), int(8), tlv(0xa0, oct([1])))));
  assert.throws(() => encodeDer(unikernelConfigV0, { ...c, blocks: [{ blockName: 'a' }, { blockName: 'b' }] }), TypeError);
});

test('single-CPU legacy forms refuse to encode anything but exactly one CPU id', () => {
  const two: UnikernelConfig = { ...helloConfig, cpuids: [0, 1] };
  const none: UnikernelConfig = { ...helloConfig, cpuids: [] };
  for (const c of [unikernelConfigV4, unikernelConfigV3, unikernelConfigV2, unikernelConfigV1, unikernelConfigV0]) {
    assert.throws(() => encodeDer(c, two), TypeError, c.what);
    assert.throws(() => encodeDer(c, none), TypeError, c.what);
  }
  const args: UnikernelArgs = { failBehaviour: { kind: 'quit', value: null }, addName: true, cpuids: [0, 1], memory: 1, blocks: [], bridges: [], cpus: 1 };
  assert.throws(() => encodeDer(unikernelArgsV1, args), TypeError);
  assert.throws(() => encodeDer(unikernelArgsV0, args), TypeError);
});

// ------------------------------------------------------------------ restart arguments

test('UnikernelArgs and the legacy V0/V1 forms, inside restart [14]', () => {
  const v0 = tlv(0x30, QUIT, int(0), int(32));
  const a0 = roundTrip(unikernelArgsV0, v0);
  assert.deepEqual(a0, {
    failBehaviour: { kind: 'quit', value: null }, addName: true, cpuids: [0], memory: 32, blocks: [], bridges: [], cpus: 1,
  });
  const v1 = tlv(0x30, tlv(0xa1, tlv(0x31)), int(7), FALSE, int(1), int(32), tlv(0xa2, tlv(0x30)));
  const a1 = roundTrip(unikernelArgsV1, v1);
  assert.deepEqual(a1, {
    failBehaviour: { kind: 'restart', value: [] }, startup: 7, addName: false, cpuids: [1], memory: 32,
    blocks: [], bridges: [], arguments: [], cpus: 1,
  });
  const cur = tlv(0x30, QUIT, TRUE, tlv(0x31, int(0), int(1)), int(32),
    tlv(0xa1, tlv(0x31, tlv(0x30, str('service')))), tlv(0xa3, int(2)), tlv(0xa4, str('/dev/sda1')));
  const a = roundTrip(unikernelArgs, cur);
  assert.deepEqual(a, {
    failBehaviour: { kind: 'quit', value: null }, addName: true, cpuids: [0, 1], memory: 32, blocks: [],
    bridges: [{ netif: 'service' }], cpus: 2, linuxBootPartition: '/dev/sda1',
  });
  assert.deepEqual(roundTrip(restartArgs, tlv(0xa1, v0)), { kind: 'arguments_v0', value: a0 });
  assert.deepEqual(roundTrip(unikernelCmd, tlv(0xae, tlv(0xa2, v1))),
    { kind: 'restart', value: { kind: 'arguments_v1', value: a1 } });
  assert.deepEqual(roundTrip(unikernelCmd, tlv(0xae, tlv(0xa3, cur))),
    { kind: 'restart', value: { kind: 'arguments', value: a } });
  // without cpus the current form decodes with 1 and re-encodes it
  const noCpus = tlv(0x30, QUIT, TRUE, tlv(0x31, int(0)), int(32));
  assert.equal(unwrap(decodeDer(unikernelArgs, noCpus)).cpus, 1);
});

test('UnikernelCmd: get, legacy info commands, every tag round trips', () => {
  assert.deepEqual(roundTrip(unikernelCmd, tlv(0xab, int(9))), { kind: 'get', value: 9 });
  assert.deepEqual(roundTrip(unikernelCmd, tlv(0xab, int(0))), { kind: 'get', value: 0 });
  assert.deepEqual(roundTrip(unikernelCmd, tlv(0xaf, NULL)), { kind: 'info_v4', value: null });
  assert.deepEqual(roundTrip(unikernelCmd, tlv(0xb2, NULL)), { kind: 'info_v5', value: null });
  assert.deepEqual(roundTrip(unikernelCmd, tlv(0xb3, NULL)), { kind: 'info', value: null });
  const cfg = encodeDer(unikernelConfig, helloConfig);
  assert.deepEqual(roundTrip(unikernelCmd, tlv(0xb5, cfg)), { kind: 'force_create', value: helloConfig });
});

// ------------------------------------------------------------------ info replies

const digest = Array.from({ length: 32 }, (_, i) => i);
const mac1 = [0x00, 0x16, 0x3e, 0x01, 0x02, 0x03];
const infoBlocks = tlv(0xa0, tlv(0x31, tlv(0x30, str('storage'), str('storage'), int(512), int(4))));
const infoBridges = tlv(0xa1, tlv(0x31, tlv(0x30, str('service'), str('br0'), oct(mac1))));
const started = tlv(0xa3, tlv(0x18, ascii('20240102030405.678Z')));
const infoValue: UnikernelInfo = {
  typ: 'solo5', startup: 50, failBehaviour: { kind: 'quit', value: null }, cpuids: [0], memory: 32,
  digest: new Uint8Array(digest),
  blocks: [{ unikernelDevice: 'storage', hostDevice: 'storage', sectorSize: 512, blockSize: 4 }],
  bridges: [{ unikernelDevice: 'service', hostDevice: 'br0', mac: new Uint8Array(mac1) }],
  arguments: ['-l', '*:debug'], started: Date.UTC(2024, 0, 2, 3, 4, 5, 678), cpus: 1,
};

test('UnikernelInfo (reply [13]): both directions; started and cpus always emitted', () => {
  const bytes = tlv(0x30, SOLO5, int(50), QUIT, tlv(0x31, int(0)), int(32), oct(digest), infoBlocks, infoBridges,
    tlv(0xa2, tlv(0x30, str('-l'), str('*:debug'))), started, tlv(0xa4, int(1)));
  both(unikernelInfo, bytes, infoValue);
  const list = tlv(0x30, tlv(0x30, str('dept:net'), bytes));
  both(namedInfoList, list, [{ name: nm('dept:net'), info: infoValue }]);
  // a reply frame carrying it
  const w = {
    header: hdr('dept:'),
    payload: { kind: 'reply' as const, value: { kind: 'unikernel_info' as const, value: [{ name: nm('dept:net'), info: infoValue }] } },
  };
  assert.deepEqual(roundTrip(frame, encodeDer(frame, w)), w);
  // without started and cpus: 1970 and 1
  const bare = tlv(0x30, SOLO5, QUIT, tlv(0x31, int(0)), int(32), oct(digest));
  const i = unwrap(decodeDer(unikernelInfo, bare));
  assert.deepEqual(i, {
    typ: 'solo5', failBehaviour: { kind: 'quit', value: null }, cpuids: [0], memory: 32,
    digest: new Uint8Array(digest), blocks: [], bridges: [], started: 0, cpus: 1,
  });
  assert.equal(toHex(encodeDer(unikernelInfo, i)),
    toHex(tlv(0x30, bare.subarray(2), tlv(0xa3, tlv(0x18, ascii('19700101000000Z'))), tlv(0xa4, int(1)))));
});

test('UnikernelInfoV5 and V4 (replies [11] and [9]): single CPU, V4 without startup', () => {
  const v5 = tlv(0x30, SOLO5, int(50), QUIT, int(0), int(32), oct(digest), infoBlocks, infoBridges,
    tlv(0xa2, tlv(0x30, str('-l'), str('*:debug'))), started);
  both(unikernelInfoV5, v5, infoValue);
  const { startup: _s, ...noStartup } = infoValue;
  const v4 = tlv(0x30, SOLO5, QUIT, int(0), int(32), oct(digest), infoBlocks, infoBridges,
    tlv(0xa2, tlv(0x30, str('-l'), str('*:debug'))), started);
  both(unikernelInfoV4, v4, noStartup);
  both(namedInfoV5List, tlv(0x30, tlv(0x30, str(':hello'), v5)), [{ name: nm(':hello'), info: infoValue }]);
  both(namedInfoV4List, tlv(0x30, tlv(0x30, str(':hello'), v4)), [{ name: nm(':hello'), info: noStartup }]);
  // V4 without started decodes as 1970
  const v4bare = tlv(0x30, SOLO5, QUIT, int(3), int(32), oct([]));
  assert.equal(unwrap(decodeDer(unikernelInfoV4, v4bare)).started, 0);
  assert.deepEqual(unwrap(decodeDer(unikernelInfoV4, v4bare)).cpuids, [3]);
  assert.throws(() => encodeDer(unikernelInfoV5, { ...infoValue, cpuids: [0, 1] }), TypeError);
  assert.throws(() => encodeDer(unikernelInfoV4, { ...infoValue, cpuids: [] }), TypeError);
});

// ------------------------------------------------------------------ strictness

test('decoding is strict and every error names the place', () => {
  const cfg = (...fields: (Uint8Array | number[])[]) => tlv(0xb4, tlv(0x30, ...fields));
  const head: (Uint8Array | number[])[] = [SOLO5, FALSE, oct([]), TRUE];
  const tail = [tlv(0x31, int(0)), int(32)];

  // wrong tag: fail-behaviour [2]
  const wrongTag = decodeError(unikernelCmd, cfg(...head, tlv(0xa2, NULL), ...tail));
  assert.match(wrongTag, /UnikernelCmd\.create\.failBehaviour/);
  assert.match(wrongTag, /FailBehaviour \[2\]/);
  // wrong universal tag: memory as OCTET STRING
  assert.match(decodeError(unikernelCmd, cfg(...head, QUIT, tlv(0x31, int(0)), oct([32]))),
    /UnikernelCmd\.create\.memory: expected INTEGER/);
  // retired command tags
  for (const t of [0, 1, 2, 4, 5, 6, 7, 8, 12, 13]) {
    const e = decodeError(unikernelCmd, tlv(0xa0 | t, NULL));
    assert.match(e, new RegExp(`\\[${t}\\].*retired`), e);
  }
  // unknown tag
  assert.match(decodeError(unikernelCmd, tlv(0xb6, NULL)), /unknown UnikernelCmd \[22\]/);
  // unknown restart alternative
  assert.match(decodeError(unikernelCmd, tlv(0xae, tlv(0xa4, NULL))), /UnikernelCmd\.restart.*RestartArgs \[4\]/);
  // trailing field after cpus
  assert.match(decodeError(unikernelCmd, cfg(...head, QUIT, ...tail, tlv(0xa3, int(1)), int(0))),
    /UnikernelCmd\.create: unexpected INTEGER after the last field of UnikernelConfig/);
  // trailing field in a legacy form
  assert.match(decodeError(unikernelConfigV3, tlv(0x30, SOLO5, FALSE, oct([]), QUIT, int(0), int(1), tlv(0xa3, int(1)))),
    /unexpected \[3\] after the last field of UnikernelConfigV3/);
  // missing field
  assert.match(decodeError(unikernelCmd, cfg(...head, QUIT, tlv(0x31, int(0)))), /UnikernelCmd\.create\.memory: missing/);
  // MacAddr of 5 octets
  const badMac = decodeError(unikernelCmd, cfg(...head, QUIT, ...tail,
    tlv(0xa1, tlv(0x31, tlv(0x30, str('service'), oct([1, 2, 3, 4, 5]))))));
  assert.match(badMac, /UnikernelCmd\.create\.bridges\[0\]\.mac: MacAddr must be 6 octets, got 5/);
  assert.match(decodeError(namedInfoList, tlv(0x30, tlv(0x30, str(':a'), tlv(0x30, SOLO5, QUIT, tlv(0x31, int(0)), int(1), oct([]),
    tlv(0xa1, tlv(0x31, tlv(0x30, str('a'), str('b'), oct([1, 2, 3, 4, 5, 6, 7]))))))))
  , /\[0\]\.info\.bridges\[0\]\.mac: MacAddr must be 6 octets, got 7/);
  // INTEGER out of range: 2^53 MB of memory, and a 9-octet cpuid
  assert.match(decodeError(unikernelCmd, cfg(...head, QUIT, tlv(0x31, int(0)), tlv(0x02, [0x20, 0, 0, 0, 0, 0, 0]))),
    /UnikernelCmd\.create\.memory: INTEGER 9007199254740992 out of range/);
  assert.match(decodeError(unikernelConfigV4, tlv(0x30, SOLO5, FALSE, oct([]), TRUE, QUIT, tlv(0x02, [1, 0, 0, 0, 0, 0, 0, 0, 0]), int(1))),
    /out of range/);
  // an invalid name in an info list
  assert.match(decodeError(namedInfoList, tlv(0x30, tlv(0x30, str('a::b'), tlv(0x30)))), /\[0\]\.name: invalid name/);
  // a BOOLEAN that is neither 00 nor FF (refused by the DER check, which names the offset)
  assert.match(decodeError(unikernelCmd, cfg(SOLO5, tlv(0x01, [1]), oct([]), TRUE, QUIT, ...tail)),
    /UnikernelCmd: at byte 8: BOOLEAN/);
  // V0 image with an unknown alternative
  assert.match(decodeError(unikernelConfigV0, tlv(0x30, int(0), int(8), tlv(0xa3, oct([])))),
    /UnikernelConfigV0\.image: unknown ImageV0 \[3\]/);
});

// ------------------------------------------------------------------ properties

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,9}$/);
const arbConfig = (cpuids: fc.Arbitrary<number[]>): fc.Arbitrary<UnikernelConfig> =>
  fc.record({
    typ: fc.constantFrom('solo5' as const, 'bhyve' as const),
    compressed: fc.boolean(),
    image: fc.uint8Array({ maxLength: 16 }),
    startup: fc.option(fc.integer({ min: -5, max: 100 }), { nil: undefined }),
    addName: fc.boolean(),
    failBehaviour: fc.oneof(
      fc.constant({ kind: 'quit' as const, value: null }),
      fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 4 })
        .map((xs) => ({ kind: 'restart' as const, value: [...xs].sort((a, b) => a - b) }))),
    cpuids,
    memory: fc.integer({ min: 0, max: 1 << 20 }),
    blocks: fc.uniqueArray(label, { maxLength: 3 }).map((xs) => xs.map((blockName) => ({ blockName }))),
    bridges: fc.uniqueArray(label, { maxLength: 3 }).map((xs) => xs.map((netif) => ({ netif }))),
    arguments: fc.option(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), { nil: undefined }),
    cpus: fc.integer({ min: 1, max: 4 }),
  }).map((c) => {
    const out = { ...c } as UnikernelConfig;
    if (out.startup === undefined) delete out.startup;
    if (out.arguments === undefined) delete out.arguments;
    return out;
  });

test('property: encode then decode is the identity on the current form; legacy forms are stable', () => {
  fc.assert(fc.property(arbConfig(fc.uniqueArray(fc.integer({ min: 0, max: 63 }), { minLength: 1, maxLength: 3 })), (c) => {
    // SET OF comes back in DER order, i.e. sorted for small non-negative integers and for these names
    const bytes = encodeDer(unikernelConfig, c);
    const d = unwrap(decodeDer(unikernelConfig, bytes));
    assert.equal(toHex(encodeDer(unikernelConfig, d)), toHex(bytes));
    assert.deepEqual(new Set(d.cpuids), new Set(c.cpuids));
    assert.equal(d.memory, c.memory);
    assert.deepEqual(d.arguments, c.arguments);
  }), { numRuns: RUNS });
  const legacy = [unikernelConfigV4, unikernelConfigV3, unikernelConfigV2, unikernelConfigV1, unikernelConfigV0];
  fc.assert(fc.property(arbConfig(fc.integer({ min: 0, max: 63 }).map((x) => [x])), fc.constantFrom(...legacy), (c, codec) => {
    const cfg = codec === unikernelConfigV0 ? { ...c, blocks: c.blocks.slice(0, 1) } : c;
    const bytes = encodeDer(codec, cfg);
    const d = unwrap(decodeDer(codec, bytes));
    assert.equal(toHex(encodeDer(codec, d)), toHex(bytes), codec.what);
    assert.deepEqual(d.cpuids, c.cpuids);
    assert.equal(d.cpus, 1);
  }), { numRuns: RUNS });
});

test('property: decoders never throw on mutated or truncated input', () => {
  const samples: [Codec<unknown>, Uint8Array][] = [
    [frame as Codec<unknown>, example7],
    [unikernelCmd as Codec<unknown>, encodeDer(unikernelCmd, { kind: 'restart', value: { kind: 'arguments', value: {
      failBehaviour: { kind: 'restart', value: [3] }, startup: 1, addName: true, cpuids: [0, 1], memory: 32,
      blocks: [{ blockName: 'a', blockDeviceName: 'b', blockSectorSize: 512 }],
      bridges: [{ netif: 'service', bridge: 'br0', mac: new Uint8Array(6) }], arguments: ['x'], cpus: 2,
    } } })],
    [namedInfoList as Codec<unknown>, encodeDer(namedInfoList, [{ name: nm(':a'), info: infoValue }])],
  ];
  fc.assert(fc.property(fc.nat(samples.length - 1), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(),
    (which, pos, byte, truncate) => {
      const [c, good] = samples[which];
      const b = good;
      const i = pos % b.length;
      const bad = truncate ? b.subarray(0, i) : Uint8Array.from(b, (x, j) => (j === i ? byte : x));
      const r = decodeDer(c, bad);
      if (!r.ok) assert.equal(typeof r.error, 'string');
    }), { numRuns: RUNS * 3 });
});
