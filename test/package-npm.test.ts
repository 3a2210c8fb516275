/**
 * The npm tarball: `npm pack` of a checkout without dist/ (as a fresh clone is) builds
 * (prepack) and packs the bundles and launchers and nothing else of the checkout, and
 * `npm install -g` of it installs offline, from an empty cache: the bundles need no
 * package at run time, so the tarball declares no dependencies. The installed binaries
 * answer --version and run a unikernel (fake tender) through create, info and destroy.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeRunDir, repoRoot } from './helpers/vmmd.js';
import { cleanEnv, roundTrip, runFile } from './helpers/installed.js';

const { version } = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
let tmp: string;
let tarball: string;
let prefix: string;
let packOutput = '';

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'albatross-npm-'));
  // a checkout as a fresh clone has it: no build/, dist/ or run/; plus a stray file
  const checkout = path.join(tmp, 'checkout');
  fs.mkdirSync(checkout);
  for (const e of fs.readdirSync(repoRoot)) {
    if (['node_modules', 'build', 'dist', 'run', '.git'].includes(e) || e.endsWith('.tgz') || e.endsWith('.deb')) continue;
    fs.cpSync(path.join(repoRoot, e), path.join(checkout, e), { recursive: true });
  }
  fs.symlinkSync(fs.realpathSync(path.join(repoRoot, 'node_modules')), path.join(checkout, 'node_modules'));
  fs.writeFileSync(path.join(checkout, 'notes-of-the-operator.txt'), 'not for the package\n');
  const packed = runFile('npm', ['pack', '--pack-destination', tmp, '--foreground-scripts'], { cwd: checkout, timeoutMs: 300_000 });
  packOutput = packed.stdout + packed.stderr;
  assert.equal(packed.status, 0, packOutput);
  tarball = path.join(tmp, `albatross-ts-${version}.tgz`);
  assert.ok(fs.existsSync(tarball), packOutput);
  prefix = path.join(tmp, 'prefix');
  // offline, with an empty cache: nothing may be fetched
  const installed = runFile('npm', ['install', '-g', '--prefix', prefix, '--offline', '--cache', path.join(tmp, 'empty-cache'), '--no-audit', '--no-fund', tarball], { cwd: tmp, timeoutMs: 300_000 });
  assert.equal(installed.status, 0, installed.stdout + installed.stderr);
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('npm pack builds once (prepack) and packs the bundles, launchers and units, nothing else of the checkout', () => {
  assert.equal(packOutput.match(/> tsc -p \. && node scripts\/bundle\.mjs/g)?.length, 1, packOutput);
  const files = runFile('tar', ['-tzf', tarball]).stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
  for (const f of ['package.json', 'README.md', 'lib/launch.cjs', 'lib/alias.cjs', 'dist/vmmd.js', 'dist/vmmc_local.js', 'dist/upstream.js', 'dist/vmmd_tls_inetd.jsc', 'bin/vmmd', 'bin/albatrossd', 'packaging/systemd/vmmd.service', 'inetd.conf.example', 'web/index.html', 'bin/vmmd_web', 'dist/vmmd_web.js']) {
    assert.ok(files.includes(f), `${f} in the tarball`);
  }
  const stray = files.filter((f) => !/^(package\.json|README\.md|inetd\.conf\.example|(bin|lib|packaging|web)\/.+|dist\/[a-z_]+\.jsc?)$/.test(f));
  assert.deepEqual(stray, []);
  const pkg = JSON.parse(runFile('tar', ['-xzOf', tarball, 'package/package.json']).stdout) as Record<string, unknown>;
  assert.equal(pkg.dependencies, undefined, 'the bundles are self-contained: no dependency to fetch at install time');
});

test('npm install -g of the tarball: binaries on PATH, no node_modules, --version', () => {
  const pkgDir = path.join(prefix, 'lib', 'node_modules', 'albatross-ts');
  assert.ok(fs.existsSync(path.join(pkgDir, 'dist', 'vmmd.js')));
  assert.equal(fs.existsSync(path.join(pkgDir, 'node_modules')), false);
  const env = cleanEnv({ PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}` });
  for (const b of ['vmmd', 'vmmc_local', 'vmmd_tls_inetd', 'vmmp_ca', 'albatrossd', 'albatross-client']) {
    const r = runFile(b, ['--version'], { env });
    assert.equal(r.stdout, `${b} version ${version} protocol version 5\n`, r.stderr);
    assert.equal(r.status, 0);
  }
});

test('the installed vmmd_console, vmmd and vmmc_local create, list and destroy a unikernel', async () => {
  const d = makeRunDir();
  try {
    const bin = (b: string): string => path.join(prefix, 'bin', b);
    const info = await roundTrip({
      d,
      consoleFile: bin('vmmd_console'),
      vmmdFile: bin('vmmd'),
      client: (args) => runFile(bin('vmmc_local'), [...args, '--tmpdir', d.tmpdir]),
    });
    assert.match(info, /hello/);
  } finally {
    d.remove();
  }
});
