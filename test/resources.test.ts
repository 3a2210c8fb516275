import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Name, type Path, parseName, parsePath } from '../src/core/name.js';
import { type Result, unwrap } from '../src/core/result.js';
import { type Policy, MAX_UNIKERNELS } from '../src/core/policy.js';
import type { UnikernelConfig } from '../src/core/wire/common.js';
import { limits } from '../src/core/limits.js';
import {
  type Resources, type UnikernelEntry, addBlock, addUnikernel, checkBlock, checkBlockIdle, checkUnikernel,
  checkUnikernelReplacing, consoleLimit, emptyResources, findBlock, findPolicy, findUnikernel, insertPolicy,
  registerBlock, removeBlock, removePolicy, removeUnikernel, setBlockActive, setPolicyUnchecked, usage, usageAlongPath, usageTotals,
} from '../src/core/resources.js';

const n = (s: string): Name => unwrap(parseName(s));
const p = (s: string): Path => unwrap(parsePath(s));
const cfg = (o: Partial<UnikernelConfig> = {}): UnikernelConfig => ({
  typ: 'solo5', compressed: false, image: new Uint8Array(0), addName: true, failBehaviour: { kind: 'quit', value: null },
  cpuids: [0], memory: 32, blocks: [], bridges: [], cpus: 1, ...o,
});
const pol = (o: Partial<Policy> = {}): Policy => ({ unikernels: 10n, cpuids: [0, 1], memory: 1024, block: 100, bridges: ['br0'], ...o });
const OK = { ok: true, value: undefined };
const fail = (error: string) => ({ ok: false, error });

type R = Resources<UnikernelEntry>;
function policyAt(res: R, path: string, policy: Policy): R {
  const r = unwrap(insertPolicy(res, p(path), policy));
  assert.equal(r.kind, 'added');
  return (r as { resources: R }).resources;
}
const run = (res: R, name: string, c: UnikernelConfig = cfg()): R => unwrap(addUnikernel(res, n(name), { config: c }));
const block = (res: R, name: string, size: number): R => unwrap(addBlock(res, n(name), size));
const error = <T>(r: Result<T>): string => (r.ok ? 'ok' : r.error);

test('admission without a policy at the path: no limit, but names must be unique', () => {
  let r = emptyResources();
  assert.deepEqual(checkUnikernel(r, n('a:b:x'), cfg({ memory: 1_000_000, cpuids: [99] })), OK);
  r = run(r, 'a:b:x');
  assert.deepEqual(checkUnikernel(r, n('a:b:x'), cfg()), fail('unikernel with same name already exists'));
  assert.deepEqual(checkUnikernel(r, n('a:b:'), cfg()), fail('unikernel name a:b: has no label'));
  assert.deepEqual(addUnikernel(r, n('a:b:x'), { config: cfg() }), fail('unikernel with same name already exists'));
});

test('admission against the policy of the path: count, memory, CPUids, bridges, in that order', () => {
  let r = policyAt(emptyResources(), 'org', pol({ unikernels: 2n, memory: 100, cpuids: [0, 1], bridges: ['br0'] }));
  assert.deepEqual(checkUnikernel(r, n('org:a'), cfg({ memory: 100, cpuids: [0, 1] })), OK);
  assert.deepEqual(checkUnikernel(r, n('org:a'), cfg({ memory: 101, cpuids: [5] })),
    fail('maximum allowed memory (100, used 0) would be exceeded (requesting 101)'));
  assert.deepEqual(checkUnikernel(r, n('org:a'), cfg({ cpuids: [3, 1, 2], bridges: [{ netif: 'x', bridge: 'evil' }] })),
    fail('CPUids 2, 3 are not allowed by policy; policy allows CPUids 0, 1'));
  assert.deepEqual(
    checkUnikernel(r, n('org:a'), cfg({ bridges: [{ netif: 'service', bridge: 'br1' }, { netif: 'br0' }, { netif: 'm', bridge: 'br1' }, { netif: 'evil' }] })),
    fail('bridges br1, br1, evil not allowed by policy; policy allows bridges br0'),
    'host bridge = bridge or netif, in configuration order, duplicates kept as upstream');
  r = run(r, 'org:a', cfg({ memory: 60 }));
  assert.deepEqual(checkUnikernel(r, n('org:b'), cfg({ memory: 41 })),
    fail('maximum allowed memory (100, used 60) would be exceeded (requesting 41)'));
  r = run(r, 'org:b', cfg({ memory: 40 }));
  assert.deepEqual(checkUnikernel(r, n('org:c'), cfg({ memory: 1000, cpuids: [9] })), fail('maximum amount of unikernels (2) reached'));
  // the count includes unikernels in deeper paths
  let d = policyAt(emptyResources(), 'org', pol({ unikernels: 1n }));
  d = run(d, 'org:team:x');
  assert.deepEqual(checkUnikernel(d, n('org:y'), cfg()), fail('maximum amount of unikernels (1) reached'));
  const none = policyAt(emptyResources(), 'org', pol({ cpuids: [], bridges: [] }));
  assert.deepEqual(checkUnikernel(none, n('org:a'), cfg()), fail('CPUids 0 are not allowed by policy; policy allows no CPUids'));
  assert.deepEqual(checkUnikernel(none, n('org:a'), cfg({ cpuids: [], bridges: [{ netif: 'br0' }] })),
    fail('bridges br0 not allowed by policy; policy allows no bridges'));
});

