import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Trie, compareLabels } from '../src/core/trie.js';
import { nameKey, parseName, nameToString, nameOfKey } from '../src/core/name.js';
import { unwrap } from '../src/core/result.js';

const key = (s: string): string[] => nameKey(unwrap(parseName(s)));
const text = (k: string[]): string => nameToString(nameOfKey(k));

test('insert returns the previous value and find sees the newest', () => {
  const t0 = Trie.empty<number>();
  const r1 = t0.insert(key('a:b:c'), 1);
  assert.equal(r1.previous, undefined);
  assert.equal(r1.replaced, false);
  assert.equal(r1.trie.size, 1);
  const r2 = r1.trie.insert(key('a:b:c'), 2);
  assert.equal(r2.previous, 1);
  assert.equal(r2.replaced, true);
  assert.equal(r2.trie.size, 1);
  assert.equal(r2.trie.find(key('a:b:c')), 2);
  assert.equal(r2.trie.find(key('a:b:')), undefined, 'intermediate nodes hold no entry');
  assert.equal(r2.trie.find(key('a:b:c:d')), undefined);
  // immutability: the older versions are unchanged
  assert.equal(r1.trie.find(key('a:b:c')), 1);
  assert.equal(t0.size, 0);
  assert.equal(t0.find(key('a:b:c')), undefined);
});

test('`foo:` (a path) and `:foo` (a label at root) are the same key, the later insert wins', () => {
  const t = Trie.empty<string>().set(key('foo:'), 'path').insert(key(':foo'), 'label');
  assert.equal(t.previous, 'path');
  assert.equal(t.trie.find(key('foo:')), 'label');
  assert.equal(t.trie.size, 1);
});

test('the root key holds an entry', () => {
  const t = Trie.empty<number>().set([], 0).set(key('x'), 1);
  assert.equal(t.find([]), 0);
  assert.deepEqual(t.all().map(([k]) => k), [[], ['x']]);
  const r = t.remove([]);
  assert.equal(r.find([]), undefined);
  assert.equal(r.find(['x']), 1);
  assert.equal(r.size, 1);
});

test('remove prunes empty nodes and leaves other versions alone', () => {
  const t = Trie.of<number>([[key('a:b:c'), 1], [key('a:d'), 2]]);
  const r = t.remove(key('a:b:c'));
  assert.equal(r.size, 1);
  assert.deepEqual(r.childLabels(['a']), ['d'], 'the empty `b` node is gone');
  const r2 = r.remove(key('a:d'));
  assert.equal(r2.size, 0);
  assert.deepEqual(r2.childLabels([]), []);
  assert.equal(t.find(key('a:b:c')), 1);
  assert.equal(r.remove(key('nope:x')), r, 'removing an absent key returns the same trie');
  assert.equal(r.remove(['a']), r, 'a node without entry is not removed');
  // a node with an entry and children keeps its children
  const p = Trie.of<number>([[['a'], 1], [['a', 'b'], 2]]).remove(['a']);
  assert.equal(p.find(['a', 'b']), 2);
  assert.equal(p.size, 1);
});

test('entries: pre-order, children in ascending byte order, restricted to the queried subtree', () => {
  const t = Trie.of<number>([
    [['dept', 'data'], 1], [['storage'], 2], [['b', 'x'], 3], [['b-c', 'y'], 4], [['b.c', 'z'], 5],
    [['b0', 'w'], 6], [['b', 'a', 'q'], 7], [['dept'], 8],
  ]);
  assert.deepEqual(t.all().map(([, v]) => v), [7, 3, 4, 5, 6, 8, 1, 2]);
  assert.deepEqual(t.entries(['b']).map(([k]) => k), [['b', 'a', 'q'], ['b', 'x']]);
  assert.deepEqual(t.entries(['dept']).map(([k, v]) => [k, v]), [[['dept'], 8], [['dept', 'data'], 1]]);
  assert.deepEqual(t.entries(['nothing']), []);
});

