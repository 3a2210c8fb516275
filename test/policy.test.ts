import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type Policy, MAX_UNIKERNELS, checkUsable, isSubPolicy, normalisePolicy, policyEqual, policyWarnings,
} from '../src/core/policy.js';

const pol = (o: Partial<Policy> = {}): Policy => ({ unikernels: 10n, cpuids: [0, 1], memory: 1024, block: 100, bridges: ['br0'], ...o });

test('checkUsable: CLI usability rules and messages, first failure wins', () => {
  const cases: Array<[Policy, string | null]> = [
    [pol(), null],
    [pol({ unikernels: 0n }), 'Unusable policy with no unikernels'],
    [pol({ unikernels: -1n }), 'Unusable policy with no unikernels'],
    [pol({ cpuids: [] }), 'Unusable policy with no CPUids'],
    [pol({ memory: 16 }), 'Unusable policy with memory 16 MB <= 16 MB'],
    [pol({ memory: -5 }), 'Unusable policy with memory -5 MB <= 16 MB'],
    [pol({ memory: 17 }), null],
    [pol({ block: -1 }), 'Unusable policy with block -1 MB < 0 MB'],
    [pol({ block: 0 }), null],
    [pol({ block: undefined }), null],
    [pol({ unikernels: 0n, cpuids: [], memory: 0 }), 'Unusable policy with no unikernels'],
    [pol({ cpuids: [], memory: 0 }), 'Unusable policy with no CPUids'],
    [pol({ unikernels: MAX_UNIKERNELS }), null],
  ];
  for (const [p, want] of cases) assert.deepEqual(checkUsable(p), want === null ? { ok: true, value: undefined } : { ok: false, error: want });
  assert.equal(policyWarnings(pol({ bridges: [] })).length, 1);
  assert.deepEqual(policyWarnings(pol()), []);
});

test('isSubPolicy: upstream messages in upstream order', () => {
  const sup = pol({ unikernels: 5n, memory: 512, cpuids: [0, 1], bridges: ['br0', 'br1'], block: 100 });
  const cases: Array<[Policy, string | null]> = [
    [pol({ unikernels: 5n, memory: 512, cpuids: [1, 0], bridges: ['br1'], block: 100 }), null],
    [pol({ unikernels: 6n, memory: 513 }), 'policy above allows 5 unikernels, which is fewer than 6'],
    [pol({ unikernels: 5n, memory: 513, cpuids: [7] }), 'policy above allows 512 MB memory, which is fewer than 513 MB'],
    [pol({ unikernels: 1n, memory: 1, cpuids: [3, 0, 2, 2], bridges: ['x'] }), 'policy above does not allow CPUids 2, 3'],
    [pol({ unikernels: 1n, memory: 1, cpuids: [0], bridges: ['br2', 'br0'] }),
      'policy above allows bridge(s) br0, br1, which is not a superset of br0, br2'],
    [pol({ unikernels: 1n, memory: 1, cpuids: [0], bridges: [], block: 101 }),
      'policy above allows 100 MB block storage, which is fewer than 101 MB'],
  ];
  for (const [sub, want] of cases) {
    assert.deepEqual(isSubPolicy(sub, sup), want === null ? { ok: true, value: undefined } : { ok: false, error: want }, want ?? 'ok');
  }
});

test('isSubPolicy: the block table of §3.2', () => {
  const base = { unikernels: 1n, cpuids: [0], memory: 32, bridges: [] };
  const cases: Array<[number | undefined, number | undefined, string | null]> = [
    // [super.block, sub.block, outcome]
    [undefined, undefined, null],
    [100, undefined, null],
    [100, 100, null],
    [100, 50, null],
    [100, 101, 'policy above allows 100 MB block storage, which is fewer than 101 MB'],
    [undefined, 1, 'policy above allows 0 MB block storage, which is fewer than 1 MB'],
    [undefined, 0, 'policy above allows 0 MB block storage, which is fewer than 0 MB'],
  ];
  for (const [s, b, want] of cases) {
    const sup: Policy = s === undefined ? { ...base } : { ...base, block: s };
    const sub: Policy = b === undefined ? { ...base } : { ...base, block: b };
    assert.deepEqual(isSubPolicy(sub, sup), want === null ? { ok: true, value: undefined } : { ok: false, error: want }, `${s} ${b}`);
  }
});

test('isSubPolicy: huge and negative numbers', () => {
  const root = pol({ unikernels: MAX_UNIKERNELS, memory: Number.MAX_SAFE_INTEGER });
  assert.equal(isSubPolicy(pol({ unikernels: MAX_UNIKERNELS }), root).ok, true);
  assert.deepEqual(isSubPolicy(root, pol()), { ok: false, error: 'policy above allows 10 unikernels, which is fewer than 4611686018427387903' });
  // negative values only make a policy smaller: they fit (usability is the CLI's business)
  assert.equal(isSubPolicy(pol({ unikernels: -1n, memory: -1 }), pol()).ok, true);
  assert.deepEqual(isSubPolicy(pol(), pol({ unikernels: -1n })), { ok: false, error: 'policy above allows -1 unikernels, which is fewer than 10' });
});

test('policyEqual compares cpuids and bridges as sets', () => {
  assert.ok(policyEqual(pol({ cpuids: [1, 0], bridges: ['b', 'a'] }), pol({ cpuids: [0, 1, 1], bridges: ['a', 'b'] })));
  assert.ok(!policyEqual(pol(), pol({ block: undefined })));
  assert.ok(!policyEqual(pol(), pol({ block: 101 })));
  assert.ok(!policyEqual(pol(), pol({ unikernels: 11n })));
  assert.ok(!policyEqual(pol(), pol({ memory: 1 })));
  assert.ok(!policyEqual(pol(), pol({ cpuids: [0] })));
  assert.ok(!policyEqual(pol(), pol({ bridges: ['br0', 'br1'] })));
  assert.ok(policyEqual(pol({ block: undefined }), pol({ block: undefined })));
  assert.deepEqual(normalisePolicy(pol({ cpuids: [3, 1, 3], bridges: ['z', 'a', 'z'] })), pol({ cpuids: [1, 3], bridges: ['a', 'z'] }));
});
