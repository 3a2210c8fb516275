/**
 * A persistent (immutable, structure-sharing) trie keyed by label sequences, the
 * counterpart of upstream's Vmm_trie (SEMANTICS.md §2.5).
 *
 * Each node holds an optional value and its children in a persistent AVL tree ordered
 * by byte-wise label order (the order of OCaml's String.Map), so an update copies only
 * the nodes on the path to the key: O(depth * log fan-out). Old versions stay valid,
 * which lets vmmd's pure state transitions return a new state cheaply.
 *
 * Walks along a key and whole-trie enumerations are iterative, so a very deep key
 * (many labels) cannot exhaust the call stack.
 */

export type Key = readonly string[];

// ------------------------------------------------------------------ byte-wise label order

/**
 * Compares two strings in the byte order of their UTF-8 encodings (= code point order).
 * For the label alphabet ([a-z0-9.-]) this is plain `<`; surrogate pairs need the fix-up
 * because UTF-16 code-unit order differs from code point order above U+D7FF.
 */
export function compareLabels(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = fixup(x);
      y = fixup(y);
    }
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

const fixup = (u: number): number => (u >= 0xe000 ? u - 0x800 : u + 0x2000);

// ------------------------------------------------------------------ persistent AVL map

interface Avl<T> {
  readonly k: string;
  readonly v: T;
  readonly l: Avl<T> | null;
  readonly r: Avl<T> | null;
  readonly h: number;
}

const height = <T>(t: Avl<T> | null): number => (t === null ? 0 : t.h);

function mk<T>(k: string, v: T, l: Avl<T> | null, r: Avl<T> | null): Avl<T> {
  const hl = height(l);
  const hr = height(r);
  return { k, v, l, r, h: (hl > hr ? hl : hr) + 1 };
}

function balance<T>(k: string, v: T, l: Avl<T> | null, r: Avl<T> | null): Avl<T> {
  const hl = height(l);
  const hr = height(r);
  if (hl > hr + 1) {
    const L = l as Avl<T>;
    if (height(L.l) >= height(L.r)) return mk(L.k, L.v, L.l, mk(k, v, L.r, r));
    const LR = L.r as Avl<T>;
    return mk(LR.k, LR.v, mk(L.k, L.v, L.l, LR.l), mk(k, v, LR.r, r));
  }
  if (hr > hl + 1) {
    const R = r as Avl<T>;
    if (height(R.r) >= height(R.l)) return mk(R.k, R.v, mk(k, v, l, R.l), R.r);
    const RL = R.l as Avl<T>;
    return mk(RL.k, RL.v, mk(k, v, l, RL.l), mk(R.k, R.v, RL.r, R.r));
  }
  return mk(k, v, l, r);
}

function avlGet<T>(t: Avl<T> | null, k: string): T | undefined {
  while (t !== null) {
    const c = compareLabels(k, t.k);
    if (c === 0) return t.v;
    t = c < 0 ? t.l : t.r;
  }
  return undefined;
}

function avlSet<T>(t: Avl<T> | null, k: string, v: T): Avl<T> {
  if (t === null) return { k, v, l: null, r: null, h: 1 };
  const c = compareLabels(k, t.k);
  if (c === 0) return { k, v, l: t.l, r: t.r, h: t.h };
  return c < 0 ? balance(t.k, t.v, avlSet(t.l, k, v), t.r) : balance(t.k, t.v, t.l, avlSet(t.r, k, v));
}

function avlRemoveMin<T>(t: Avl<T>): { min: Avl<T>; rest: Avl<T> | null } {
  if (t.l === null) return { min: t, rest: t.r };
  const { min, rest } = avlRemoveMin(t.l);
  return { min, rest: balance(t.k, t.v, rest, t.r) };
}

function avlRemove<T>(t: Avl<T> | null, k: string): Avl<T> | null {
  if (t === null) return null;
  const c = compareLabels(k, t.k);
  if (c < 0) return balance(t.k, t.v, avlRemove(t.l, k), t.r);
  if (c > 0) return balance(t.k, t.v, t.l, avlRemove(t.r, k));
  if (t.l === null) return t.r;
  if (t.r === null) return t.l;
  const { min, rest } = avlRemoveMin(t.r);
  return balance(min.k, min.v, t.l, rest);
}

/** In-order (ascending) list of the entries; recursion depth is the tree height (log n). */
function avlEntries<T>(t: Avl<T> | null, out: Array<[string, T]>): Array<[string, T]> {
  if (t !== null) {
    avlEntries(t.l, out);
    out.push([t.k, t.v]);
    avlEntries(t.r, out);
  }
  return out;
}

/** Pushes the values of an AVL tree onto a stack, largest first (so the smallest is popped first). */
function pushChildren<T>(t: Avl<T> | null, stack: T[]): void {
  if (t === null) return;
  pushChildren(t.r, stack);
  stack.push(t.v);
  pushChildren(t.l, stack);
}

