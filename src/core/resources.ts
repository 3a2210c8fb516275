/**
 * The resource state of albatrossd (SEMANTICS.md §3.1) as an immutable value, and the checks
 * that decide whether a unikernel, block device or policy may be added (§3.4, §3.7, §3.8).
 * The counterpart of upstream's Vmm_resources.
 *
 * Every function returns a new value (or a Result of one); the old value stays valid, so
 * vmmd's pure transitions can compute a candidate state and drop it on failure.
 *
 * Messages are upstream's, byte for byte, where upstream's text already names the numbers
 * involved. Where it does not (disallowed CPU ids or bridges), the allowed set is appended
 * after the unchanged upstream text (`...; policy allows ...`), so clients matching on the
 * upstream prefix keep working.
 *
 * Usage accounting (departs from upstream v2.7.2, which admits a unikernel or block device
 * against the policy of its own path only, so sibling sub-policies could each spend their
 * parent's whole delegation): a unikernel or block device counts against EVERY policy on its
 * path, from the root's (the host's resources) to its own, and is admitted only when none of
 * them would be exceeded. Policies below a path are caps, not reservations: siblings may each
 * be as large as their parent, but what runs (count, memory; CPU ids and bridges allowed by
 * every policy) or is stored (block size) below the parent never exceeds the parent. The own
 * path's policy is checked first with upstream's messages; an ancestor's refusal names it.
 *
 * "Below P" means: the object's *path* is P or starts with P. The unikernel `:a` (root path,
 * label `a`) has the trie key of the path `a:` (§2.5) but is not below `a:` and does not count
 * against its policy (upstream counts it there).
 *
 * Upstream quirk kept: installing a policy checks it against each ancestor policy strictly
 * between the root and its path; the root policy (the host's resources) is not consulted there.
 * Beyond upstream, at most limits.maxPoliciesBelowPolicy policies may be installed below a
 * path with a policy (the root's excepted).
 */
import { type Result, ok, err } from './result.js';
import { type Name, type Path, nameKey, nameToString, blockName, pathAncestors } from './name.js';
import { limits } from './limits.js';
import { Trie } from './trie.js';
import {
  type Policy, MAX_UNIKERNELS, cpuidSet, cpuidsNotIn, formatList, isSubPolicy, policyEqual, stringSet,
} from './policy.js';
import type { BlockDevice, NetDevice, UnikernelConfig } from './wire/common.js';

export interface BlockDeviceState {
  /** Size in MB. */
  readonly size: number;
  /** Attached to a running unikernel. */
  readonly active: boolean;
}

/** What the unikernel table stores: at least the configuration (vmmd adds pid, taps, ...). */
export interface UnikernelEntry {
  readonly config: UnikernelConfig;
}

export interface Resources<U extends UnikernelEntry = UnikernelEntry> {
  /** Keyed by the path's labels. */
  readonly policies: Trie<Policy>;
  /** Keyed by nameKey (path labels, then the label). */
  readonly unikernels: Trie<U>;
  readonly blockDevices: Trie<BlockDeviceState>;
  /**
   * Running sums of everything at or below each path (count and memory of unikernels, active
   * and inactive block storage), keyed by the path (an object counts at its path and every
   * prefix of it, never at its trie key), maintained by the functions of this module so that
   * admission checks cost O(depth) rather than a walk over all unikernels. Build values with
   * emptyResources and these functions only.
   */
  readonly totals: Trie<Totals>;
  /** `albatrossd --allow-zvol-for PATH` (SEMANTICS.md §4): block devices under /dev/zvol are not tracked there. */
  readonly zvolPath?: Path;
}

export interface Totals {
  readonly unikernels: number;
  readonly memory: bigint;
  readonly blockActive: bigint;
  readonly blockInactive: bigint;
}

const ZERO: Totals = { unikernels: 0, memory: 0n, blockActive: 0n, blockInactive: 0n };

/** Adds `d` to the totals of `path` and every prefix of it (entries that drop to zero are removed). */
function adjustTotals(t: Trie<Totals>, path: Path, d: Partial<Totals>): Trie<Totals> {
  return t.updatePrefixes(path, (_depth, old) => {
    const o = old ?? ZERO;
    const nv: Totals = {
      unikernels: o.unikernels + (d.unikernels ?? 0),
      memory: o.memory + (d.memory ?? 0n),
      blockActive: o.blockActive + (d.blockActive ?? 0n),
      blockInactive: o.blockInactive + (d.blockInactive ?? 0n),
    };
    return nv.unikernels === 0 && nv.memory === 0n && nv.blockActive === 0n && nv.blockInactive === 0n ? undefined : nv;
  });
}

