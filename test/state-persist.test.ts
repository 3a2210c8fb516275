import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeState, encodeState, type StateDump } from '../src/core/wire/state.js';
import type { UnikernelConfig } from '../src/core/wire/common.js';
import { StateEncoder } from '../src/state/persist.js';
import { solo5Image } from './helpers/image.js';

const cfg = (i: number, o: Partial<UnikernelConfig> = {}): UnikernelConfig => ({
  typ: 'solo5', compressed: false, image: solo5Image(), addName: i % 2 === 0, failBehaviour: i % 3 === 0 ? { kind: 'restart', value: [i % 7] } : { kind: 'quit', value: null },
  cpuids: [i % 4], memory: 16 + i, blocks: i % 5 === 0 ? [{ blockName: 'storage', blockDeviceName: `d${i}` }] : [], bridges: i % 4 === 0 ? [{ netif: 'service', bridge: 'br0' }] : [],
  cpus: 1, ...(i % 2 === 1 ? { arguments: [`--n=${i}`] } : {}), ...(i % 6 === 0 ? { startup: i } : {}), ...o,
});

test('the cached state encoding is byte for byte encodeState, also after entries change', () => {
  const configs = Array.from({ length: 40 }, (_, i) => cfg(i));
  const enc = new StateEncoder();
  fc.assert(
    fc.property(fc.uniqueArray(fc.nat(39), { maxLength: 40 }), fc.boolean(), (idx, withPolicy) => {
      const dump: StateDump = {
        unikernels: idx.map((i) => ({ name: { path: i % 3 === 0 ? ['org'] : [], label: `u${i}` }, config: configs[i] })),
        policies: withPolicy ? [{ name: { path: [] }, policy: { cpuids: [0, 1], unikernels: 5n, memory: 1000, block: 10, bridges: ['br0'] } }] : [],
      };
      const got = enc.encode(dump);
      assert.deepEqual(Buffer.from(got), Buffer.from(encodeState(dump)));
      const back = decodeState(got);
      assert.ok(back.ok && back.value.version === 'unikernels_and_policies');
    }),
    { numRuns: 100 },
  );
  // the same configuration object under another name is encoded under that name
  const one = configs[1];
  const a = enc.encode({ unikernels: [{ name: { path: [], label: 'x' }, config: one }], policies: [] });
  const b = enc.encode({ unikernels: [{ name: { path: [], label: 'y' }, config: one }], policies: [] });
  assert.notDeepEqual(Buffer.from(a), Buffer.from(b));
  assert.deepEqual(Buffer.from(b), Buffer.from(encodeState({ unikernels: [{ name: { path: [], label: 'y' }, config: one }], policies: [] })));
  // a large file (length octets beyond two bytes)
  const big = { unikernels: configs.map((c, i) => ({ name: { path: [], label: `big${i}` }, config: { ...c, image: new Uint8Array(70_000).fill(i) } })), policies: [] };
  assert.deepEqual(Buffer.from(enc.encode(big)), Buffer.from(encodeState(big)));
});
