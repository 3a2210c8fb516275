/**
 * The worked examples of WIRE.md §6 and CERTS.md §2, byte-exact in both directions, and
 * the decoder's strictness: every malformed input gives an error Result saying what.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseName } from '../src/core/name.js';
import { type Result, unwrap } from '../src/core/result.js';
import { type Time, decodeDer, encodeDer, parseGeneralizedTime } from '../src/core/asn.js';
import { failBehaviour } from '../src/core/wire/common.js';
import {
  type Command, type Wire, ALBATROSS_OID, command, decodeCertExtension, decodeWire, describeCommand,
  commandEndpoint, encodeCertExtension, encodeWire, failure, makeHeader, reply, data,
} from '../src/core/wire/wire.js';
import {
  type LogEvent, decodeLogWire, encodeLogRecord, encodeLogWire, logMessage, logRecord, logEventV4,
  readLogFile,
} from '../src/core/wire/log.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/[^0-9a-fA-F]/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase().replace(/(..)(?!$)/g, '$1 ');
const nm = (s: string) => unwrap(parseName(s));
const time = (s: string): Time => unwrap(parseGeneralizedTime(s));

/** A frame's body after checking its 4-octet length. */
function body(frameHex: string): Uint8Array {
  const f = hex(frameHex);
  assert.equal(new DataView(f.buffer, f.byteOffset).getUint32(0), f.length - 4, 'frame length');
  return f.subarray(4);
}

/** bytes -> decodeWire -> expected, and expected -> encodeWire -> bytes. */
function both(frameHex: string, expected: Wire): void {
  const b = body(frameHex);
  const r = decodeWire(b);
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.deepEqual(r.value, expected);
  assert.equal(toHex(encodeWire(expected)), toHex(b));
}

/** Decoding must give an error (never throw) whose message contains `what`. */
function refused<T>(f: () => Result<T>, what: string | RegExp): string {
  let r: Result<T> | undefined;
  assert.doesNotThrow(() => {
    r = f();
  });
  assert.ok(r !== undefined && !r.ok, `expected an error mentioning ${what}`);
  if (typeof what === 'string') assert.ok(r.error.includes(what), `error ${JSON.stringify(r.error)} should mention ${JSON.stringify(what)}`);
  else assert.match(r.error, what);
  return r.error;
}

// A tiny DER builder for the malformed inputs.
function tlv(tag: number, ...parts: (Uint8Array | string)[]): Uint8Array {
  const content = Buffer.concat(parts.map((p) => (typeof p === 'string' ? hex(p) : p)));
  const n = content.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return new Uint8Array(Buffer.concat([Buffer.from([tag, ...len]), content]));
}
const HDR_FOO = '30 13 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 04 3A 66 6F 6F';
const HDR_ROOT = '30 10 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 01 3A';
const msg = (hdr: string, payload: string | Uint8Array) => tlv(0x30, hdr, payload);

const h0 = (s: string) => makeHeader(nm(s));

// ------------------------------------------------------------------ §6 examples

test('example 1: console subscribe, last 20 lines of foo', () => {
  both(
    '00 00 00 22 30 20 30 13 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 04 3A 66 6F 6F A0 09 A0 07 A2 05 A1 03 02 01 14',
    command(nm(':foo'), { kind: 'console', value: { kind: 'subscribe', value: { kind: 'count', value: 20 } } }),
  );
});

test('example 2: unikernel info for the root-level label foo.bar', () => {
  both(
    '00 00 00 23 30 21 30 17 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 08 3A 66 6F 6F 2E 62 61 72 A0 06 A3 04 B3 02 05 00',
    command(nm(':foo.bar'), { kind: 'unikernel', value: { kind: 'info', value: null } }),
  );
  // bar under the path foo
  const w = encodeWire(command(nm('foo:bar'), { kind: 'unikernel', value: { kind: 'info', value: null } }));
  assert.ok(toHex(w).includes('0C 07 66 6F 6F 3A 62 61 72'));
});

test('example 3: failure "test" to the root', () => {
  both(
    '00 00 00 1C 30 1A 30 10 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 01 3A A2 06 0C 04 74 65 73 74',
    failure(h0(':'), 'test'),
  );
});

test('example 4: policy add for path user', () => {
  both(
    `00 00 00 3A 30 38 30 14 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 05 75 73 65 72 3A
     A0 20 A4 1E A1 1C 30 1A 30 06 02 01 00 02 01 01 02 01 10 02 02 04 00 30 09 0C 07 73 65 72 76 69 63 65`,
    command(nm('user:'), {
      kind: 'policy',
      value: { kind: 'add', value: { cpuids: [0, 1], unikernels: 16n, memory: 1024, bridges: ['service'] } },
    }),
  );
});