const totalsAt = (res: Resources<UnikernelEntry>, path: Path): Totals => res.totals.find(path) ?? ZERO;

export function emptyResources<U extends UnikernelEntry = UnikernelEntry>(opts: { zvolPath?: Path } = {}): Resources<U> {
  const r: Resources<U> = { policies: Trie.empty(), unikernels: Trie.empty(), blockDevices: Trie.empty(), totals: Trie.empty() };
  return opts.zvolPath === undefined ? r : { ...r, zvolPath: [...opts.zvolPath] };
}

const pathKey = (p: Path): readonly string[] => p;

export const findPolicy = (res: Resources<UnikernelEntry>, path: Path): Policy | undefined => res.policies.find(pathKey(path));
export const findUnikernel = <U extends UnikernelEntry>(res: Resources<U>, name: Name): U | undefined =>
  res.unikernels.find(nameKey(name));
export const findBlock = (res: Resources<UnikernelEntry>, name: Name): BlockDeviceState | undefined =>
  res.blockDevices.find(nameKey(name));

/** The host bridge of a network device: its bridge, or its unikernel-side name if absent. */
export const hostBridge = (d: NetDevice): string => d.bridge ?? d.netif;

/** Host bridges of a configuration, in configuration order (duplicates kept, as upstream). */
export const unikernelBridges = (c: UnikernelConfig): string[] => c.bridges.map(hostBridge);

/** The block table name of a unikernel's block device: the unikernel's path + (host device or device name). */
export const hostBlockName = (unikernel: Name, d: BlockDevice): Name => blockName(unikernel, d.blockDeviceName ?? d.blockName);

/** Block devices of a unikernel that live in the block table (zvol devices excepted), in configuration order. */
export function trackedBlockNames(res: Resources<UnikernelEntry>, unikernel: Name, c: UnikernelConfig): Name[] {
  return c.blocks.map((d) => hostBlockName(unikernel, d)).filter((b) => !zvolAllowed(res, b));
}

function samePath(a: Path, b: Path): boolean {
  return a.length === b.length && a.every((l, i) => l === b[i]);
}

/** `--allow-zvol-for`: in exactly that path, host devices starting with /dev/zvol are not looked up. */
export function zvolAllowed(res: Resources<UnikernelEntry>, block: Name): boolean {
  return res.zvolPath !== undefined && (block.label ?? '').startsWith('/dev/zvol') && samePath(block.path, res.zvolPath);
}

// ------------------------------------------------------------------ usage

/**
 * Union of CPU ids and host bridges of the unikernels whose path is at or below `path` (a walk:
 * policy installs only). Strictly below the trie node: the entry at the node itself is the
 * unikernel one level up whose label equals the path's last label.
 */
function usedSets(res: Resources<UnikernelEntry>, path: Path): { cpuids: Set<number>; bridges: Set<string> } {
  const u = { cpuids: new Set<number>(), bridges: new Set<string>() };
  res.unikernels.forEachValue(pathKey(path), (e) => {
    for (const c of e.config.cpuids) u.cpuids.add(c);
    for (const d of e.config.bridges) u.bridges.add(hostBridge(d));
  }, true);
  return u;
}

/** The policies on a path, from its own inward-out to the root's: [policy path, policy]. */
function policiesOnPath(res: Resources<UnikernelEntry>, path: Path): Array<[string[], Policy]> {
  return res.policies.ancestors(pathKey(path)).reverse();
}

/** How a refusal names the policy at `p`. */
const policyLabel = (p: Path): string => (p.length === 0 ? 'the root policy' : `policy ${p.join(':')}`);

/** Resource figures of everything whose path is at or below a path. O(depth). */
export interface UsageTotals {
  /** Running unikernels. */
  readonly unikernels: number;
  /** Sum of their memory, MB. */
  readonly memory: number;
  /** Block storage attached to running unikernels, MB. */
  readonly blockActive: number;
  /** Block storage not attached, MB. */
  readonly blockInactive: number;
  /** blockActive + blockInactive. */
  readonly block: number;
}

/** Totals plus the sets in use, which need a walk over the unikernels below the path. */
export interface Usage extends UsageTotals {
  /** Union of their CPU ids, ascending. */
  readonly cpuids: number[];
  /** Union of their host bridges, byte order. */
  readonly bridges: string[];
}

