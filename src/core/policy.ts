/**
 * Policies (SEMANTICS.md §3.2): usability (checked by the CLI before sending or signing a
 * policy, not by vmmd), the sub-policy relation with upstream's messages in upstream's
 * order, and equality.
 *
 * `unikernels` is a bigint because the root policy allows 2^62-1 (OCaml's max_int);
 * `memory` and `block` are MB as safe integers.
 */
import { type Result, ok, err } from './result.js';
import type { Policy } from './wire/common.js';
import { compareLabels } from './trie.js';

export type { Policy };

/** Maximum native integer of upstream (63-bit OCaml int): the root policy's unikernel count. */
export const MAX_UNIKERNELS = 2n ** 62n - 1n;

/** Ascending, de-duplicated CPU ids. */
export function cpuidSet(ids: readonly number[]): number[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}

/** Byte-order sorted, de-duplicated names (OCaml's String_set.elements order). */
export function stringSet(xs: readonly string[]): string[] {
  return [...new Set(xs)].sort(compareLabels);
}

/** Elements of `xs` that are not in `of`, as an ascending set. */
export function cpuidsNotIn(xs: readonly number[], of: readonly number[]): number[] {
  const s = new Set(of);
  return cpuidSet(xs.filter((x) => !s.has(x)));
}

export function stringsNotIn(xs: readonly string[], of: readonly string[]): string[] {
  const s = new Set(of);
  return stringSet(xs.filter((x) => !s.has(x)));
}

export const formatList = (xs: readonly (number | string)[]): string => xs.join(', ');

/**
 * CLI-side usability rules (upstream checks them in the client before a policy is sent or
 * signed; albatrossd itself does not). First failure wins.
 */
export function checkUsable(p: Policy): Result<void> {
  if (p.unikernels <= 0n) return err('Unusable policy with no unikernels');
  if (p.cpuids.length === 0) return err('Unusable policy with no CPUids');
  if (p.memory <= 16) return err(`Unusable policy with memory ${p.memory} MB <= 16 MB`);
  if (p.block !== undefined && p.block < 0) return err(`Unusable policy with block ${p.block} MB < 0 MB`);
  return ok(undefined);
}

/** Warnings the CLI prints for a usable but probably unintended policy. */
export function policyWarnings(p: Policy): string[] {
  return p.bridges.length === 0 ? ['policy allows no bridges: unikernels below it cannot have network devices'] : [];
}

/**
 * Does `sub` fit into `sup`? Upstream's checks in upstream's order, first failure wins
 * (SEMANTICS.md §3.2 items 1-5). Sets are compared as sets (duplicates are irrelevant).
 */
export function isSubPolicy(sub: Policy, sup: Policy): Result<void> {
  if (sup.unikernels < sub.unikernels) {
    return err(`policy above allows ${sup.unikernels} unikernels, which is fewer than ${sub.unikernels}`);
  }
  if (sup.memory < sub.memory) {
    return err(`policy above allows ${sup.memory} MB memory, which is fewer than ${sub.memory} MB`);
  }
  const extraCpus = cpuidsNotIn(sub.cpuids, sup.cpuids);
  if (extraCpus.length > 0) return err(`policy above does not allow CPUids ${formatList(extraCpus)}`);
  if (stringsNotIn(sub.bridges, sup.bridges).length > 0) {
    return err(
      `policy above allows bridge(s) ${formatList(stringSet(sup.bridges))}, which is not a superset of ${formatList(stringSet(sub.bridges))}`,
    );
  }
  const blockOk =
    sub.block === undefined ? true : sup.block === undefined ? false : sup.block >= sub.block;
  if (!blockOk) {
    return err(`policy above allows ${sup.block ?? 0} MB block storage, which is fewer than ${sub.block ?? 0} MB`);
  }
  return ok(undefined);
}

function sameSet<T>(a: readonly T[], b: readonly T[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  if (sa.size !== sb.size) return false;
  for (const x of sa) if (!sb.has(x)) return false;
  return true;
}

/** Upstream's Policy.equal: numbers equal, block equal (both absent or same), cpuids and bridges equal as sets. */
export function policyEqual(a: Policy, b: Policy): boolean {
  return (
    a.unikernels === b.unikernels &&
    a.memory === b.memory &&
    a.block === b.block &&
    sameSet(a.cpuids, b.cpuids) &&
    sameSet(a.bridges, b.bridges)
  );
}

/** A policy in canonical form: cpuids ascending, bridges in byte order, both without duplicates. */
export function normalisePolicy(p: Policy): Policy {
  const out: Policy = { unikernels: p.unikernels, cpuids: cpuidSet(p.cpuids), memory: p.memory, bridges: stringSet(p.bridges) };
  if (p.block !== undefined) out.block = p.block;
  return out;
}

/** Human-readable one-line summary (for logs and the CLI). */
export function formatPolicy(p: Policy): string {
  return `${p.unikernels} unikernels, CPUids ${formatList(cpuidSet(p.cpuids))}, ${p.memory} MB memory, ` +
    `${p.block === undefined ? 'no' : `${p.block} MB`} block storage, bridges ${formatList(stringSet(p.bridges))}`;
}