test('example 5: reply string "created unikernel", sequence 1', () => {
  both(
    `00 00 00 31 30 2F 30 16 02 01 05 04 08 00 00 00 00 00 00 00 01 0C 07 66 6F 6F 3A 62 61 72
     A1 15 A1 13 0C 11 63 72 65 61 74 65 64 20 75 6E 69 6B 65 72 6E 65 6C`,
    reply(makeHeader(nm('foo:bar'), 1n), { kind: 'string', value: 'created unikernel' }),
  );
});

test('example 6: console data line with milliseconds', () => {
  const t = time('20240102030405.678Z');
  assert.equal(t, Date.UTC(2024, 0, 2, 3, 4, 5, 678));
  both(
    `00 00 00 39 30 37 30 13 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 04 3A 66 6F 6F
     A3 20 A3 1E 30 1C 18 13 32 30 32 34 30 31 30 32 30 33 30 34 30 35 2E 36 37 38 5A 0C 05 68 65 6C 6C 6F`,
    data(h0(':foo'), { kind: 'console', value: { timestamp: t, line: 'hello' } }),
  );
});

test('example 7: create :hello', () => {
  both(
    `00 00 00 51 30 4F 30 15 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 06 3A 68 65 6C 6C 6F
     A0 36 A3 34 B4 32 30 30 A0 02 05 00 01 01 00 04 04 7F 45 4C 46 01 01 FF A0 02 05 00
     31 03 02 01 00 02 01 20 A1 0D 31 0B 30 09 0C 07 73 65 72 76 69 63 65 A3 03 02 01 01`,
    command(nm(':hello'), {
      kind: 'unikernel',
      value: {
        kind: 'create',
        value: {
          typ: 'solo5', compressed: false, image: hex('7F 45 4C 46'), addName: true,
          failBehaviour: { kind: 'quit', value: null }, cpuids: [0], memory: 32, blocks: [],
          bridges: [{ netif: 'service' }], cpus: 1,
        },
      },
    }),
  );
});

const OID_DER = '06 09 2B 06 01 04 01 83 85 2C 2A';

/** DER of an OBJECT IDENTIFIER from its dotted form (to check ALBATROSS_OID). */
function oidDer(oid: string): string {
  const arcs = oid.split('.').map(Number);
  const out = [40 * arcs[0] + arcs[1]];
  for (const a of arcs.slice(2)) {
    const b = [a & 0x7f];
    for (let x = a >> 7; x > 0; x >>= 7) b.unshift((x & 0x7f) | 0x80);
    out.push(...b);
  }
  return toHex(new Uint8Array([6, out.length, ...out]));
}

/** Splits a complete non-critical X.509 Extension into its extnValue, checking the OID. */
function extnValue(extHex: string): Uint8Array {
  const e = hex(extHex);
  assert.equal(toHex(e.subarray(2, 13)), OID_DER);
  assert.equal(e[13], 0x04);
  assert.equal(e[14], e.length - 15);
  return e.subarray(15);
}

test('example 8 and CERTS.md §2: certificate extensions', () => {
  assert.equal(oidDer(ALBATROSS_OID), OID_DER);
  const cases: [string, Command][] = [
    [
      '30 26 06 09 2B 06 01 04 01 83 85 2C 2A 04 19 30 17 02 01 05 A4 12 A1 10 30 0E 30 03 02 01 00 02 01 01 02 02 02 00 30 00',
      { kind: 'policy', value: { kind: 'add', value: { cpuids: [0], unikernels: 1n, memory: 512, bridges: [] } } },
    ],
    [
      '30 1B 06 09 2B 06 01 04 01 83 85 2C 2A 04 0E 30 0C 02 01 05 A0 07 A2 05 A1 03 02 01 14',
      { kind: 'console', value: { kind: 'subscribe', value: { kind: 'count', value: 20 } } },
    ],
  ];
  for (const [ext, cmd] of cases) {
    const v = extnValue(ext);
    assert.deepEqual(decodeCertExtension(v), { ok: true, value: { version: 5, command: cmd } });
    assert.equal(toHex(encodeCertExtension(cmd)), toHex(v));
  }
  assert.deepEqual(decodeCertExtension(hex('30 0C 02 01 04 A0 07 A2 05 A1 03 02 01 14')), { ok: false, error: 'unknown version number 0x4' });
  refused(() => decodeCertExtension(hex('30 0C 02 01 05 A0 07 A2 05 A1 03 02 01 14 00')), 'trailing bytes');
});

