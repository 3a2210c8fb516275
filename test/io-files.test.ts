import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/io/files.js';

test('writeFileAtomic replaces the content, keeps the previous one as backup, leaves no temp file', () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'atomic-'));
  const f = join(dir, 'state');
  writeFileAtomic(f, 'one', { backup: `${f}.bak` });
  assert.equal(fs.readFileSync(f, 'utf8'), 'one');
  assert.equal(fs.existsSync(`${f}.bak`), false);
  writeFileAtomic(f, new Uint8Array([0x74, 0x77, 0x6f]), { backup: `${f}.bak` });
  assert.equal(fs.readFileSync(f, 'utf8'), 'two');
  assert.equal(fs.readFileSync(`${f}.bak`, 'utf8'), 'one');
  assert.equal(fs.statSync(f).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['state', 'state.bak']);
  fs.rmSync(dir, { recursive: true });
});

test('a failed write throws and leaves the old content and no temp file', () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'atomic-'));
  const f = join(dir, 'x');
  writeFileAtomic(f, 'old');
  fs.mkdirSync(join(dir, 'sub'));
  assert.throws(() => writeFileAtomic(join(dir, 'sub'), 'new')); // rename over a directory fails
  assert.equal(fs.readFileSync(f, 'utf8'), 'old');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['sub', 'x']);
  fs.rmSync(dir, { recursive: true });
});
