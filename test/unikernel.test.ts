import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Name, parseName } from '../src/core/name.js';
import { unwrap } from '../src/core/result.js';
import type { FailBehaviour, UnikernelArgs, UnikernelConfig } from '../src/core/wire/common.js';
import {
  type ProcessExit, applyRestartArgs, blockDir, blockFilePath, chooseTapName, decideAfterExit, deriveMac, exitHandlerArmed,
  fifoPath, formatMac, imagePath, parseBridgeList, parseMac, pinCommand, shouldRestart, tenderArgv, validateConfig,
} from '../src/core/unikernel.js';

const n = (s: string): Name => unwrap(parseName(s));
const cfg = (o: Partial<UnikernelConfig> = {}): UnikernelConfig => ({
  typ: 'solo5', compressed: false, image: new Uint8Array([1, 2, 3]), addName: true, failBehaviour: { kind: 'quit', value: null },
  cpuids: [0], memory: 32, blocks: [], bridges: [], cpus: 1, ...o,
});
const quit: FailBehaviour = { kind: 'quit', value: null };
const restartAny: FailBehaviour = { kind: 'restart', value: [] };
const restartSome: FailBehaviour = { kind: 'restart', value: [0, 3, 1, 64] };
const exit = (code: number): ProcessExit => ({ kind: 'exit', code });

test('shouldRestart: the table of SEMANTICS.md §5.7', () => {
  const cases: Array<[FailBehaviour, ProcessExit, boolean]> = [
    [restartAny, { kind: 'signal', signal: 15 }, false],
    [restartAny, { kind: 'signal', signal: 9 }, false],
    [restartAny, { kind: 'stopped', signal: 19 }, false],
    [restartAny, exit(1), false],
    [restartAny, exit(60), false],
    [restartAny, exit(61), false],
    [restartAny, exit(62), false],
    [restartAny, exit(63), false],
    [restartAny, exit(64), false],
    [restartAny, exit(0), true],
    [restartAny, exit(2), true],
    [restartAny, exit(59), true],
    [restartAny, exit(65), true],
    [restartAny, exit(255), true],
    [restartAny, exit(23), true],
    [restartSome, exit(0), true],
    [restartSome, exit(3), true],
    [restartSome, exit(2), false],
    [restartSome, exit(1), false, ],
    [restartSome, exit(64), false],
    [restartSome, { kind: 'signal', signal: 11 }, false],
    [quit, exit(0), false],
    [quit, exit(2), false],
  ];
  for (const [fb, e, want] of cases) assert.equal(shouldRestart(fb, e), want, `${JSON.stringify(fb)} ${JSON.stringify(e)}`);
});

test('exit handling: add-name and exit 64, restart-on-failure, otherwise stop', () => {
  assert.equal(exitHandlerArmed(cfg({ addName: false })), false);
  assert.equal(exitHandlerArmed(cfg({ addName: true })), true);
  assert.equal(exitHandlerArmed(cfg({ addName: false, failBehaviour: restartAny })), true);
  const c = cfg({ addName: true, failBehaviour: restartAny });
  assert.deepEqual(decideAfterExit(c, exit(64)), { action: 'restart', config: { ...c, addName: false }, rewriteState: true, reason: 'add-name' });
  assert.deepEqual(decideAfterExit(cfg({ addName: true }), exit(64)), { action: 'restart', config: cfg({ addName: false }), rewriteState: true, reason: 'add-name' });
  assert.deepEqual(decideAfterExit(c, exit(0)), { action: 'restart', config: c, rewriteState: false, reason: 'fail-behaviour' });
  assert.deepEqual(decideAfterExit(c, { kind: 'signal', signal: 15 }), { action: 'stop', rewriteState: true });
  assert.deepEqual(decideAfterExit(cfg({ addName: false, failBehaviour: restartAny }), exit(64)), { action: 'stop', rewriteState: true });
  assert.deepEqual(decideAfterExit(cfg({ addName: true }), exit(0)), { action: 'stop', rewriteState: true });
  assert.deepEqual(decideAfterExit(cfg({ addName: true }), { kind: 'signal', signal: 64 }), { action: 'stop', rewriteState: true });
});