test('example 9: stats add from vmmd', () => {
  both(
    `00 00 00 3E 30 3C 30 16 02 01 05 04 08 00 00 00 00 00 00 00 01 0C 07 66 6F 6F 3A 62 61 72
     A0 22 A1 20 A0 1E 30 1C 0C 00 02 02 04 D2 30 14 30 12
     0C 07 73 65 72 76 69 63 65 0C 07 76 6D 6D 74 61 70 30`,
    command(nm('foo:bar'), {
      kind: 'stats',
      value: { kind: 'add', value: { vmmdev: '', pid: 1234, network: [{ bridge: 'service', tap: 'vmmtap0' }] } },
    }, 1n),
  );
});

test('example 10: policy info reply with the root policy', () => {
  both(
    `00 00 00 49 30 47 30 10 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 01 3A
     A1 33 A2 31 30 2F 30 2D 0C 01 3A 30 28 30 0C 02 01 00 02 01 01 02 01 02 02 01 03
     02 08 3F FF FF FF FF FF FF FF 02 02 3A 98 02 03 01 86 A0 30 05 0C 03 62 72 30`,
    reply(h0(':'), {
      kind: 'policies',
      value: [{
        name: nm(':'),
        policy: { cpuids: [0, 1, 2, 3], unikernels: 2n ** 62n - 1n, memory: 15000, block: 100000, bridges: ['br0'] },
      }],
    }),
  );
});

test('example 11: block add 10 MB for foo:data', () => {
  both(
    `00 00 00 24 30 22 30 17 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 08 66 6F 6F 3A 64 61 74 61
     A0 07 A5 05 A1 03 02 01 0A`,
    command(nm('foo:data'), { kind: 'block', value: { kind: 'add', value: 10 } }),
  );
});

test('example 12: block dump stream pieces', () => {
  both(
    `00 00 00 26 30 24 30 17 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 08 66 6F 6F 3A 64 61 74 61
     A3 09 A4 07 A0 05 04 03 01 02 03`,
    data(h0('foo:data'), { kind: 'block', value: { kind: 'chunk', value: hex('01 02 03') } }),
  );
  both(
    `00 00 00 23 30 21 30 17 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 08 66 6F 6F 3A 64 61 74 61
     A3 06 A4 04 A1 02 05 00`,
    data(h0('foo:data'), { kind: 'block', value: { kind: 'eof', value: null } }),
  );
});

test('example 13: other short messages', () => {
  both('00 00 00 1A 30 18 30 10 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 01 3A A1 04 A0 02 05 00',
    reply(h0(':'), { kind: 'empty', value: null }));
  both('00 00 00 1C 30 1A 30 10 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 01 3A A0 06 A1 04 A3 02 05 00',
    command(nm(':'), { kind: 'stats', value: { kind: 'initial', value: null } }));
  both('00 00 00 21 30 1F 30 15 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 06 3A 68 65 6C 6C 6F A0 06 A3 04 A3 02 05 00',
    command(nm(':hello'), { kind: 'unikernel', value: { kind: 'destroy', value: null } }));
  both('00 00 00 23 30 21 30 15 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 06 3A 68 65 6C 6C 6F A0 08 A3 06 AE 04 A0 02 05 00',
    command(nm(':hello'), { kind: 'unikernel', value: { kind: 'restart', value: { kind: 'no_arguments', value: null } } }));
  both('00 00 00 1F 30 1D 30 13 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 04 66 6F 6F 3A A0 06 A0 04 A3 02 05 00',
    command(nm('foo:'), { kind: 'console', value: { kind: 'list_inactive', value: null } }));
  both('00 00 00 25 30 23 30 13 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 04 66 6F 6F 3A A1 0C AC 0A 30 08 0C 02 3A 61 0C 02 3A 62',
    reply(h0('foo:'), { kind: 'consoles', value: [nm(':a'), nm(':b')] }));

  // restart-on-fail rows (FailBehaviour alone)
  assert.equal(toHex(encodeDer(failBehaviour, { kind: 'restart', value: [] })), 'A1 02 31 00');
  assert.deepEqual(decodeDer(failBehaviour, hex('A1 02 31 00')), { ok: true, value: { kind: 'restart', value: [] } });
  const sorted = 'A1 0C 31 0A 02 01 02 02 01 0A 02 02 00 FF';
  assert.equal(toHex(encodeDer(failBehaviour, { kind: 'restart', value: [255, 2, 10] })), sorted);
  assert.deepEqual(decodeDer(failBehaviour, hex(sorted)), { ok: true, value: { kind: 'restart', value: [2, 10, 255] } });
});

