/**
 * The state file encoding with a cache per unikernel: vmmd rewrites the whole file after every
 * create and destroy, and with thousands of unikernels re-encoding every configuration (and
 * its image) each time would dominate. Entries are encoded once per configuration object
 * (configurations in the supervisor's state are never mutated) and the file is assembled
 * around them. The bytes are exactly those of encodeState (alternative [6]).
 */
import { encodeDer, name, seq } from '../core/asn.js';
import { nameToString } from '../core/name.js';
import type { UnikernelConfig } from '../core/wire/common.js';
import { encodeState, type StateDump } from '../core/wire/state.js';
import { unikernelConfig } from '../core/wire/unikernel.js';
import { policy } from '../core/wire/common.js';

const unikernelEntry = seq('UnikernelEntry', { name, config: unikernelConfig });
const policyEntry = seq('PolicyEntry', { name, policy });

/** DER length octets. */
function lengthOctets(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

function tlv(tag: number, parts: readonly Uint8Array[]): Uint8Array[] {
  const len = parts.reduce((a, p) => a + p.length, 0);
  return [Uint8Array.from([tag, ...lengthOctets(len)]), ...parts];
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export class StateEncoder {
  private cache = new WeakMap<UnikernelConfig, { name: string; der: Uint8Array }>();

  encode(dump: StateDump): Uint8Array {
    const entries = dump.unikernels.map((u) => {
      const key = nameToString(u.name);
      const hit = this.cache.get(u.config);
      if (hit !== undefined && hit.name === key) return hit.der;
      const der = encodeDer(unikernelEntry, u);
      this.cache.set(u.config, { name: key, der });
      return der;
    });
    const policies = dump.policies.map((p) => encodeDer(policyEntry, p));
    const body = [...tlv(0x30, entries), ...tlv(0x30, policies)];
    return concat(tlv(0xa6, tlv(0x30, [concat(body)])));
  }
}

/** Reference encoding (no cache), for checks. */
export const encodeStateUncached = encodeState;