test('applyRestartArgs: upstream 2.7.2 keeps memory, cpus and boot partition; `all` applies them', () => {
  const c = cfg({ memory: 32, cpus: 1, linuxBootPartition: 'old', startup: 5, arguments: ['a'], typ: 'solo5', compressed: true });
  const a: UnikernelArgs = {
    failBehaviour: restartSome, startup: 7, addName: false, cpuids: [1, 2], memory: 48,
    blocks: [{ blockName: 'disk', blockDeviceName: 'data', blockSectorSize: 4096 }], bridges: [{ netif: 'service', bridge: 'br0' }],
    arguments: ['b', 'c'], cpus: 2, linuxBootPartition: 'new',
  };
  const common = {
    typ: 'solo5', compressed: true, image: c.image, addName: false, failBehaviour: restartSome, cpuids: [1, 2], startup: 7,
    blocks: a.blocks, bridges: a.bridges, arguments: ['b', 'c'],
  };
  assert.deepEqual(applyRestartArgs(c, a, 'upstream-2.7.2'), { ...common, memory: 32, cpus: 1, linuxBootPartition: 'old' });
  assert.deepEqual(applyRestartArgs(c, a, 'all'), { ...common, memory: 48, cpus: 2, linuxBootPartition: 'new' });
  assert.deepEqual(applyRestartArgs(c, a), applyRestartArgs(c, a, 'all'), 'all is the default');
  // absent optional arguments clear the old values (they replace, they do not merge)
  const bare: UnikernelArgs = { failBehaviour: quit, addName: true, cpuids: [0], memory: 32, blocks: [], bridges: [], cpus: 1 };
  const r = applyRestartArgs(c, bare, 'all');
  assert.equal(r.startup, undefined);
  assert.equal(r.arguments, undefined);
  assert.equal(r.linuxBootPartition, undefined);
  assert.equal('startup' in r, false);
  assert.equal(applyRestartArgs(c, bare, 'upstream-2.7.2').linuxBootPartition, 'old');
});

test('MAC addresses: derived as 00:80:41 + MD5(netif || name)[0..3], formatted and parsed', () => {
  assert.equal(formatMac(deriveMac('service', n('foo:bar'))), '00:80:41:0c:85:fb');
  assert.notEqual(formatMac(deriveMac('service', n(':bar'))), '00:80:41:0c:85:fb');
  assert.deepEqual(parseMac('00:80:41:0C:85:fb'), { ok: true, value: Uint8Array.of(0, 0x80, 0x41, 0x0c, 0x85, 0xfb) });
  assert.deepEqual(parseMac('00-80-41-0c-85-fb'), { ok: true, value: Uint8Array.of(0, 0x80, 0x41, 0x0c, 0x85, 0xfb) });
  for (const bad of ['', '00:80:41:0c:85', '00:80:41:0c:85:fb:00', '00:80-41:0c:85:fb', '0:80:41:0c:85:fb', 'zz:80:41:0c:85:fb']) {
    assert.equal(parseMac(bad).ok, false, bad);
  }
  assert.equal(formatMac(Uint8Array.of(0xff, 0, 1, 0x10, 0xab, 0xcd)), 'ff:00:01:10:ab:cd');
});

test('file paths: block files, FIFOs, images', () => {
  assert.equal(blockDir('/var/lib/albatross'), '/var/lib/albatross/block');
  assert.equal(blockFilePath('/var/lib/albatross', n('org:data')), '/var/lib/albatross/block/org:data');
  assert.equal(blockFilePath('/var/lib/albatross/', n(':data')), '/var/lib/albatross/block/:data');
  assert.equal(fifoPath('/run/albatross', n('org:team:web')), '/run/albatross/fifo/org:team:web');
  assert.equal(imagePath('/run/albatross', n('hello')), '/run/albatross/:hello.img');
  // a label of dots stays inside the directory: the text form always carries a ':'
  assert.equal(imagePath('/run/albatross', n(':..')), '/run/albatross/:...img');
  assert.equal(fifoPath('/run/albatross', n('..:..')), '/run/albatross/fifo/..:..');
  assert.throws(() => blockFilePath('/d', { path: [], label: '../../etc/passwd' }), RangeError);
});