test('§5 quick tag prefixes of the fixed-size commands', () => {
  const cases: [Command, string][] = [
    [{ kind: 'console', value: { kind: 'list_inactive', value: null } }, 'A0 06 A0 04 A3 02 05 00'],
    [{ kind: 'stats', value: { kind: 'remove', value: null } }, 'A0 06 A1 04 A1 02 05 00'],
    [{ kind: 'stats', value: { kind: 'subscribe', value: null } }, 'A0 06 A1 04 A2 02 05 00'],
    [{ kind: 'policy', value: { kind: 'info', value: null } }, 'A0 06 A4 04 A0 02 05 00'],
    [{ kind: 'policy', value: { kind: 'remove', value: null } }, 'A0 06 A4 04 A2 02 05 00'],
    [{ kind: 'block', value: { kind: 'info', value: null } }, 'A0 06 A5 04 A0 02 05 00'],
    [{ kind: 'block', value: { kind: 'remove', value: null } }, 'A0 06 A5 04 A2 02 05 00'],
    [{ kind: 'block', value: { kind: 'set', value: true } }, 'A0 07 A5 05 A7 03 01 01 FF'],
    [{ kind: 'block', value: { kind: 'set', value: false } }, 'A0 07 A5 05 A7 03 01 01 00'],
    [{ kind: 'block', value: { kind: 'dump', value: 9 } }, 'A0 07 A5 05 A6 03 02 01 09'],
    [{ kind: 'unikernel', value: { kind: 'get', value: 0 } }, 'A0 07 A3 05 AB 03 02 01 00'],
  ];
  for (const [cmd, payload] of cases) {
    const b = encodeWire(command(nm(':'), cmd));
    assert.equal(toHex(b.subarray(20)), payload, describeCommand(cmd));
    assert.deepEqual(unwrap(decodeWire(b)).payload, { kind: 'command', value: cmd });
  }
  const bdi = encodeWire(reply(h0(':'), { kind: 'block_device_image', value: true }));
  assert.equal(toHex(bdi.subarray(20)), 'A1 05 AA 03 01 01 FF');
});

test('console add carries values up to 2^62-1', () => {
  for (const n of [0n, 30n, 2n ** 62n - 1n]) {
    const w = command(nm(':hello'), { kind: 'console', value: { kind: 'add', value: n } }, 1n);
    assert.deepEqual(decodeWire(encodeWire(w)), { ok: true, value: w });
  }
  const top = encodeWire(command(nm(':x'), { kind: 'console', value: { kind: 'add', value: 2n ** 62n - 1n } }));
  assert.ok(toHex(top).endsWith('02 08 3F FF FF FF FF FF FF FF'));
});

test('console subscribe since encodes GeneralizedTime with exactly three fraction digits', () => {
  const since = time('20240102030405.100Z');
  const w = command(nm(':foo'), { kind: 'console', value: { kind: 'subscribe', value: { kind: 'since', value: since } } });
  const b = encodeWire(w);
  assert.ok(toHex(b).endsWith(toHex(Buffer.from('20240102030405.100Z'))));
  assert.deepEqual(decodeWire(b), { ok: true, value: w });
  const whole = encodeWire(command(nm(':foo'), { kind: 'console', value: { kind: 'subscribe', value: { kind: 'since', value: time('20240102030405Z') } } }));
  assert.ok(toHex(whole).endsWith(toHex(Buffer.from('20240102030405Z'))));
});

test('statistics data: rusage, ifdata, vmm stats and IMPLICIT kinfo-mem round trip', () => {
  const tv = (s: bigint, us: number) => ({ seconds: s, microseconds: us });
  const ru = {
    utime: tv(1n, 500), stime: tv(0n, 42), maxrss: 4096n, ixrss: 0n, idrss: 0n, isrss: 0n, minflt: 10n, majflt: 0n,
    nswap: 0n, inblock: 0n, outblock: 8n, msgsnd: 0n, msgrcv: 0n, nsignals: 0n, nvcsw: 3n, nivcsw: -1n,
  };
  const ifd = {
    bridge: 'service', flags: -2147483648, sendLength: 0, maxSendLength: 2147483647, sendDrops: 0, mtu: 1500,
    baudrate: 10000000000n, inputPackets: 1n, inputErrors: 0n, outputPackets: 2n, outputErrors: 0n, collisions: 0n,
    inputBytes: 2n ** 63n - 1n, outputBytes: -(2n ** 63n), inputMcast: 0n, outputMcast: 0n, inputDropped: 0n, outputDropped: 0n,
  };
  const km = { vsize: 1n, rss: 2n, tsize: 3n, dsize: 4n, ssize: 5n, runtime: 6n, cow: 7, start: tv(8n, 9) };
  const w = data(h0(':net'), {
    kind: 'statistics',
    value: { resourceUsage: ru, ifdata: [ifd, { ...ifd, bridge: 'other' }], vmmStats: [{ key: 'k', value: 5n }], kinfoMem: km },
  });
  const b = encodeWire(w);
  assert.deepEqual(decodeWire(b), { ok: true, value: w });
  // kinfo-mem is [1] IMPLICIT: A1 directly around its fields (first field an Int64 OCTET STRING)
  assert.ok(toHex(b).includes('A1 4E 04 08 00 00 00 00 00 00 00 01'), toHex(b));
  // vmm-stats is [0] EXPLICIT around a SEQUENCE OF
  assert.ok(toHex(b).includes('A0 11 30 0F 30 0D 0C 01 6B 04 08'), toHex(b));
  const plain = data(h0(':net'), { kind: 'statistics', value: { resourceUsage: ru, ifdata: [] } });
  assert.deepEqual(decodeWire(encodeWire(plain)), { ok: true, value: plain });
});