test('usage accounting: a unikernel counts against every policy on its path, not only its own (upstream checks its own only)', () => {
  let r = policyAt(emptyResources(), 'org', pol({ unikernels: 1n, memory: 64 }));
  r = policyAt(r, 'org:team', pol({ unikernels: 1n, memory: 64 }));
  r = run(r, 'org:x', cfg({ memory: 32 }));
  // org:team's own policy has room, org's has not: the refusal names org
  assert.deepEqual(checkUnikernel(r, n('org:team:y'), cfg({ memory: 16 })),
    fail('create org:team:y: one more unikernel would exceed policy org (1 unikernels, 1 running below it)'));
  // a path without its own policy is limited by the nearest policy above it, and all others
  assert.deepEqual(checkUnikernel(r, n('org:other:z'), cfg({ memory: 16 })),
    fail('create org:other:z: one more unikernel would exceed policy org (1 unikernels, 1 running below it)'));
  let m = policyAt(emptyResources(), 'org', pol({ unikernels: 5n, memory: 64, cpuids: [0], bridges: ['br0'] }));
  m = run(m, 'org:x', cfg({ memory: 40 }));
  assert.deepEqual(checkUnikernel(m, n('org:nopol:big'), cfg({ memory: 4096 })),
    fail('create org:nopol:big: memory 4096 MB would exceed policy org (64 MB, 40 MB in use below it)'));
  assert.deepEqual(checkUnikernel(m, n('org:nopol:c'), cfg({ memory: 1, cpuids: [1, 0] })),
    fail('create org:nopol:c: CPUids 1 are not allowed by policy org; policy allows CPUids 0'));
  assert.deepEqual(checkUnikernel(m, n('org:nopol:c'), cfg({ memory: 1, bridges: [{ netif: 'service', bridge: 'evil' }, { netif: 'evil' }] })),
    fail('create org:nopol:c: bridges evil are not allowed by policy org; policy allows bridges br0'));
  // the root policy (the host's resources) counts too
  let h = setPolicyUnchecked(emptyResources(), [], pol({ unikernels: MAX_UNIKERNELS, memory: 100, cpuids: [0, 1] }));
  h = run(h, 'a:x', cfg({ memory: 60 }));
  assert.deepEqual(checkUnikernel(h, n('b:deep:y'), cfg({ memory: 41 })),
    fail('create b:deep:y: memory 41 MB would exceed the root policy (100 MB, 60 MB in use below it)'));
  assert.deepEqual(addUnikernel(h, n('b:deep:y'), { config: cfg({ memory: 41 }) }),
    fail('create b:deep:y: memory 41 MB would exceed the root policy (100 MB, 60 MB in use below it)'), 'registration repeats the check');
  // the own path's policy comes first, with upstream's message
  assert.deepEqual(checkUnikernel(r, n('org:team:y'), cfg({ memory: 65 })), fail('maximum allowed memory (64, used 0) would be exceeded (requesting 65)'));
  // start-up restore: upstream's rule (own policy only)
  assert.deepEqual(checkUnikernel(r, n('org:team:y'), cfg({ memory: 16 }), { ownPolicyOnly: true }), OK);
  assert.deepEqual(checkUnikernel(r, n('org:team:y'), cfg({ memory: 65 }), { ownPolicyOnly: true }), fail('maximum allowed memory (64, used 0) would be exceeded (requesting 65)'));
  assert.ok(addUnikernel(r, n('org:team:y'), { config: cfg({ memory: 16 }) }, { ownPolicyOnly: true }).ok);
});

