/**
 * Policy family (WIRE.md §4 PolicyCmd; the Policy value itself lives in common.ts
 * because the state file uses it too) and the `policies` reply list.
 */
import { type TypeOf, choice, explicit, name, seq, seqOf, tagNull } from '../asn.js';
import { policy } from './common.js';

export const policyCmd = choice('PolicyCmd', {
  info: tagNull(0),
  add: explicit(1, policy),
  remove: tagNull(2),
});
export type PolicyCmd = TypeOf<typeof policyCmd>;

/** One entry of the `policies` reply: the name is relative to the queried path. */
export const namedPolicy = seq('NamedPolicy', {
  name,
  policy,
});
export type NamedPolicy = TypeOf<typeof namedPolicy>;

export const namedPolicyList = seqOf(namedPolicy);