test('other successes round trip', () => {
  const cases: Wire[] = [
    reply(h0(':'), { kind: 'block_devices', value: [{ name: nm(':storage'), size: 4, active: true }] }),
    reply(h0(':x'), { kind: 'unikernel_image', value: { compressed: true, image: hex('78 9C 03 00 00 00 00 01') } }),
    reply(h0(':x'), { kind: 'old_block_device_image', value: { compressed: false, image: hex('00 01') } }),
    reply(h0(':'), { kind: 'unikernel_info', value: [] }),
    reply(h0(':'), { kind: 'unikernel_info_v5', value: [] }),
    reply(h0(':'), { kind: 'unikernel_info_v4', value: [] }),
    command(nm(':d'), { kind: 'block', value: { kind: 'add_old', value: { size: 1, compress: false } } }),
    command(nm(':d'), { kind: 'block', value: { kind: 'add_old', value: { size: 1, compress: false, data: hex('00') } } }),
    command(nm(':d'), { kind: 'block', value: { kind: 'set_old', value: { compress: true, data: hex('01') } } }),
    command(nm(':d'), { kind: 'block', value: { kind: 'dump_old', value: 0 } }),
  ];
  for (const w of cases) assert.deepEqual(decodeWire(encodeWire(w)), { ok: true, value: w });
});

test('describeCommand and commandEndpoint', () => {
  const c = (x: Command) => [describeCommand(x), commandEndpoint(x)];
  assert.deepEqual(c({ kind: 'console', value: { kind: 'subscribe', value: { kind: 'count', value: 1 } } }),
    ['console subscribe', { daemon: 'console', mode: 'read' }]);
  assert.deepEqual(c({ kind: 'unikernel', value: { kind: 'info', value: null } }), ['unikernel info', { daemon: 'vmmd', mode: 'single' }]);
  assert.deepEqual(c({ kind: 'block', value: { kind: 'dump', value: 0 } }), ['block dump', { daemon: 'vmmd', mode: 'dump' }]);
  assert.deepEqual(c({ kind: 'stats', value: { kind: 'initial', value: null } }), ['stats initial', { daemon: 'vmmd', mode: 'single' }]);
  assert.deepEqual(c({ kind: 'stats', value: { kind: 'subscribe', value: null } }), ['stats subscribe', { daemon: 'stats', mode: 'read' }]);
  assert.deepEqual(c({ kind: 'policy', value: { kind: 'remove', value: null } }), ['policy remove', { daemon: 'vmmd', mode: 'single' }]);
});

// ------------------------------------------------------------------ strictness

const EX1 = body('00 00 00 22 30 20 30 13 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 04 3A 66 6F 6F A0 09 A0 07 A2 05 A1 03 02 01 14');

test('strict: trailing bytes', () => {
  refused(() => decodeWire(new Uint8Array([...EX1, 0])), 'trailing bytes');
  refused(() => decodeWire(new Uint8Array([...EX1, ...EX1])), 'trailing bytes');
});

test('strict: indefinite and non-minimal lengths', () => {
  const inner = EX1.subarray(2);
  refused(() => decodeWire(new Uint8Array([0x30, 0x80, ...inner, 0, 0])), 'indefinite length');
  refused(() => decodeWire(new Uint8Array([0x30, 0x81, 0x20, ...inner])), 'non-minimal length');
  refused(() => decodeWire(new Uint8Array([0x30, 0x82, 0x00, 0x20, ...inner])), 'non-minimal length');
  refused(() => decodeWire(msg(HDR_FOO, 'A0 81 09 A0 07 A2 05 A1 03 02 01 14')), 'non-minimal length');
});