export function usageTotals(res: Resources<UnikernelEntry>, path: Path): UsageTotals {
  const t = totalsAt(res, path);
  return {
    unikernels: t.unikernels,
    memory: Number(t.memory),
    blockActive: Number(t.blockActive),
    blockInactive: Number(t.blockInactive),
    block: Number(t.blockActive + t.blockInactive),
  };
}

export function usage(res: Resources<UnikernelEntry>, path: Path): Usage {
  const s = usedSets(res, path);
  return { ...usageTotals(res, path), cpuids: cpuidSet([...s.cpuids]), bridges: stringSet([...s.bridges]) };
}

/**
 * Totals of a path and of each of its ancestors up to the root, innermost first: the figures
 * upstream reports as `albatross-unikernels` metrics after every change.
 */
export function usageAlongPath(res: Resources<UnikernelEntry>, path: Path): Array<{ path: Path; usage: UsageTotals }> {
  const out: Array<{ path: Path; usage: UsageTotals }> = [];
  for (let i = path.length; i >= 0; i--) out.push({ path: path.slice(0, i), usage: usageTotals(res, path.slice(0, i)) });
  return out;
}

/**
 * The `n` of `console add(n)` for a new unikernel (SEMANTICS.md §5.2 step 4): 2^62-1 at the
 * root path, the `unikernels` limit of the policy at its path, 0 without a policy.
 */
export function consoleLimit(res: Resources<UnikernelEntry>, name: Name): bigint {
  if (name.path.length === 0) return MAX_UNIKERNELS;
  return findPolicy(res, name.path)?.unikernels ?? 0n;
}

// ------------------------------------------------------------------ unikernels

const allowedSuffix = (what: string, xs: readonly (number | string)[]): string =>
  xs.length === 0 ? `; policy allows no ${what}` : `; policy allows ${what} ${formatList(xs)}`;

function checkPolicyForUnikernel(p: Policy, used: Totals, c: UnikernelConfig): Result<void> {
  if (BigInt(used.unikernels) + 1n > p.unikernels) return err(`maximum amount of unikernels (${p.unikernels}) reached`);
  if (BigInt(c.memory) > BigInt(p.memory) - used.memory) {
    return err(`maximum allowed memory (${p.memory}, used ${used.memory}) would be exceeded (requesting ${c.memory})`);
  }
  const extra = cpuidsNotIn(c.cpuids, p.cpuids);
  if (extra.length > 0) {
    return err(`CPUids ${formatList(extra)} are not allowed by policy${allowedSuffix('CPUids', cpuidSet(p.cpuids))}`);
  }
  const allowed = new Set(p.bridges);
  const disallowed = unikernelBridges(c).filter((b) => !allowed.has(b));
  if (disallowed.length > 0) {
    return err(`bridges ${formatList(disallowed)} not allowed by policy${allowedSuffix('bridges', stringSet(p.bridges))}`);
  }
  return ok(undefined);
}

/** A unikernel against the policy of an ancestor of its path (the refusal names that policy). */
function checkAncestorForUnikernel(name: Name, at: Path, p: Policy, used: Totals, c: UnikernelConfig): Result<void> {
  const who = `create ${nameToString(name)}`;
  const pol = policyLabel(at);
  if (BigInt(used.unikernels) + 1n > p.unikernels) {
    return err(`${who}: one more unikernel would exceed ${pol} (${p.unikernels} unikernels, ${used.unikernels} running below it)`);
  }
  if (BigInt(c.memory) > BigInt(p.memory) - used.memory) {
    return err(`${who}: memory ${c.memory} MB would exceed ${pol} (${p.memory} MB, ${used.memory} MB in use below it)`);
  }
  const extra = cpuidsNotIn(c.cpuids, p.cpuids);
  if (extra.length > 0) return err(`${who}: CPUids ${formatList(extra)} are not allowed by ${pol}${allowedSuffix('CPUids', cpuidSet(p.cpuids))}`);
  const allowed = new Set(p.bridges);
  const disallowed = stringSet(unikernelBridges(c).filter((b) => !allowed.has(b)));
  if (disallowed.length > 0) return err(`${who}: bridges ${formatList(disallowed)} are not allowed by ${pol}${allowedSuffix('bridges', stringSet(p.bridges))}`);
  return ok(undefined);
}

