import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseName, nameToString } from '../src/core/name.js';

test('names parse and print canonically', () => {
  for (const [s, c] of [[':', ':'], ['hello', ':hello'], ['Foo:BAR:X', 'foo:bar:x'], ['a:b:', 'a:b:'], [':foo.bar', ':foo.bar']]) {
    const r = parseName(s);
    assert.ok(r.ok, s);
    assert.equal(nameToString(r.value), c);
  }
  assert.deepEqual(parseName('::x'), { ok: false, error: 'invalid name' });
  assert.deepEqual(parseName(''), { ok: false, error: 'empty name' });
});