/** A trie node on a walk's stack, with the label that leads to it and its parent's frame. */
interface Frame<V> {
  readonly node: TrieNode<V>;
  readonly label: string;
  readonly parent: Frame<V> | null;
}

/**
 * Pushes a frame per child (an AVL tree of them) so that popping visits them in descending
 * label order (`descending`) or ascending; no intermediate list is built.
 */
function pushFrames<V>(t: Avl<TrieNode<V>> | null, parent: Frame<V>, stack: Frame<V>[], descending: boolean): void {
  if (t === null) return;
  pushFrames(descending ? t.l : t.r, parent, stack, descending);
  stack.push({ node: t.v, label: t.k, parent });
  pushFrames(descending ? t.r : t.l, parent, stack, descending);
}

// ------------------------------------------------------------------ trie

interface TrieNode<V> {
  readonly has: boolean;
  readonly value: V | undefined;
  readonly children: Avl<TrieNode<V>> | null;
}

const EMPTY_NODE: TrieNode<never> = { has: false, value: undefined, children: null };

export interface InsertResult<V> {
  readonly trie: Trie<V>;
  /** The value that was at the key before, if any (upstream's insert returns it). */
  readonly previous: V | undefined;
  readonly replaced: boolean;
}

export class Trie<V> {
  private constructor(
    private readonly root: TrieNode<V>,
    /** Number of entries. */
    readonly size: number,
  ) {}

  private static readonly EMPTY = new Trie<never>(EMPTY_NODE, 0);

  static empty<V>(): Trie<V> {
    return Trie.EMPTY as Trie<V>;
  }

  /** Builds a trie from entries; a later entry with the same key replaces an earlier one. */
  static of<V>(entries: Iterable<readonly [Key, V]>): Trie<V> {
    let t = Trie.empty<V>();
    for (const [k, v] of entries) t = t.set(k, v);
    return t;
  }

  get isEmpty(): boolean {
    return this.size === 0;
  }

  private node(key: Key): TrieNode<V> | undefined {
    let n: TrieNode<V> | undefined = this.root;
    for (let i = 0; i < key.length && n !== undefined; i++) n = avlGet(n.children, key[i]);
    return n;
  }

  find(key: Key): V | undefined {
    const n = this.node(key);
    return n !== undefined && n.has ? n.value : undefined;
  }

  has(key: Key): boolean {
    const n = this.node(key);
    return n !== undefined && n.has;
  }

  /** Inserts or replaces; returns the new trie and the previous value (upstream's `insert`). */
  insert(key: Key, value: V): InsertResult<V> {
    const path: TrieNode<V>[] = [];
    let n: TrieNode<V> | undefined = this.root;
    for (let i = 0; i < key.length; i++) {
      path.push(n ?? (EMPTY_NODE as TrieNode<V>));
      n = n === undefined ? undefined : avlGet(n.children, key[i]);
    }
    const old = n;
    let built: TrieNode<V> = { has: true, value, children: old === undefined ? null : old.children };
    for (let i = key.length - 1; i >= 0; i--) {
      const parent = path[i];
      built = { has: parent.has, value: parent.value, children: avlSet(parent.children, key[i], built) };
    }
    const replaced = old !== undefined && old.has;
    return {
      trie: new Trie(built, replaced ? this.size : this.size + 1),
      previous: replaced ? old.value : undefined,
      replaced,
    };
  }

  set(key: Key, value: V): Trie<V> {
    return this.insert(key, value).trie;
  }

  /**
   * Rewrites the entry at every prefix of `key` (the root, ..., `key` itself) in one pass:
   * `f(prefixLength, old)` returns the new value, or undefined to remove the entry. Nodes left
   * without entry and children are pruned. O(depth * log fan-out): used for running totals.
   */
  updatePrefixes(key: Key, f: (depth: number, old: V | undefined) => V | undefined): Trie<V> {
    const nodes: Array<TrieNode<V> | undefined> = [];
    let n: TrieNode<V> | undefined = this.root;
    for (let i = 0; i <= key.length; i++) {
      nodes.push(n);
      if (i < key.length) n = n === undefined ? undefined : avlGet(n.children, key[i]);
    }
    let size = this.size;
    let built: TrieNode<V> | null = null;
    for (let i = key.length; i >= 0; i--) {
      const old = nodes[i];
      const had = old !== undefined && old.has;
      const nv = f(i, had ? old.value : undefined);
      let children: Avl<TrieNode<V>> | null = old === undefined ? null : old.children;
      if (i < key.length) {
        children = built === null ? avlRemove(children, key[i]) : avlSet(children, key[i], built);
      }
      if (had) size--;
      if (nv !== undefined) size++;
      built = nv === undefined && children === null ? null : { has: nv !== undefined, value: nv, children };
    }
    return new Trie(built ?? (EMPTY_NODE as TrieNode<V>), size);
  }