test('strict: non-minimal, empty and out-of-range INTEGERs', () => {
  refused(() => decodeWire(msg(HDR_FOO, 'A0 0A A0 08 A2 06 A1 04 02 02 00 14')), 'non-minimal INTEGER');
  refused(() => decodeWire(msg(HDR_FOO, 'A0 0A A0 08 A2 06 A1 04 02 02 FF 80')), 'non-minimal INTEGER');
  refused(() => decodeWire(msg(HDR_FOO, 'A0 08 A0 06 A2 04 A1 02 02 00')), 'empty INTEGER');
  // console add 2^62 and -2^62-1: outside upstream's 63-bit int
  refused(() => decodeWire(msg(HDR_FOO, 'A0 0E A0 0C A0 0A 02 08 40 00 00 00 00 00 00 00')), 'out of range');
  refused(() => decodeWire(msg(HDR_FOO, 'A0 0F A0 0D A0 0B 02 09 00 FF FF FF FF FF FF FF FF')), 'out of range');
  refused(() => decodeWire(msg(HDR_FOO, 'A0 0E A0 0C A0 0A 02 08 BF FF FF FF FF FF FF FF')), 'out of range');
  // -2^62 is the smallest accepted
  assert.ok(decodeWire(msg(HDR_FOO, 'A0 0E A0 0C A0 0A 02 08 C0 00 00 00 00 00 00 00')).ok);
  // a count beyond 2^53 does not fit a number
  refused(() => decodeWire(msg(HDR_FOO, 'A0 10 A0 0E A2 0C A1 0A 02 08 3F FF FF FF FF FF FF FF')), 'out of range');
});

test('strict: constructed strings', () => {
  refused(() => decodeWire(tlv(0x30, tlv(0x30, '02 01 05 04 08 00 00 00 00 00 00 00 00 2C 06 0C 04 3A 66 6F 6F'), 'A2 02 0C 00')),
    'constructed form of universal type 12');
  refused(() => decodeWire(tlv(0x30, tlv(0x30, '02 01 05 24 0A 04 08 00 00 00 00 00 00 00 00 0C 01 3A'), 'A2 02 0C 00')),
    'constructed form of universal type 4');
});

test('strict: versions other than 5', () => {
  const v = (n: string) => tlv(0x30, tlv(0x30, `02 ${n} 04 08 00 00 00 00 00 00 00 00 0C 01 3A`), 'A1 04 A0 02 05 00');
  assert.deepEqual(decodeWire(v('01 04')), { ok: false, error: 'unknown version number 0x4' });
  assert.deepEqual(decodeWire(v('01 03')), { ok: false, error: 'unknown version number 0x3' });
  assert.deepEqual(decodeWire(v('01 1A')), { ok: false, error: 'unknown version number 0x1A' });
  assert.deepEqual(decodeWire(v('01 FF')), { ok: false, error: 'unknown version number 0x7FFFFFFFFFFFFFFF' });
  // the version is checked before anything else, as upstream peeks at it first
  assert.deepEqual(decodeWire(new Uint8Array([...v('01 04'), 0])), { ok: false, error: 'unknown version number 0x4' });
  assert.ok(decodeWire(v('01 05')).ok);
  // version in the wrong form: the full decoder reports it
  refused(() => decodeWire(tlv(0x30, tlv(0x30, '0C 01 35 04 08 00 00 00 00 00 00 00 00 0C 01 3A'), 'A1 04 A0 02 05 00')), 'expected');
});

test('strict: unknown, retired and rejected tags', () => {
  refused(() => decodeWire(msg(HDR_ROOT, 'A6 02 05 00')), 'unknown Payload [6]');
  refused(() => decodeWire(msg(HDR_ROOT, 'A0 04 A6 02 05 00')), 'unknown Command [6]');
  assert.match(refused(() => decodeWire(msg(HDR_ROOT, 'A0 04 A2 02 05 00')), 'support for log dropped'), /support for log dropped$/);
  refused(() => decodeWire(msg(HDR_ROOT, 'A3 04 A2 02 05 00')), 'support for log was dropped');
  refused(() => decodeWire(msg(HDR_ROOT, 'A0 08 A0 06 A1 04 30 02 05 00')), 'retired ConsoleCmd [1]');
  refused(() => decodeWire(msg(HDR_ROOT, 'A0 06 A0 04 A4 02 05 00')), 'unknown ConsoleCmd [4]');
  refused(() => decodeWire(msg(HDR_ROOT, 'A0 06 A1 04 A4 02 05 00')), 'unknown StatsCmd [4]');
  refused(() => decodeWire(msg(HDR_ROOT, 'A0 06 A4 04 A3 02 05 00')), 'unknown PolicyCmd [3]');
  refused(() => decodeWire(msg(HDR_ROOT, 'A0 06 A5 04 A8 02 05 00')), 'unknown BlockCmd [8]');
  refused(() => decodeWire(msg(HDR_ROOT, 'A0 06 A3 04 A0 02 05 00')), 'UnikernelCmd [0]');
  refused(() => decodeWire(msg(HDR_ROOT, 'A0 06 A3 04 B6 02 05 00')), 'unknown UnikernelCmd [22]');
  for (const n of [3, 5, 8]) refused(() => decodeWire(msg(HDR_ROOT, `A1 04 ${(0xa0 + n).toString(16)} 02 05 00`)), `retired Success [${n}]`);
  refused(() => decodeWire(msg(HDR_ROOT, 'A1 04 AE 02 05 00')), 'unknown Success [14]');
  refused(() => decodeWire(msg(HDR_ROOT, 'A3 0A A0 08 30 06 17 00 0C 02 68 69')), 'retired Data [0]');
  refused(() => decodeWire(msg(HDR_ROOT, 'A3 04 A5 02 05 00')), 'unknown Data [5]');
  refused(() => decodeWire(msg(HDR_ROOT, 'A3 06 A4 04 A2 02 05 00')), 'unknown BlockData [2]');
  // a universal tag where a context tag is expected
  refused(() => decodeWire(msg(HDR_ROOT, '05 00')), 'unknown Payload NULL');
});