test('listing: the queried entry first, then child subtrees in descending order (SEMANTICS.md §2.4)', () => {
  const t = Trie.of<number>([[key(':storage'), 1], [key('dept:data'), 2]]);
  assert.deepEqual(t.listing().map(([k]) => text(k)), [':storage', 'dept:data']);
  const u = Trie.of<number>([
    [['a'], 0], [['a', 'b'], 1], [['a', 'b', 'x'], 2], [['a', 'c'], 3], [['a', 'b', 'y'], 4], [['z'], 5],
  ]);
  assert.deepEqual(u.listing().map(([, v]) => v), [5, 0, 3, 1, 4, 2]);
  assert.deepEqual(u.listing(['a']).map(([, v]) => v), [0, 3, 1, 4, 2]);
});

test('fold visits children ascending, then the node (upstream Vmm_trie.fold order)', () => {
  const u = Trie.of<number>([[['a'], 0], [['a', 'b'], 1], [['a', 'b', 'x'], 2], [['a', 'c'], 3], [['a', 'b', 'y'], 4]]);
  const seen = u.fold<number[]>(['a'], (_k, v, acc) => [...acc, v], []);
  assert.deepEqual(seen, [2, 4, 1, 3, 0]);
  const consed = u.fold<number[]>(['a'], (_k, v, acc) => [v, ...acc], []);
  assert.deepEqual(consed, u.listing(['a']).map(([, v]) => v), 'consing fold = listing');
});

test('ancestors lists entries on the path to a key', () => {
  const t = Trie.of<number>([[[], 0], [['a'], 1], [['a', 'b', 'c'], 3]]);
  assert.deepEqual(t.ancestors(['a', 'b', 'c', 'd']), [[[], 0], [['a'], 1], [['a', 'b', 'c'], 3]]);
  assert.deepEqual(t.ancestors(['q']), [[[], 0]]);
});

test('compareLabels is UTF-8 byte order', () => {
  assert.ok(compareLabels('-', '.') < 0);
  assert.ok(compareLabels('.', '0') < 0);
  assert.ok(compareLabels('9', 'a') < 0);
  assert.ok(compareLabels('a', 'ab') < 0);
  assert.ok(compareLabels('B', 'a') < 0);
  assert.equal(compareLabels('x', 'x'), 0);
  // U+FF61 (EF BD A1) < U+1F600 (F0 9F 98 80) in UTF-8, although its UTF-16 unit is larger than a surrogate
  assert.ok(compareLabels('\uff61', '\u{1f600}') < 0);
  assert.ok(compareLabels('\u{1f600}', '\uff61') > 0);
  assert.ok(compareLabels('\ud7ff', '\u{10000}') < 0);
  const words = ['\u{1f600}', '\uff61', 'z', '\u00e9', 'a'];
  const bytes = [...words].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  assert.deepEqual([...words].sort(compareLabels), bytes);
});

test('a 10,000-entry trie: build, look up, enumerate and remove quickly', () => {
  const t0 = Date.now();
  let t = Trie.empty<number>();
  const keys: string[][] = [];
  for (let i = 0; i < 10_000; i++) {
    // flat at the root, and nested a few levels deep
    const k = i % 2 === 0 ? [`u${i}`] : [`org${i % 17}`, `team${i % 101}`, `u${i}`];
    keys.push(k);
    t = t.set(k, i);
  }
  assert.equal(t.size, 10_000);
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < keys.length; i++) assert.equal(t.find(keys[i]), i);
  }
  const all = t.all();
  assert.equal(all.length, 10_000);
  for (let i = 1; i < all.length; i++) {
    const [a, b] = [all[i - 1][0], all[i][0]];
    assert.ok(lexCompare(a, b) < 0, `${a} before ${b}`);
  }
  assert.equal(t.listing().length, 10_000);
  assert.equal(t.entries(['org3']).length > 0, true);
  let r = t;
  for (let i = 0; i < keys.length; i += 2) r = r.remove(keys[i]);
  assert.equal(r.size, 5_000);
  assert.equal(t.size, 10_000, 'the original is untouched');
  assert.equal(r.find(keys[0]), undefined);
  assert.equal(r.find(keys[1]), 1);
  const ms = Date.now() - t0;
  assert.ok(ms < 3000, `took ${ms} ms`);
});