test('sibling sub-policies do not multiply a delegation: dept (2 unikernels, 64 MB) with dept:s1, dept:s2, dept:s3 of the same policy', () => {
  const dept = pol({ unikernels: 2n, memory: 64, cpuids: [0], bridges: [], block: 50 });
  let r = policyAt(emptyResources(), 'dept', dept);
  // sub-policies are caps, not reservations: each may be as large as dept
  for (const sub of ['dept:s1', 'dept:s2', 'dept:s3']) r = policyAt(r, sub, dept);
  r = run(r, 'dept:s1:u1', cfg({ memory: 32 }));
  r = run(r, 'dept:s1:u2', cfg({ memory: 16 }));
  // dept's count is exhausted at the first unikernel in s2
  assert.deepEqual(checkUnikernel(r, n('dept:s2:u1'), cfg({ memory: 16 })),
    fail('create dept:s2:u1: one more unikernel would exceed policy dept (2 unikernels, 2 running below it)'));
  r = unwrap(removeUnikernel(r, n('dept:s1:u2')));
  r = run(r, 'dept:s2:u1', cfg({ memory: 16 }));
  // and at the second unikernel in s2, although s2 allows two
  assert.deepEqual(checkUnikernel(r, n('dept:s2:u2'), cfg({ memory: 16 })),
    fail('create dept:s2:u2: one more unikernel would exceed policy dept (2 unikernels, 2 running below it)'));
  // memory: two of 32 MB in s1 fill dept's 64 MB; s3 is refused
  let m = policyAt(emptyResources(), 'dept', pol({ ...dept, unikernels: 6n }));
  for (const sub of ['dept:s1', 'dept:s2', 'dept:s3']) m = policyAt(m, sub, pol({ ...dept, unikernels: 6n }));
  m = run(run(m, 'dept:s1:u1', cfg({ memory: 32 })), 'dept:s1:u2', cfg({ memory: 32 }));
  assert.deepEqual(checkUnikernel(m, n('dept:s3:u1'), cfg({ memory: 32 })),
    fail('create dept:s3:u1: memory 32 MB would exceed policy dept (64 MB, 64 MB in use below it)'));
  assert.equal(usageTotals(m, p('dept')).memory, 64);
  // block storage likewise
  let b = block(policyAt(policyAt(policyAt(emptyResources(), 'dept', dept), 'dept:s1', dept), 'dept:s2', dept), 'dept:s1:d', 40);
  assert.deepEqual(checkBlock(b, n('dept:s2:d'), 11),
    fail('block add dept:s2:d: 11 MB would exceed the block storage of policy dept (50 MB, 40 MB in use below it)'));
  assert.deepEqual(addBlock(b, n('dept:other:d'), 11),
    fail('block add dept:other:d: 11 MB would exceed the block storage of policy dept (50 MB, 40 MB in use below it)'), 'a path without a policy');
  b = block(b, 'dept:s2:d', 10);
  assert.equal(usageTotals(b, p('dept')).block, 50);
  const noBlocks = policyAt(policyAt(emptyResources(), 'x', pol({ block: undefined })), 'x:y', pol({ block: undefined }));
  assert.deepEqual(checkBlock(noBlocks, n('x:y:z:d'), 1), fail('block add x:y:z:d: policy x:y allows no block devices'));
});

test('a name that escapes its path: `foo.hello` is a root label, not governed by the policy at `foo:`', () => {
  const r = policyAt(emptyResources(), 'foo', pol({ unikernels: 1n, memory: 32 }));
  assert.deepEqual(checkUnikernel(r, n('foo:hello'), cfg({ memory: 64 })), fail('maximum allowed memory (32, used 0) would be exceeded (requesting 64)'));
  // the root has no policy here, so `foo.hello` is not limited by `foo:`
  assert.deepEqual(checkUnikernel(r, n('foo.hello'), cfg({ memory: 64 })), OK);
  // the unikernel `:foo` has the trie key of the path `foo:` (§2.5) but is not below it:
  // it does not count there (upstream counts it)
  let q = run(r, ':foo', cfg({ memory: 32 }));
  q = registerBlock(q, n(':foo'), 7);
  assert.deepEqual(usage(q, p('foo')), { unikernels: 0, memory: 0, cpuids: [], bridges: [], blockActive: 0, blockInactive: 0, block: 0 });
  assert.deepEqual(checkUnikernel(q, n('foo:x'), cfg()), OK);
  assert.equal(insertPolicy(q, p('foo'), pol({ unikernels: 1n, memory: 17, cpuids: [5], block: undefined })).ok, true);
  assert.equal(usage(q, p('')).unikernels, 1);
});

