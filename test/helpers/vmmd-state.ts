/** Pure vmmd state for the tests of src/state/vmmd.ts: an empty restored state and configurations. */
import assert from 'node:assert/strict';
import type { Command } from '../../src/core/wire/wire.js';
import type { Policy, UnikernelConfig } from '../../src/core/wire/common.js';
import { type Backoff, type VmmdState, initialState, restore } from '../../src/state/vmmd.js';
import { solo5Image } from './image.js';

/** A state with no unikernels under `root`, as vmmd starts on an empty state file. */
export function emptyState(root: Policy, backoff: Backoff): VmmdState {
  const r = restore(
    initialState({ tmpdir: '/t', dbdir: '/d', platform: 'linux', dropPath: true, restartArgs: 'all', backoff }),
    { unikernels: [], policies: [] },
    root,
  );
  assert.ok(r.ok);
  return r.value.state;
}

/** A valid Solo5 unikernel configuration: one CPU, 32 MB, no devices. */
export const cfg = (o: Partial<UnikernelConfig> = {}): UnikernelConfig => ({
  typ: 'solo5', compressed: false, image: solo5Image(), addName: false, failBehaviour: { kind: 'quit', value: null },
  cpuids: [0], memory: 32, blocks: [], bridges: [], cpus: 1, ...o,
});

export const uk = (v: Extract<Command, { kind: 'unikernel' }>['value']): Command => ({ kind: 'unikernel', value: v });