test('strict: Int64 must be 8 octets', () => {
  refused(() => decodeWire(tlv(0x30, tlv(0x30, '02 01 05 04 07 00 00 00 00 00 00 00 0C 01 3A'), 'A1 04 A0 02 05 00')),
    'Int64 must be 8 octets, got 7');
  refused(() => decodeWire(tlv(0x30, tlv(0x30, '02 01 05 04 09 00 00 00 00 00 00 00 00 00 0C 01 3A'), 'A1 04 A0 02 05 00')),
    'Int64 must be 8 octets, got 9');
});

test('strict: BOOLEAN must be 00 or FF', () => {
  refused(() => decodeWire(msg(HDR_ROOT, 'A0 07 A5 05 A7 03 01 01 01')), 'BOOLEAN must be 00 or FF');
  refused(() => decodeWire(msg(HDR_ROOT, 'A0 08 A5 06 A7 04 01 02 00 00')), 'BOOLEAN must have length 1');
});

test('strict: names, NULL, explicit tags and structure', () => {
  refused(() => decodeWire(tlv(0x30, tlv(0x30, '02 01 05 04 08 00 00 00 00 00 00 00 00 0C 03 3A 3A 78'), 'A2 02 0C 00')), 'invalid name');
  refused(() => decodeWire(tlv(0x30, tlv(0x30, '02 01 05 04 08 00 00 00 00 00 00 00 00 0C 00'), 'A2 02 0C 00')), 'empty name');
  refused(() => decodeWire(msg(HDR_ROOT, 'A1 05 A0 03 05 01 00')), 'NULL must be empty');
  refused(() => decodeWire(msg(HDR_ROOT, 'A1 06 A0 04 05 00 05 00')), 'exactly one value');
  refused(() => decodeWire(tlv(0x30, HDR_ROOT)), 'missing');
  refused(() => decodeWire(new Uint8Array()), 'empty input');
  refused(() => decodeWire(hex('30')), 'truncated');
  refused(() => decodeWire(hex('30 05 02 01 05')), 'truncated');
  // policy with an extra field
  refused(() => decodeWire(msg(HDR_ROOT, tlv(0xa0, tlv(0xa4, tlv(0xa1, tlv(0x30, '30 00 02 01 01 02 01 01 30 00 02 01 00')))))),
    'unexpected INTEGER after the last field of Policy');
});

test('decoders never throw on mutated examples', () => {
  const seeds = [EX1, msg(HDR_ROOT, 'A1 04 A0 02 05 00'), body(`00 00 00 3A 30 38 30 14 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 05 75 73 65 72 3A
     A0 20 A4 1E A1 1C 30 1A 30 06 02 01 00 02 01 01 02 01 10 02 02 04 00 30 09 0C 07 73 65 72 76 69 63 65`)];
  let decoded = 0;
  for (const s of seeds) {
    for (let i = 0; i < s.length; i++) {
      for (const x of [0x00, 0x01, 0x05, 0x30, 0x7f, 0x80, 0x81, 0xa0, 0xff, s[i] ^ 0x01]) {
        const m = s.slice();
        m[i] = x;
        const r = decodeWire(m);
        if (r.ok) decoded++;
        else assert.equal(typeof r.error, 'string');
      }
      assert.equal(decodeWire(s.subarray(0, i)).ok, false);
    }
  }
  assert.ok(decoded > 0);
});

// ------------------------------------------------------------------ log family

const START: LogEvent = {
  kind: 'unikernel_start',
  value: {
    name: nm('foo:bar'), digest: hex('00 11 22'), pid: 42, taps: [{ bridge: 'service', tap: 'tap0' }],
    blocks: [{ name: 'storage', device: nm('foo:data') }],
  },
};