export interface AdmissionOptions {
  /**
   * Check only the policy of the object's own path, as upstream v2.7.2 does: for restoring
   * the state file at start-up, which older versions or upstream may have written with
   * siblings that together exceed an ancestor.
   */
  readonly ownPolicyOnly?: boolean;
}

/**
 * Admission check for unikernel `name` with configuration `c` (SEMANTICS.md §3.7): the policy
 * of its own path (upstream's messages), then the policy of every ancestor of its path up to
 * the root's, innermost first (usage accounting, see the module comment), then its block
 * devices, then the name.
 */
export function checkUnikernel(res: Resources<UnikernelEntry>, name: Name, c: UnikernelConfig, o: AdmissionOptions = {}): Result<void> {
  if (name.label === undefined) return err(`unikernel name ${nameToString(name)} has no label`);
  // Guards the accounting below (a negative size would free capacity); validateConfig refuses 0 too.
  if (!Number.isSafeInteger(c.memory) || c.memory < 0) return err(`invalid memory ${c.memory} MB`);
  for (const [at, p] of policiesOnPath(res, name.path)) {
    const own = at.length === name.path.length;
    if (!own && o.ownPolicyOnly === true) continue;
    const used = totalsAt(res, at);
    const r = own ? checkPolicyForUnikernel(p, used, c) : checkAncestorForUnikernel(name, at, p, used, c);
    if (!r.ok) return r;
  }
  for (const d of c.blocks) {
    const b = hostBlockName(name, d);
    if (zvolAllowed(res, b)) continue;
    const s = findBlock(res, b);
    if (s === undefined) return err(`block device ${nameToString(b)} not found`);
    if (s.active) return err(`block device ${nameToString(b)} already in use`);
  }
  if (res.unikernels.has(nameKey(name))) return err('unikernel with same name already exists');
  return ok(undefined);
}

/**
 * Admission check as if the running unikernel `name` were not there (force-create and restart,
 * SEMANTICS.md §5.3/§5.5): its memory, count and block devices are discounted.
 */
export function checkUnikernelReplacing(res: Resources<UnikernelEntry>, name: Name, c: UnikernelConfig, o: AdmissionOptions = {}): Result<void> {
  if (!res.unikernels.has(nameKey(name))) return checkUnikernel(res, name, c, o);
  const without = removeUnikernel(res, name);
  return without.ok ? checkUnikernel(without.value, name, c, o) : without;
}

function setBlocks<U extends UnikernelEntry>(res: Resources<U>, blocks: readonly Name[], active: boolean): Result<Resources<U>> {
  let r: Resources<U> = res;
  for (const b of blocks) {
    const next = setBlockActive(r, b, active);
    if (!next.ok) return next;
    r = next.value;
  }
  return ok(r);
}

/**
 * Registers a started unikernel: repeats the admission check (so the table can never
 * over-commit), stores the entry and marks its block devices active.
 */
export function addUnikernel<U extends UnikernelEntry>(res: Resources<U>, name: Name, entry: U, o: AdmissionOptions = {}): Result<Resources<U>> {
  const c = checkUnikernel(res, name, entry.config, o);
  if (!c.ok) return c;
  const key = nameKey(name);
  const withUnikernel: Resources<U> = {
    ...res,
    unikernels: res.unikernels.set(key, entry),
    totals: adjustTotals(res.totals, name.path, { unikernels: 1, memory: BigInt(entry.config.memory) }),
  };
  return setBlocks(withUnikernel, trackedBlockNames(res, name, entry.config), true);
}

/** Removes a stopped unikernel; its block devices become inactive again. */
export function removeUnikernel<U extends UnikernelEntry>(res: Resources<U>, name: Name): Result<Resources<U>> {
  const e = findUnikernel(res, name);
  if (e === undefined) return err('unknown unikernel');
  const r = setBlocks(res, trackedBlockNames(res, name, e.config), false);
  if (!r.ok) return r;
  const key = nameKey(name);
  return ok({
    ...r.value,
    unikernels: r.value.unikernels.remove(key),
    totals: adjustTotals(r.value.totals, name.path, { unikernels: -1, memory: -BigInt(e.config.memory) }),
  });
}

// ------------------------------------------------------------------ block devices

/** Upstream's Name.pp, as used in the resource-level "already exists" message. */
const ppName = (n: Name): string => `[unikernel: ${n.path.join(':')}:${n.label ?? 'no name'}]`;