test('block devices on create: looked up in the unikernel\'s path, by host device or device name', () => {
  let r = block(block(emptyResources(), 'org:data', 10), 'org:storage', 10);
  r = block(r, ':data', 10);
  const withData = cfg({ blocks: [{ blockName: 'storage', blockDeviceName: 'data' }] });
  assert.deepEqual(checkUnikernel(r, n('org:a'), withData), OK);
  assert.deepEqual(checkUnikernel(r, n('org:a'), cfg({ blocks: [{ blockName: 'storage' }] })), OK);
  assert.deepEqual(checkUnikernel(r, n('org:a'), cfg({ blocks: [{ blockName: 'disk' }] })), fail('block device org:disk not found'));
  assert.deepEqual(checkUnikernel(r, n('other:a'), withData), fail('block device other:data not found'), 'no reaching into another path');
  r = run(r, 'org:a', withData);
  assert.deepEqual(findBlock(r, n('org:data')), { size: 10, active: true });
  assert.deepEqual(findBlock(r, n(':data')), { size: 10, active: false });
  assert.deepEqual(checkUnikernel(r, n('org:b'), withData), fail('block device org:data already in use'));
  assert.deepEqual(removeBlock(r, n('org:data')), fail('remove block: is in use'));
  assert.deepEqual(checkBlockIdle(r, n('org:data'), 'set block'), fail('set block: is in use'));
  assert.deepEqual(checkBlockIdle(r, n('org:nope'), 'dump block'), fail('dump block: not found'));
  // order: policy, then block devices, then the name
  let s = policyAt(r, 'org', pol({ unikernels: 1n }));
  assert.equal(error(checkUnikernel(s, n('org:a'), withData)), 'maximum amount of unikernels (1) reached');
  s = unwrap(removePolicy(s, p('org')));
  assert.equal(error(checkUnikernel(s, n('org:a'), withData)), 'block device org:data already in use');
  assert.equal(error(checkUnikernel(s, n('org:a'), cfg())), 'unikernel with same name already exists');
  // stopping frees the device
  const t = unwrap(removeUnikernel(r, n('org:a')));
  assert.deepEqual(findBlock(t, n('org:data')), { size: 10, active: false });
  assert.equal(findUnikernel(t, n('org:a')), undefined);
  assert.deepEqual(removeUnikernel(t, n('org:a')), fail('unknown unikernel'));
  assert.equal(unwrap(removeBlock(t, n('org:data'))).blockDevices.size, 2);
  assert.deepEqual(removeBlock(t, n('org:nope')), fail('remove block: not found'));
  // the older state still has it running
  assert.ok(findUnikernel(r, n('org:a')));
});

test('one block device cannot be attached twice by one unikernel', () => {
  const r = block(emptyResources(), 'x:d', 1);
  const twice = cfg({ blocks: [{ blockName: 'a', blockDeviceName: 'd' }, { blockName: 'b', blockDeviceName: 'd' }] });
  // the admission check sees each device inactive (as upstream); registering catches the double use
  assert.deepEqual(checkUnikernel(r, n('x:u'), twice), OK);
  assert.deepEqual(addUnikernel(r, n('x:u'), { config: twice }), fail('block device x:d already in state active'));
});

test('setBlockActive refuses unknown devices and no-op transitions', () => {
  const r = block(emptyResources(), 'x:d', 1);
  assert.deepEqual(setBlockActive(r, n('x:e'), true), fail('block device x:e not in trie'));
  assert.deepEqual(setBlockActive(r, n('x:d'), false), fail('block device x:d already in state inactive'));
  const a = unwrap(setBlockActive(r, n('x:d'), true));
  assert.deepEqual(setBlockActive(a, n('x:d'), true), fail('block device x:d already in state active'));
});

test('zvol devices are not tracked in the --allow-zvol-for path only', () => {
  const r = emptyResources({ zvolPath: p('bhyve') });
  const z = cfg({ blocks: [{ blockName: '0', blockDeviceName: '/dev/zvol/tank/vm' }] });
  assert.deepEqual(checkUnikernel(r, n('bhyve:vm'), z), OK);
  const a = unwrap(addUnikernel(r, n('bhyve:vm'), { config: z }));
  assert.equal(a.blockDevices.size, 0);
  assert.equal(unwrap(removeUnikernel(a, n('bhyve:vm'))).unikernels.size, 0);
  assert.deepEqual(checkUnikernel(r, n('other:vm'), z), fail('block device other:/dev/zvol/tank/vm not found'));
});