test('log messages: own payload tags, refused by decodeWire, and v5 messages refused by decodeLogWire', () => {
  const h = makeHeader(nm('foo:bar'), 7n);
  const ts = time('20240102030405.678Z');
  const msgs = [
    logMessage.data(h, ts, START),
    logMessage.data(h, ts, { kind: 'unikernel_stop', value: { name: nm('foo:bar'), pid: 42, status: { kind: 'signal', value: -11 } } }),
    logMessage.data(h, ts, { kind: 'startup', value: null }),
    logMessage.data(h, ts, { kind: 'hup', value: null }),
    logMessage.data(h, ts, { kind: 'login', value: { name: nm(':x'), ip: hex('7F 00 00 01'), port: 1025 } }),
    logMessage.subscribe(h, { kind: 'count', value: 10 }),
    logMessage.subscribe(h, { kind: 'since', value: ts }),
  ];
  for (const m of msgs) {
    const b = encodeLogWire(m);
    assert.deepEqual(decodeLogWire(b), { ok: true, value: m });
    refused(() => decodeWire(b), /unknown Payload \[[45]\] \(a log (command|event), not a Wire message\)/);
  }
  // data [5] begins right after the header
  const d = encodeLogWire(msgs[0]);
  assert.equal(d[2 + 2 + d[3]], 0xa5);
  // replies are shared: reply empty / failure decode with both
  for (const m of [logMessage.replyEmpty(h), logMessage.failure(h, 'nope')]) {
    const b = encodeLogWire(m);
    assert.deepEqual(decodeLogWire(b), { ok: true, value: m });
    assert.ok(decodeWire(b).ok);
  }
  refused(() => decodeLogWire(EX1), 'payload [0] is a version 5 command, not a log message');
  refused(() => decodeLogWire(body('00 00 00 23 30 21 30 17 02 01 05 04 08 00 00 00 00 00 00 00 00 0C 08 66 6F 6F 3A 64 61 74 61 A3 06 A4 04 A1 02 05 00')),
    'payload [3] is version 5 data, not a log message');
  const v4 = tlv(0x30, tlv(0x30, '02 01 04 04 08 00 00 00 00 00 00 00 00 0C 01 3A'), 'A1 04 A0 02 05 00');
  assert.deepEqual(decodeLogWire(v4), { ok: false, error: 'unknown version number 0x4' });
});

test('log records: 2021 label-list names at version 4, textual names at version 5, UTCTime', () => {
  const t = time('20210305102030Z');
  const entry = { timestamp: t, event: START };
  const r5 = encodeLogRecord(entry);
  assert.deepEqual(decodeDer(logRecord, r5), { ok: true, value: { version: 5, entry } });
  assert.ok(toHex(r5).includes(toHex(Buffer.from('210305102030Z'))));
  const r4 = encodeLogRecord(entry, 4);
  assert.deepEqual(decodeDer(logRecord, r4), { ok: true, value: { version: 4, entry } });
  // version 4 writes the name foo:bar as the labels ("foo", "bar")
  assert.ok(toHex(r4).includes('30 0A 0C 03 66 6F 6F 0C 03 62 61 72'), toHex(r4));
  // the 2021 encoding of a stop event, by hand
  const stop = tlv(0x30, '02 01 04', tlv(0x30, '17 0D' + toHex(Buffer.from('210305102030Z')),
    tlv(0xa4, tlv(0x30, tlv(0x30, '0C 03 66 6F 6F 0C 03 62 61 72'), '02 01 2A', 'A0 03 02 01 00'))));
  assert.deepEqual(decodeDer(logRecord, stop), {
    ok: true,
    value: { version: 4, entry: { timestamp: t, event: { kind: 'unikernel_stop', value: { name: nm('foo:bar'), pid: 42, status: { kind: 'exit', value: 0 } } } } },
  });
  // the v4 event decoder refuses invalid labels
  refused(() => decodeDer(logEventV4, tlv(0xa4, tlv(0x30, tlv(0x30, '0C 00'), '02 01 2A', 'A0 03 02 01 00'))), 'invalid label');
  // a file: good, unknown version (skipped), garbage (skipped by its length), good, truncated tail
  const bad = tlv(0x30, '02 01 07', tlv(0x30, '05 00'));
  const garbage = tlv(0x30, '05 00');
  const file = Buffer.concat([r4, bad, garbage, r5, r5.subarray(0, 5)]);
  const f = readLogFile(new Uint8Array(file));
  assert.deepEqual(f.records.map((r) => r.version), [4, 5]);
  assert.equal(f.skipped.length, 2);
  assert.match(f.skipped[0], /unsupported log record version 7/);
  assert.equal(f.truncated, 5);
});
