/**
 * The launchers in bin/ (lib/launch.cjs): the TLS handler's code cache made by the build
 * is accepted by this node, and a missing, damaged or stale cache only costs time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vm from 'node:vm';
import { root } from './helpers/tls-peer.js';

const bundle = join(root, 'dist', 'vmmd_tls_inetd.js');
const cache = join(root, 'dist', 'vmmd_tls_inetd.jsc');

test('the build leaves a code cache for vmmd_tls_inetd that this node accepts', () => {
  assert.ok(existsSync(cache), 'npm run build makes dist/vmmd_tls_inetd.jsc');
  const script = new vm.Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: bundle, cachedData: readFileSync(cache) });
  assert.equal(script.cachedDataRejected, false);
  // and it is a cache of code that ran, not only of the top level: far larger than that
  const topLevelOnly = new vm.Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: bundle }).createCachedData();
  assert.ok(readFileSync(cache).length > 1.5 * topLevelOnly.length, `${readFileSync(cache).length} vs ${topLevelOnly.length}`);
});

test('a damaged, stale or missing code cache is ignored', () => {
  const dir = mkdtempSync(join(tmpdir(), 'albatross-launch-'));
  try {
    for (const d of ['bin', 'lib', 'dist']) mkdirSync(join(dir, d));
    copyFileSync(join(root, 'bin', 'vmmd_tls_inetd'), join(dir, 'bin', 'vmmd_tls_inetd'));
    copyFileSync(join(root, 'lib', 'launch.cjs'), join(dir, 'lib', 'launch.cjs'));
    copyFileSync(bundle, join(dir, 'dist', 'vmmd_tls_inetd.js'));
    const run = (): string => execFileSync(process.execPath, [join(dir, 'bin', 'vmmd_tls_inetd'), '--version'], { encoding: 'utf8' });
    const expected = run(); // no cache at all
    assert.match(expected, /^vmmd_tls_inetd version /);
    writeFileSync(join(dir, 'dist', 'vmmd_tls_inetd.jsc'), Buffer.alloc(4096, 0x5a));
    assert.equal(run(), expected);
    // a cache of another source (the bundle changed after the cache was made)
    const other = new vm.Script(Module.wrap('module.exports = 1;\n')).createCachedData();
    writeFileSync(join(dir, 'dist', 'vmmd_tls_inetd.jsc'), other);
    assert.equal(run(), expected);
    // without the bundle: the one-line hint, exit 2
    rmSync(join(dir, 'dist', 'vmmd_tls_inetd.js'));
    let failed: { status: number; stderr: string } | undefined;
    try {
      run();
    } catch (e) {
      failed = e as { status: number; stderr: string };
    }
    assert.equal(failed?.status, 2);
    assert.match(String(failed?.stderr), /not built: run npm ci/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