/**
 * Admission check for a block device of `size` MB (SEMANTICS.md §3.8): the name must be free,
 * then the policy of the device's own path (if any; upstream's messages) and that of every
 * ancestor of its path up to the root's (innermost first, naming the policy) must allow block
 * storage and have room.
 *
 * The "already exists" text is the resource-level one (`block device with name [unikernel:
 * <path>:<label>] already exists`); vmmd's `block add` handler checks existence first itself
 * and answers `block device with same name already exists`.
 */
export function checkBlock(res: Resources<UnikernelEntry>, name: Name, size: number): Result<void> {
  if (name.label === undefined) return err(`block device name ${nameToString(name)} has no label`);
  if (findBlock(res, name) !== undefined) return err(`block device with name ${ppName(name)} already exists`);
  for (const [at, p] of policiesOnPath(res, name.path)) {
    const own = at.length === name.path.length;
    const u = totalsAt(res, at);
    const used = u.blockActive + u.blockInactive;
    if (p.block === undefined) {
      return err(own ? 'no block devices are allowed by policy' : `block add ${nameToString(name)}: ${policyLabel(at)} allows no block devices`);
    }
    if (BigInt(size) > BigInt(p.block) - used) {
      return err(own
        ? `block device policy limit of ${p.block} MB (used ${used} MB) would be exceeded by the request (${size} MB)`
        : `block add ${nameToString(name)}: ${size} MB would exceed the block storage of ${policyLabel(at)} (${p.block} MB, ${used} MB in use below it)`);
    }
  }
  return ok(undefined);
}

/**
 * `block add`: the admission check, then a size check (upstream refuses sizes <= 0 only when
 * computing the file size, with this message), then the device is stored inactive.
 */
export function addBlock<U extends UnikernelEntry>(res: Resources<U>, name: Name, size: number): Result<Resources<U>> {
  if (!Number.isSafeInteger(size)) return err(`invalid block device size ${size} MB`);
  const c = checkBlock(res, name, size);
  if (!c.ok) return c;
  if (size <= 0) return err('overflow while computing bytes');
  return ok(registerBlock(res, name, size));
}

/**
 * Startup scan of `<dbdir>/block` (SEMANTICS.md §4): registers an existing file as an inactive
 * device without policy checks (policies are not loaded yet at that point).
 */
export function registerBlock<U extends UnikernelEntry>(res: Resources<U>, name: Name, size: number): Resources<U> {
  const key = nameKey(name);
  const { trie, previous } = res.blockDevices.insert(key, { size, active: false });
  let totals = res.totals;
  if (previous !== undefined) {
    totals = adjustTotals(totals, name.path, previous.active ? { blockActive: -BigInt(previous.size) } : { blockInactive: -BigInt(previous.size) });
  }
  return { ...res, blockDevices: trie, totals: adjustTotals(totals, name.path, { blockInactive: BigInt(size) }) };
}

export type BlockOperation = 'remove block' | 'set block' | 'dump block';

/** A device that exists and is not attached, else `<op>: not found` / `<op>: is in use` (SEMANTICS.md §4). */
export function checkBlockIdle(res: Resources<UnikernelEntry>, name: Name, op: BlockOperation): Result<BlockDeviceState> {
  const b = findBlock(res, name);
  if (b === undefined) return err(`${op}: not found`);
  if (b.active) return err(`${op}: is in use`);
  return ok(b);
}

export function removeBlock<U extends UnikernelEntry>(res: Resources<U>, name: Name): Result<Resources<U>> {
  const c = checkBlockIdle(res, name, 'remove block');
  if (!c.ok) return c;
  const key = nameKey(name);
  return ok({
    ...res,
    blockDevices: res.blockDevices.remove(key),
    totals: adjustTotals(res.totals, name.path, { blockInactive: -BigInt(c.value.size) }),
  });
}

/** Flips the active flag; refuses an unknown device or one already in the requested state (as upstream). */
export function setBlockActive<U extends UnikernelEntry>(res: Resources<U>, name: Name, active: boolean): Result<Resources<U>> {
  if (zvolAllowed(res, name)) return ok(res);
  const b = findBlock(res, name);
  if (b === undefined) return err(`block device ${nameToString(name)} not in trie`);
  if (b.active === active) {
    return err(`block device ${nameToString(name)} already in state ${active ? 'active' : 'inactive'}`);
  }
  const key = nameKey(name);
  const size = BigInt(b.size);
  return ok({
    ...res,
    blockDevices: res.blockDevices.set(key, { size: b.size, active }),
    totals: adjustTotals(res.totals, name.path, active ? { blockActive: size, blockInactive: -size } : { blockActive: -size, blockInactive: size }),
  });
}

