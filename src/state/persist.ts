/**
 * The state file encoding with a cache per unikernel: vmmd rewrites the whole file after every
 * create and destroy, and with thousands of unikernels re-encoding every configuration (and
 * its image) each time would dominate. Entries are encoded once per configuration object
 * (configurations in the supervisor's state are never mutated) and the file is assembled
 * around them. The bytes are exactly those of encodeState (alternative [6]).
 */
import { encodeDer, name, pooledCopy, seq } from '../core/asn.js';
import { nameToString } from '../core/name.js';
import { readHeader } from '../core/der.js';
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

/**
 * Whether an encoded entry (SEQUENCE { name UTF8String, ... }) carries the name `text`: a
 * configuration object persisted under one name is re-encoded if it shows up under another.
 * Names are ASCII (labels are [a-z0-9.-]), so characters compare with octets.
 */
function entryHasName(der: Uint8Array, text: string): boolean {
  const outer = readHeader(der, 0, der.length);
  const n = readHeader(der, outer.headerLength, der.length);
  if (n.cls !== 0 || n.tag !== 12 || n.length !== text.length) return false;
  const p = outer.headerLength + n.headerLength;
  for (let i = 0; i < n.length; i++) if (der[p + i] !== text.charCodeAt(i)) return false;
  return true;
}

export class StateEncoder {
  /** The encoded entry per configuration object (kept small: vmmd holds one per unikernel). */
  private cache = new WeakMap<UnikernelConfig, Uint8Array>();

  encode(dump: StateDump): Uint8Array {
    const entries = dump.unikernels.map((u) => {
      const key = nameToString(u.name);
      const hit = this.cache.get(u.config);
      if (hit !== undefined && entryHasName(hit, key)) return hit;
      const der = pooledCopy(encodeDer(unikernelEntry, u));
      this.cache.set(u.config, der);
      return der;
    });
    const policies = dump.policies.map((p) => encodeDer(policyEntry, p));
    const body = [...tlv(0x30, entries), ...tlv(0x30, policies)];
    return concat(tlv(0xa6, tlv(0x30, [concat(body)])));
  }
}

/** Reference encoding (no cache), for checks. */
export const encodeStateUncached = encodeState;