test('force-create and restart discount the running unikernel', () => {
  let r = policyAt(emptyResources(), 'org', pol({ unikernels: 1n, memory: 64 }));
  r = block(r, 'org:d', 1);
  r = run(r, 'org:a', cfg({ memory: 64, blocks: [{ blockName: 'd' }] }));
  assert.equal(error(checkUnikernel(r, n('org:a'), cfg({ memory: 64 }))), 'maximum amount of unikernels (1) reached');
  assert.deepEqual(checkUnikernelReplacing(r, n('org:a'), cfg({ memory: 64, blocks: [{ blockName: 'd' }] })), OK);
  assert.deepEqual(checkUnikernelReplacing(r, n('org:a'), cfg({ memory: 65 })),
    fail('maximum allowed memory (64, used 0) would be exceeded (requesting 65)'));
  assert.deepEqual(checkUnikernelReplacing(r, n('org:b'), cfg()), fail('maximum amount of unikernels (1) reached'));
});

test('negative and huge numbers in unikernel configurations', () => {
  const r = policyAt(emptyResources(), 'org', pol({ memory: 100 }));
  // a negative memory would free capacity for others
  assert.deepEqual(checkUnikernel(r, n('org:a'), cfg({ memory: -1000 })), fail('invalid memory -1000 MB'));
  assert.deepEqual(checkUnikernel(r, n('org:a'), cfg({ memory: 1.5 })), fail('invalid memory 1.5 MB'));
  assert.deepEqual(checkUnikernel(r, n('org:a'), cfg({ memory: Number.MAX_SAFE_INTEGER })),
    fail('maximum allowed memory (100, used 0) would be exceeded (requesting 9007199254740991)'));
  // sums beyond 2^53 stay exact
  let big = run(emptyResources(), 'x:a', cfg({ memory: Number.MAX_SAFE_INTEGER }));
  big = run(big, 'x:b', cfg({ memory: Number.MAX_SAFE_INTEGER }));
  assert.deepEqual(insertPolicy(big, p('x'), pol({ memory: Number.MAX_SAFE_INTEGER, cpuids: [0] })),
    fail('unikernel would exceed running memory limit set by policy to 9007199254740991 MB, used 18014398509481982 MB'));
  // the root policy's 2^62-1 unikernels
  const root = setPolicyUnchecked(emptyResources(), [], pol({ unikernels: MAX_UNIKERNELS }));
  assert.deepEqual(checkUnikernel(run(root, 'a'), n('b'), cfg()), OK);
  assert.equal(consoleLimit(root, n('a')), MAX_UNIKERNELS);
});

test('block device admission: name, then the policy of its path', () => {
  let r = policyAt(emptyResources(), 'org', pol({ block: 100 }));
  assert.deepEqual(checkBlock(r, n('org:d'), 100), OK);
  assert.deepEqual(checkBlock(r, n('org:d'), 101), fail('block device policy limit of 100 MB (used 0 MB) would be exceeded by the request (101 MB)'));
  r = block(r, 'org:d', 60);
  r = block(r, 'org:team:e', 30);
  assert.deepEqual(checkBlock(r, n('org:d'), 1), fail('block device with name [unikernel: org:d] already exists'));
  assert.deepEqual(checkBlock(r, n('org:f'), 11), fail('block device policy limit of 100 MB (used 90 MB) would be exceeded by the request (11 MB)'));
  assert.deepEqual(checkBlock(r, n('org:f'), 10), OK);
  // active devices count too
  r = run(r, 'org:u', cfg({ blocks: [{ blockName: 'd' }] }));
  assert.equal(error(checkBlock(r, n('org:f'), 11)), 'block device policy limit of 100 MB (used 90 MB) would be exceeded by the request (11 MB)');
  const none = policyAt(emptyResources(), 'org', pol({ block: undefined }));
  assert.deepEqual(checkBlock(none, n('org:d'), 1), fail('no block devices are allowed by policy'));
  assert.deepEqual(checkBlock(none, n('elsewhere:d'), 1_000_000), OK, 'no policy at the path: no limit');
  assert.deepEqual(checkBlock(none, n('org:'), 1), fail('block device name org: has no label'));
});