// ------------------------------------------------------------------ policies

export type PolicyInsert<U extends UnikernelEntry> =
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'added'; readonly resources: Resources<U> };

/**
 * `policy add` at `path` (SEMANTICS.md §3.4):
 * 1. an identical policy already there -> `unchanged` (vmmd replies `no modification of policy`);
 * 2. sub-policy of every policy at an ancestor strictly between the root and `path`, nearest
 *    first (the root policy is *not* consulted - upstream quirk);
 * 3. a policy at a new path: below none of those ancestors are limits.maxPoliciesBelowPolicy
 *    policies installed already (beyond upstream);
 * 4. every policy strictly below `path` must fit into the new one (in upstream's fold order);
 * 5. current usage below `path`: CPU ids, bridges, count, memory, block storage;
 * 6. stored.
 */
export function insertPolicy<U extends UnikernelEntry>(res: Resources<U>, path: Path, p: Policy): Result<PolicyInsert<U>> {
  const existing = findPolicy(res, path);
  if (existing !== undefined && policyEqual(existing, p)) return ok({ kind: 'unchanged' });
  const ancestors = pathAncestors(path).reverse();
  for (const a of ancestors) {
    const sup = findPolicy(res, a);
    if (sup === undefined) continue;
    const r = isSubPolicy(p, sup);
    if (!r.ok) return r;
  }
  if (existing === undefined) {
    for (const a of ancestors) {
      if (findPolicy(res, a) === undefined) continue;
      let n = 0;
      res.policies.forEachValue(pathKey(a), () => n++, true);
      if (n >= limits.maxPoliciesBelowPolicy) {
        return err(`policy for ${path.join(':')}: ${n} policies are already installed below ${a.join(':')}, ` +
          `at most ${limits.maxPoliciesBelowPolicy} are allowed below a policy (maxPoliciesBelowPolicy)`);
      }
    }
  }
  const below = res.policies.fold<Result<void>>(
    pathKey(path),
    (key, sub, acc) => (!acc.ok || key.length === path.length ? acc : isSubPolicy(sub, p)),
    ok(undefined),
  );
  if (!below.ok) return below;
  const u = { ...usedSets(res, path), ...totalsAt(res, path) };
  const extraCpus = cpuidsNotIn([...u.cpuids], p.cpuids);
  if (extraCpus.length > 0) return err(`policy does not allow CPUids ${formatList(extraCpus)}${allowedSuffix('CPUids', cpuidSet(p.cpuids))}`);
  const allowedBridges = new Set(p.bridges);
  if ([...u.bridges].some((b) => !allowedBridges.has(b))) {
    return err(
      `policy allows bridges ${formatList(stringSet(p.bridges))}, which is not a superset of ${formatList(stringSet([...u.bridges]))}`,
    );
  }
  if (BigInt(u.unikernels) > p.unikernels) {
    return err(`unikernel would exceed running unikernel limit set by policy to ${p.unikernels}, running ${u.unikernels}`);
  }
  if (u.memory > BigInt(p.memory)) {
    return err(`unikernel would exceed running memory limit set by policy to ${p.memory} MB, used ${u.memory} MB`);
  }
  const block = u.blockActive + u.blockInactive;
  const limit = p.block ?? 0;
  if (block > BigInt(limit)) {
    return err(`unikernel would exceed running block storage limit set by policy to ${limit} MB, used ${block} MB`);
  }
  return ok({ kind: 'added', resources: { ...res, policies: res.policies.set(pathKey(path), p) } });
}

/** Installs a policy without any check: the discovered root policy at startup (SEMANTICS.md §3.3, §5.8 step 7). */
export function setPolicyUnchecked<U extends UnikernelEntry>(res: Resources<U>, path: Path, p: Policy): Resources<U> {
  return { ...res, policies: res.policies.set(pathKey(path), p) };
}

/** `policy remove`: no checks on children or running unikernels (as upstream). */
export function removePolicy<U extends UnikernelEntry>(res: Resources<U>, path: Path): Result<Resources<U>> {
  if (findPolicy(res, path) === undefined) return err('unknown policy');
  return ok({ ...res, policies: res.policies.remove(pathKey(path)) });
}
