/**
 * The state file (WIRE.md §4 `State`): the unikernels and policies albatrossd
 * persists, and restores at start-up.
 *
 * Each trie is a SEQUENCE OF (name, value) with the full textual name. Upstream reads
 * every alternative's names with `Name.of_string` (src/vmm_asn.ml, `trie`), so the
 * dotted names of the 2021 files ("foo.hello") become one root-level label
 * (`:foo.hello`), exactly as our `name` codec parses them. Upstream asserts that no
 * two entries share a trie key; we refuse such a file with an error instead.
 *
 * Writing always uses alternative [6]; entries are written in the order given (the
 * caller sorts them in trie pre-order, as upstream's `Vmm_trie.all` does).
 */
import {
  type Codec, type TypeOf, choice, decodeDer, decodeFail, encodeDer, explicit, name, refine, seq, seqOf,
} from '../asn.js';
import { type Name, nameKey, nameToString } from '../name.js';
import { type Result, ok } from '../result.js';
import { type Policy, type UnikernelConfig, policy } from './common.js';
import {
  unikernelConfig, unikernelConfigV0, unikernelConfigV1, unikernelConfigV2, unikernelConfigV3, unikernelConfigV4,
} from './unikernel.js';

export interface UnikernelEntry {
  name: Name;
  config: UnikernelConfig;
}
export interface PolicyEntry {
  name: Name;
  policy: Policy;
}

/** The persisted state, normalised: every alternative of the file decodes to this. */
export interface StateDump {
  unikernels: UnikernelEntry[];
  policies: PolicyEntry[];
}

/** Refuses two entries with the same trie key (`foo:` and `:foo` share one). */
function uniqueNames<T extends { name: Name }>(what: string, c: Codec<T[]>): Codec<T[]> {
  return refine(c, what, (entries, at) => {
    const seen = new Map<string, number>();
    entries.forEach((e, i) => {
      const key = nameKey(e.name).join(':');
      const first = seen.get(key);
      if (first !== undefined)
        decodeFail(`${at}[${i}]`, `${JSON.stringify(nameToString(e.name))} has the same trie key as entry ${first}`);
      seen.set(key, i);
    });
  });
}

const unikernelTrie = (config: Codec<UnikernelConfig>): Codec<UnikernelEntry[]> =>
  uniqueNames(`Trie{${config.what}}`, seqOf(seq('UnikernelEntry', { name, config })));

const policyTrie: Codec<PolicyEntry[]> = uniqueNames('Trie{Policy}', seqOf(seq('PolicyEntry', { name, policy })));

/** The state file as stored; its JSON form is what vmmc_inspect shows. */
export const stateFile = choice(
  'State',
  {
    v1_unikernels: explicit(0, unikernelTrie(unikernelConfigV1)),
    v0_unikernels: explicit(1, unikernelTrie(unikernelConfigV0)),
    v2_unikernels: explicit(2, unikernelTrie(unikernelConfigV2)),
    v3_unikernels: explicit(3, unikernelTrie(unikernelConfigV3)),
    v3_unikernels_and_policies: explicit(4, seq('StateV3', {
      unikernels: unikernelTrie(unikernelConfigV3),
      policies: policyTrie,
    })),
    v4_unikernels_and_policies: explicit(5, seq('StateV4', {
      unikernels: unikernelTrie(unikernelConfigV4),
      policies: policyTrie,
    })),
    unikernels_and_policies: explicit(6, seq('StateV6', {
      unikernels: unikernelTrie(unikernelConfig),
      policies: policyTrie,
    })),
  },
  { 7: 'State [7] is reserved and not supported' },
);
export type StateFile = TypeOf<typeof stateFile>;
/** Which alternative a state file used. */
export type StateVersion = StateFile['kind'];

/** The normalised dump of any alternative (the 2021 ones carry no policies). */
export function stateDumpOf(s: StateFile): StateDump {
  switch (s.kind) {
    case 'v1_unikernels':
    case 'v0_unikernels':
    case 'v2_unikernels':
    case 'v3_unikernels':
      return { unikernels: s.value, policies: [] };
    case 'v3_unikernels_and_policies':
    case 'v4_unikernels_and_policies':
    case 'unikernels_and_policies':
      return { unikernels: s.value.unikernels, policies: s.value.policies };
    default: {
      const never: never = s;
      throw new TypeError(`unknown state alternative ${String((never as StateFile).kind)}`);
    }
  }
}

export function decodeState(bytes: Uint8Array): Result<{ version: StateVersion; dump: StateDump }> {
  const r = decodeDer(stateFile, bytes);
  if (!r.ok) return r;
  return ok({ version: r.value.kind, dump: stateDumpOf(r.value) });
}

/** Always alternative [6], entries in the order given. */
export function encodeState(dump: StateDump): Uint8Array {
  return encodeDer(stateFile, {
    kind: 'unikernels_and_policies',
    value: { unikernels: dump.unikernels, policies: dump.policies },
  });
}