test('block device sizes: zero, negative, fractional', () => {
  const r = emptyResources();
  assert.deepEqual(addBlock(r, n('a:d'), 0), fail('overflow while computing bytes'));
  assert.deepEqual(addBlock(r, n('a:d'), -5), fail('overflow while computing bytes'));
  assert.deepEqual(addBlock(r, n('a:d'), 0.5), fail('invalid block device size 0.5 MB'));
  // a negative request cannot create room under a policy either
  const q = policyAt(r, 'a', pol({ block: 10 }));
  assert.deepEqual(addBlock(q, n('a:d'), -5), fail('overflow while computing bytes'));
  // startup scan registers without checks
  const s = registerBlock(q, n('a:big'), 1000);
  assert.deepEqual(findBlock(s, n('a:big')), { size: 1000, active: false });
});

test('policy install: identical -> unchanged; a policy larger than its parent is refused', () => {
  let r = policyAt(emptyResources(), 'org', pol({ unikernels: 5n, memory: 512, cpuids: [0, 1], bridges: ['br0'], block: 100 }));
  assert.deepEqual(insertPolicy(r, p('org'), pol({ unikernels: 5n, memory: 512, cpuids: [1, 0], bridges: ['br0'], block: 100 })),
    { ok: true, value: { kind: 'unchanged' } });
  assert.deepEqual(insertPolicy(r, p('org:team'), pol({ unikernels: 6n, memory: 512 })), fail('policy above allows 5 unikernels, which is fewer than 6'));
  assert.deepEqual(insertPolicy(r, p('org:team:sub'), pol({ unikernels: 5n, memory: 1024 })),
    fail('policy above allows 512 MB memory, which is fewer than 1024 MB'), 'grand-parent checked when the parent has no policy');
  r = policyAt(r, 'org:team', pol({ unikernels: 2n, memory: 256, cpuids: [0], block: 50 }));
  // nearest ancestor first
  assert.deepEqual(insertPolicy(r, p('org:team:sub'), pol({ unikernels: 6n, memory: 256 })),
    fail('policy above allows 2 unikernels, which is fewer than 6'));
  assert.deepEqual(insertPolicy(r, p('org:team:sub'), pol({ unikernels: 2n, memory: 256, cpuids: [0], block: 51 })),
    fail('policy above allows 50 MB block storage, which is fewer than 51 MB'));
  assert.equal(insertPolicy(r, p('org:team:sub'), pol({ unikernels: 2n, memory: 256, cpuids: [0], block: 50 })).ok, true);
});

test('quirk kept: a policy is not checked against the root policy', () => {
  const r = setPolicyUnchecked(emptyResources(), [], pol({ unikernels: 10n, memory: 1024, cpuids: [0] }));
  const big = pol({ unikernels: 1000n, memory: 1_000_000, cpuids: [0, 1, 2, 3], bridges: ['nonexistent'] });
  assert.equal(insertPolicy(r, p('tenant'), big).ok, true);
  // but installing the root policy itself checks the policies below it
  const t = policyAt(r, 'tenant', big);
  assert.deepEqual(insertPolicy(t, [], pol({ unikernels: 11n })), fail('policy above allows 11 unikernels, which is fewer than 1000'));
});

test('policy install: children that no longer fit', () => {
  let r = policyAt(emptyResources(), 'org', pol({ unikernels: 10n, memory: 1024 }));
  r = policyAt(r, 'org:b', pol({ unikernels: 4n, memory: 100 }));
  r = policyAt(r, 'org:a:deep', pol({ unikernels: 8n, memory: 100 }));
  r = policyAt(r, 'org:a', pol({ unikernels: 9n, memory: 200 }));
  // shrinking org below its children: the first failure in upstream's fold order
  // (children ascending, each subtree before its node): org:a:deep, org:a, org:b
  assert.deepEqual(insertPolicy(r, p('org'), pol({ unikernels: 3n })), fail('policy above allows 3 unikernels, which is fewer than 8'));
  assert.deepEqual(insertPolicy(r, p('org'), pol({ unikernels: 8n })), fail('policy above allows 8 unikernels, which is fewer than 9'));
  assert.deepEqual(insertPolicy(r, p('org'), pol({ unikernels: 9n, memory: 150 })), fail('policy above allows 150 MB memory, which is fewer than 200 MB'));
  // the policy at the path itself is ignored (it is being replaced)
  const s = policyAt(r, 'org', pol({ unikernels: 9n, memory: 200 }));
  assert.equal(findPolicy(s, p('org'))?.memory, 200);
});