test('a very deep key does not exhaust the stack', () => {
  const deep = Array.from({ length: 100_000 }, (_, i) => `l${i % 7}`);
  const t = Trie.empty<string>().set(deep, 'deep').set(deep.slice(0, 10), 'shallow');
  assert.equal(t.find(deep), 'deep');
  assert.equal(t.entries([]).length, 2);
  assert.equal(t.listing([]).length, 2);
  const r = t.remove(deep);
  assert.equal(r.size, 1);
  assert.equal(r.find(deep), undefined);
  assert.equal(r.find(deep.slice(0, 10)), 'shallow');
});

function lexCompare(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = compareLabels(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

function listingCompare(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = compareLabels(a[i], b[i]);
    if (c !== 0) return -c;
  }
  return a.length - b.length;
}

test('the trie agrees with a Map model under random operations', () => {
  const label = fc.constantFrom('a', 'b', 'c', 'a-b', 'a.b', '0', 'z');
  const k = fc.array(label, { maxLength: 4 });
  const op = fc.oneof(
    fc.record({ op: fc.constant('set' as const), key: k, v: fc.integer() }),
    fc.record({ op: fc.constant('remove' as const), key: k }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      let t = Trie.empty<number>();
      const model = new Map<string, [string[], number]>();
      const versions: Array<[Trie<number>, Map<string, [string[], number]>]> = [];
      for (const o of ops) {
        const id = JSON.stringify(o.key);
        if (o.op === 'set') {
          const r = t.insert(o.key, o.v);
          assert.equal(r.previous, model.get(id)?.[1]);
          t = r.trie;
          model.set(id, [o.key, o.v]);
        } else {
          t = t.remove(o.key);
          model.delete(id);
        }
        versions.push([t, new Map(model)]);
      }
      for (const [tv, mv] of versions) {
        assert.equal(tv.size, mv.size);
        const expected = [...mv.values()].sort((a, b) => lexCompare(a[0], b[0]));
        assert.deepEqual(tv.all(), expected);
        const expectedListing = [...mv.values()].sort((a, b) => listingCompare(a[0], b[0]));
        assert.deepEqual(tv.listing(), expectedListing);
        const below = expected.filter(([kk]) => kk[0] === 'a');
        assert.deepEqual(tv.entries(['a']), below);
        for (const [kk, v] of mv.values()) assert.equal(tv.find(kk), v);
      }
    }),
    { numRuns: 1000 },
  );
});

test('updatePrefixes rewrites every prefix of a key in one pass and prunes', () => {
  const inc = (d: number) => (_: number, old: number | undefined) => { const v = (old ?? 0) + d; return v === 0 ? undefined : v; };
  let t = Trie.empty<number>().updatePrefixes(['a', 'b'], inc(1));
  assert.deepEqual(t.all(), [[[], 1], [['a'], 1], [['a', 'b'], 1]]);
  t = t.updatePrefixes(['a', 'c', 'd'], inc(2));
  assert.deepEqual(t.all(), [[[], 3], [['a'], 3], [['a', 'b'], 1], [['a', 'c'], 2], [['a', 'c', 'd'], 2]]);
  assert.equal(t.size, 5);
  t = t.updatePrefixes(['a', 'b'], inc(-1)).updatePrefixes(['a', 'c', 'd'], inc(-2));
  assert.equal(t.size, 0);
  assert.deepEqual(t.childLabels([]), []);
  const deep = Array.from({ length: 50_000 }, () => 'x');
  assert.equal(Trie.empty<number>().updatePrefixes(deep, inc(1)).size, 50_001);
});