test('tender argv: Linux, all device kinds, add-name with and without the path', () => {
  const c = cfg({
    cpuids: [2, 0], memory: 64, addName: true, arguments: ['--x=1', 'y'],
    bridges: [{ netif: 'service', bridge: 'br0' }, { netif: 'mgmt', mac: Uint8Array.of(2, 0, 0, 0, 0, 1) }],
    blocks: [{ blockName: 'storage', blockDeviceName: 'data', blockSectorSize: 4096 }, { blockName: 'tmp' }],
  });
  const argv = unwrap(tenderArgv({
    platform: 'linux', tender: '/var/lib/albatross/solo5-hvt.3', tmpdir: '/run/albatross', dbdir: '/var/lib/albatross',
    name: n('foo:bar'), config: c, taps: ['vmmtap0', 'vmmtap3'],
  }));
  assert.deepEqual(argv, [
    'taskset', '-c', '0,2', '/var/lib/albatross/solo5-hvt.3', '--mem=64',
    '--net:service=vmmtap0', '--net:mgmt=vmmtap3',
    '--net-mac:service=00:80:41:0c:85:fb', '--net-mac:mgmt=02:00:00:00:00:01',
    '--block:storage=/var/lib/albatross/block/foo:data', '--block:tmp=/var/lib/albatross/block/foo:tmp',
    '--block-sector-size:storage=4096',
    '--', '/run/albatross/foo:bar.img', '--name=bar', '--x=1', 'y',
  ]);
  const full = unwrap(tenderArgv({
    platform: 'freebsd', tender: 'solo5-spt', tmpdir: '/var/run/albatross', dbdir: '/var/db/albatross',
    name: n('org:team:web'), config: cfg({ cpuids: [1] }), taps: [], dropPath: false,
  }));
  assert.deepEqual(full, ['cpuset', '-l', '1', 'solo5-spt', '--mem=32', '--', '/var/run/albatross/org:team:web.img', '--name=org:team:web']);
  const noName = unwrap(tenderArgv({
    platform: 'linux', tender: 'solo5-spt', tmpdir: '/t', dbdir: '/d', name: n('hello'), config: cfg({ addName: false, arguments: [] }), taps: [],
  }));
  assert.deepEqual(noName, ['taskset', '-c', '0', 'solo5-spt', '--mem=32', '--', '/t/:hello.img']);
  assert.deepEqual(pinCommand('linux', [3, 1, 3]), ['taskset', '-c', '1,3']);
});

test('tender argv refuses inconsistent input', () => {
  const base = { platform: 'linux' as const, tender: 't', tmpdir: '/t', dbdir: '/d' };
  assert.deepEqual(tenderArgv({ ...base, name: n('a'), config: cfg({ bridges: [{ netif: 'service' }] }), taps: [] }),
    { ok: false, error: '1 network device(s) but 0 tap device(s)' });
  assert.deepEqual(tenderArgv({ ...base, name: n('a:'), config: cfg(), taps: [] }), { ok: false, error: 'unikernel name a: has no label' });
  assert.deepEqual(tenderArgv({ ...base, name: n('a'), config: cfg({ blocks: [{ blockName: 'x', blockDeviceName: '../../etc/shadow' }] }), taps: [] }),
    { ok: false, error: 'block device :../../etc/shadow cannot be used as a file name' });
});