test('policy install: current usage below the path, in upstream order', () => {
  let r = block(emptyResources(), 'org:team:d', 40);
  r = block(r, 'org:e', 30);
  r = run(r, 'org:team:a', cfg({ memory: 100, cpuids: [0, 2], bridges: [{ netif: 'service', bridge: 'br1' }], blocks: [{ blockName: 'd' }] }));
  r = run(r, 'org:b', cfg({ memory: 50, cpuids: [1], bridges: [{ netif: 'br0' }] }));
  const fits = pol({ unikernels: 2n, memory: 150, cpuids: [0, 1, 2], bridges: ['br0', 'br1'], block: 70 });
  assert.equal(insertPolicy(r, p('org'), fits).ok, true);
  assert.deepEqual(insertPolicy(r, p('org'), { ...fits, cpuids: [0], unikernels: 0n }), fail('policy does not allow CPUids 1, 2; policy allows CPUids 0'));
  assert.deepEqual(insertPolicy(r, p('org'), { ...fits, bridges: ['br0'], unikernels: 0n }),
    fail('policy allows bridges br0, which is not a superset of br0, br1'));
  assert.deepEqual(insertPolicy(r, p('org'), { ...fits, unikernels: 1n, memory: 0 }),
    fail('unikernel would exceed running unikernel limit set by policy to 1, running 2'));
  assert.deepEqual(insertPolicy(r, p('org'), { ...fits, memory: 149, block: 0 }),
    fail('unikernel would exceed running memory limit set by policy to 149 MB, used 150 MB'));
  assert.deepEqual(insertPolicy(r, p('org'), { ...fits, block: 69 }),
    fail('unikernel would exceed running block storage limit set by policy to 69 MB, used 70 MB'));
  assert.deepEqual(insertPolicy(r, p('org'), { ...fits, block: undefined }),
    fail('unikernel would exceed running block storage limit set by policy to 0 MB, used 70 MB'));
  // only what is below the path counts
  assert.equal(insertPolicy(r, p('org:team'), { ...fits, unikernels: 1n, memory: 100, cpuids: [0, 2], bridges: ['br1'], block: 40 }).ok, true);
});

test('policy install: at most limits.maxPoliciesBelowPolicy policies below a path with a policy; the root is not bounded', () => {
  const max = limits.maxPoliciesBelowPolicy;
  let r = setPolicyUnchecked(emptyResources(), [], pol({ unikernels: MAX_UNIKERNELS }));
  // the operator's top-level policies are below the root only: not counted
  for (let i = 0; i < max + 2; i++) r = policyAt(r, `t${i}`, pol());
  r = policyAt(r, 'dept', pol());
  for (let i = 0; i < max - 1; i++) r = policyAt(r, `dept:p${i}`, pol());
  // deeper ones count against every ancestor with a policy
  r = policyAt(r, `dept:p0:q`, pol());
  assert.deepEqual(insertPolicy(r, p(`dept:p${max}`), pol()),
    fail(`policy for dept:p${max}: ${max} policies are already installed below dept, at most ${max} are allowed below a policy (maxPoliciesBelowPolicy)`));
  assert.deepEqual(insertPolicy(r, p('dept:p0:q:deeper'), pol()),
    fail(`policy for dept:p0:q:deeper: ${max} policies are already installed below dept, at most ${max} are allowed below a policy (maxPoliciesBelowPolicy)`));
  // replacing one that exists adds nothing
  assert.equal(insertPolicy(r, p('dept:p1'), pol({ memory: 10 })).ok, true);
  // removing one makes room again
  r = unwrap(removePolicy(r, p('dept:p1')));
  assert.equal(insertPolicy(r, p(`dept:p${max}`), pol()).ok, true);
});

test('policy remove', () => {
  const r = policyAt(emptyResources(), 'org', pol());
  assert.deepEqual(removePolicy(r, p('other')), fail('unknown policy'));
  const s = unwrap(removePolicy(r, p('org')));
  assert.equal(findPolicy(s, p('org')), undefined);
  assert.ok(findPolicy(r, p('org')));
});