  /** Removes the entry at the key (if any), pruning nodes left without entries or children. */
  remove(key: Key): Trie<V> {
    const path: TrieNode<V>[] = [];
    let n: TrieNode<V> | undefined = this.root;
    for (let i = 0; i < key.length; i++) {
      path.push(n);
      n = avlGet(n.children, key[i]);
      if (n === undefined) return this;
    }
    if (!n.has) return this;
    let built: TrieNode<V> | null = n.children === null ? null : { has: false, value: undefined, children: n.children };
    for (let i = key.length - 1; i >= 0; i--) {
      const parent = path[i];
      const children: Avl<TrieNode<V>> | null =
        built === null ? avlRemove(parent.children, key[i]) : avlSet(parent.children, key[i], built);
      built = children === null && !parent.has ? null : { has: parent.has, value: parent.value, children };
    }
    return new Trie(built ?? (EMPTY_NODE as TrieNode<V>), this.size - 1);
  }

  /**
   * Every entry at or below `key`, in pre-order with children in ascending byte order
   * (parents before children): the order of the state file and of restoring policies.
   * Keys are full keys (from the root).
   */
  entries(key: Key = []): Array<[string[], V]> {
    return this.walk(key, false);
  }

  /**
   * Calls `f` on every value at or below `key` (ascending pre-order) without building keys: for
   * sums. `strict` leaves out the entry at `key` itself (only the entries in its subtrees).
   */
  forEachValue(key: Key, f: (value: V) => void, strict = false): void {
    const start = this.node(key);
    if (start === undefined) return;
    const stack: TrieNode<V>[] = [];
    if (strict) pushChildren(start.children, stack);
    else stack.push(start);
    while (stack.length > 0) {
      const n = stack.pop() as TrieNode<V>;
      if (n.has) f(n.value as V);
      pushChildren(n.children, stack);
    }
  }

  /** All entries of the trie in ascending pre-order (upstream's `all`, as the state file uses it). */
  all(): Array<[string[], V]> {
    return this.entries([]);
  }

  /**
   * The order in which upstream's vmmd lists entries in replies (SEMANTICS.md §2.4): the entry
   * at the queried node first, then the subtrees of its children in *descending* byte order,
   * recursively. This is upstream's `fold` with a consing accumulator, i.e. the reverse of
   * the visiting order of `fold`.
   */
  listing(key: Key = [], strict = false): Array<[string[], V]> {
    return this.walk(key, true, false, strict);
  }

  /**
   * `listing`, with each key relative to `key` (the labels below it; [] for `key` itself).
   * `strict` leaves out the entry at `key` itself.
   */
  listingBelow(key: Key = [], strict = false): Array<[string[], V]> {
    return this.walk(key, true, true, strict);
  }

  /**
   * Iterative pre-order walk below `key`; `descending` pushes children so that the largest
   * label is visited first. Keys are kept as parent links and only materialised for nodes
   * holding an entry, so a deep chain costs O(depth) and not O(depth^2).
   */
  private walk(key: Key, descending: boolean, relative = false, strict = false): Array<[string[], V]> {
    const out: Array<[string[], V]> = [];
    const start = this.node(key);
    if (start === undefined) return out;
    const materialise = (f: Frame<V>): string[] => {
      const rev: string[] = [];
      for (let x: Frame<V> | null = f; x !== null && x.parent !== null; x = x.parent) rev.push(x.label);
      rev.reverse();
      return relative ? rev : [...key, ...rev];
    };
    const stack: Frame<V>[] = [{ node: start, label: '', parent: null }];
    while (stack.length > 0) {
      const f = stack.pop() as Frame<V>;
      if (f.node.has && !(strict && f.parent === null)) out.push([materialise(f), f.node.value as V]);
      pushFrames(f.node.children, f, stack, descending);
    }
    return out;
  }

  /**
   * Upstream's `Vmm_trie.fold key t f acc`: visits every entry at or below `key`, each node's
   * child subtrees in ascending byte order first and the node's own entry last. Checks that
   * stop at the first error (policies below a path) depend on this order.
   */
  fold<A>(key: Key, f: (key: string[], value: V, acc: A) => A, acc: A): A {
    const l = this.listing(key);
    for (let i = l.length - 1; i >= 0; i--) acc = f(l[i][0], l[i][1], acc);
    return acc;
  }

  /** Entries on the way from the root to `key` (inclusive), outermost first: [key prefix, value]. */
  ancestors(key: Key): Array<[string[], V]> {
    const out: Array<[string[], V]> = [];
    let n: TrieNode<V> | undefined = this.root;
    for (let i = 0; n !== undefined; i++) {
      if (n.has) out.push([key.slice(0, i), n.value as V]);
      if (i === key.length) break;
      n = avlGet(n.children, key[i]);
    }
    return out;
  }

  /** Labels of the direct children of `key`, ascending. */
  childLabels(key: Key = []): string[] {
    const n = this.node(key);
    return n === undefined ? [] : avlEntries(n.children, []).map(([k]) => k);
  }
}