test('tap names: the smallest free vmmtap<N>', () => {
  const show = [
    'vmmtap0: tap persist',
    'vmmtap2: tap persist vnet_hdr',
    'tap1: tap',
    'vmmtapx: tap',
    'vmmtap01: tap',
    '',
  ].join('\n');
  assert.equal(chooseTapName(show), 'vmmtap3');
  assert.equal(chooseTapName(''), 'vmmtap0');
  assert.equal(chooseTapName('vmmtap1: tap'), 'vmmtap0');
  assert.equal(chooseTapName('vmmtap0: tap\n', ['vmmtap1']), 'vmmtap2');
  assert.equal(chooseTapName('vmmtap99999999999999999999: tap'), 'vmmtap0');
});

test('bridges of the root policy from `ip -o link show type bridge`', () => {
  const out = [
    '3: br0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff',
    '7: service: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state DOWN mode DEFAULT group default qlen 1000\\    link/ether aa:bb:cc:dd:ee:ff brd ff:ff:ff:ff:ff:ff',
    '',
  ].join('\n');
  assert.deepEqual(parseBridgeList(out), ['br0', 'service']);
  assert.deepEqual(parseBridgeList(''), []);
  assert.deepEqual(parseBridgeList('garbage\n'), []);
});

test('validateConfig: rules checked before admission', () => {
  const cases: Array<[Partial<UnikernelConfig>, string | null]> = [
    [{}, null],
    [{ cpuids: [] }, 'CPUids may not be empty'],
    [{ cpuids: [-1] }, 'invalid CPUid -1'],
    [{ cpuids: [0.5] }, 'invalid CPUid 0.5'],
    [{ bridges: [{ netif: 'a' }, { netif: 'b', bridge: 'a' }, { netif: 'a', bridge: 'br1' }] }, 'Bridge names must be a set'],
    [{ blocks: [{ blockName: 'd' }, { blockName: 'd', blockDeviceName: 'e' }] }, 'Block devices must be a set'],
    [{ blocks: [{ blockName: 'd', blockDeviceName: 'x' }, { blockName: 'e', blockDeviceName: 'x' }] }, null],
    [{ memory: 0 }, 'memory must be a positive number of MB, got 0'],
    [{ memory: -32 }, 'memory must be a positive number of MB, got -32'],
    [{ memory: 2 ** 60 }, `memory must be a positive number of MB, got ${2 ** 60}`],
    [{ blocks: [{ blockName: 'd', blockSectorSize: 512 }] }, null],
    [{ blocks: [{ blockName: 'd', blockSectorSize: 4096 }] }, null],
    [{ blocks: [{ blockName: 'd', blockSectorSize: 256 }] }, 'block device d: sector size 256 must be a power of two of at least 512'],
    [{ blocks: [{ blockName: 'd', blockSectorSize: 1000 }] }, 'block device d: sector size 1000 must be a power of two of at least 512'],
    [{ blocks: [{ blockName: 'd', blockSectorSize: -512 }] }, 'block device d: sector size -512 must be a power of two of at least 512'],
    [{ bridges: [{ netif: 'n', mac: Uint8Array.of(1, 2, 3) }] }, 'network device n: MAC address must have 6 octets'],
  ];
  for (const [o, want] of cases) {
    assert.deepEqual(validateConfig(cfg(o)), want === null ? { ok: true, value: undefined } : { ok: false, error: want }, JSON.stringify(o));
  }
});

test('wireSignal: a signal the host names is sent with OCaml\'s number, or the host\'s own where OCaml has none', async () => {
  const { wireSignal } = await import('../src/core/signals.js');
  const linux = { SIGBUS: 7, SIGSYS: 31, SIGTERM: 15, SIGWINCH: 28 };
  assert.equal(wireSignal('SIGBUS', linux), -22);
  assert.equal(wireSignal('SIGSYS', linux), -24);
  assert.equal(wireSignal('SIGTERM', linux), -11);
  assert.equal(wireSignal('SIGWINCH', linux), 28);
  // FreeBSD numbers SIGBUS 10: the name decides, not the host's number
  assert.equal(wireSignal('SIGBUS', { SIGBUS: 10 }), -22);
});