test('usage figures per path and up to the root, console limits', () => {
  let r = block(block(emptyResources(), 'org:team:d', 40), 'org:e', 30);
  r = run(r, 'org:team:a', cfg({ memory: 100, cpuids: [2, 0], bridges: [{ netif: 'service', bridge: 'br1' }], blocks: [{ blockName: 'd' }] }));
  r = run(r, 'org:b', cfg({ memory: 50, cpuids: [1], bridges: [{ netif: 'br0' }] }));
  r = run(r, 'x', cfg({ memory: 1 }));
  assert.deepEqual(usage(r, p('org')), {
    unikernels: 2, memory: 150, cpuids: [0, 1, 2], bridges: ['br0', 'br1'], blockActive: 40, blockInactive: 30, block: 70,
  });
  assert.deepEqual(usageAlongPath(r, p('org:team')).map(({ path, usage: u }) => [path.join(':'), u.unikernels, u.memory, u.block]), [
    ['org:team', 1, 100, 40], ['org', 2, 150, 70], ['', 3, 151, 70],
  ]);
  r = policyAt(r, 'org', pol({ unikernels: 7n, memory: 1000, cpuids: [0, 1, 2], bridges: ['br0', 'br1'] }));
  assert.equal(consoleLimit(r, n('org:z')), 7n);
  assert.equal(consoleLimit(r, n('org:team:z')), 0n);
  assert.equal(consoleLimit(r, n(':z')), MAX_UNIKERNELS);
});

test('10,000 unikernels: admission and registration stay fast', () => {
  const t0 = Date.now();
  let r = setPolicyUnchecked(emptyResources(), [], pol({ unikernels: MAX_UNIKERNELS, memory: 1_000_000, cpuids: [0] }));
  r = policyAt(r, 'tenant', pol({ unikernels: 20_000n, memory: 1_000_000, cpuids: [0] }));
  for (let i = 0; i < 10_000; i++) r = run(r, i % 2 === 0 ? `tenant:u${i}` : `u${i}`, cfg({ memory: 1 }));
  assert.equal(r.unikernels.size, 10_000);
  assert.deepEqual(usage(r, p('tenant')).unikernels, 5_000);
  const ms = Date.now() - t0;
  assert.ok(ms < 10_000, `took ${ms} ms`);
});

test('running totals always equal a walk over the tables (random operations)', () => {
  const paths = [[], ['a'], ['a', 'b'], ['c']];
  const labels = ['x', 'y', 'a'];
  let seed = 12345;
  const rnd = (k: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % k;
  };
  const walk = (res: R, path: readonly string[]) => {
    let unikernels = 0; let memory = 0; let blockActive = 0; let blockInactive = 0;
    // below a path: the entries whose path (the key without its label) starts with it
    for (const [k, e] of res.unikernels.entries(path)) if (k.length > path.length) { unikernels++; memory += e.config.memory; }
    for (const [k, b] of res.blockDevices.entries(path)) if (k.length > path.length) { if (b.active) blockActive += b.size; else blockInactive += b.size; }
    return { unikernels, memory, blockActive, blockInactive, block: blockActive + blockInactive };
  };
  let r: R = emptyResources();
  for (let step = 0; step < 2000; step++) {
    const path = paths[rnd(paths.length)];
    const label = labels[rnd(labels.length)];
    const name: Name = { path, label };
    switch (rnd(5)) {
      case 0: { const x = addBlock(r, name, 1 + rnd(50)); if (x.ok) r = x.value; break; }
      case 1: r = registerBlock(r, name, 1 + rnd(50)); break;
      case 2: {
        const blocks = rnd(2) === 0 ? [] : [{ blockName: 'dev', blockDeviceName: labels[rnd(labels.length)] }];
        const x = addUnikernel(r, name, { config: cfg({ memory: 1 + rnd(100), blocks }) });
        if (x.ok) r = x.value;
        break;
      }
      case 3: { const x = removeUnikernel(r, name); if (x.ok) r = x.value; break; }
      default: { const x = removeBlock(r, name); if (x.ok) r = x.value; }
    }
    for (const q of [...paths, ['a', 'x'], ['x']]) {
      const t = usageTotals(r, q);
      assert.deepEqual(t, walk(r, q), `step ${step} at ${q.join(':')}`);
    }
  }
  // everything removed: no totals left behind
  for (const [k] of r.unikernels.all()) r = unwrap(removeUnikernel(r, { path: k.slice(0, -1), label: k[k.length - 1] }));
  for (const [k] of r.blockDevices.all()) r = unwrap(removeBlock(r, { path: k.slice(0, -1), label: k[k.length - 1] }));
  assert.equal(r.totals.size, 0);
});
