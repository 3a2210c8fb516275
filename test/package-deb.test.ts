/**
 * The Debian package of `npm run package:deb` (scripts/package-deb.mjs): control fields,
 * files and modes, the units with the installed paths (systemd-analyze verify where it
 * exists), sysusers.d and tmpfiles.d, the extracted tree running a unikernel through its
 * /usr/bin symlinks, and dpkg -i into a temporary root (nodejs and the rest are not in that
 * root's database: --force-depends) whose postinst creates the user and the directories there.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeRunDir, repoRoot } from './helpers/vmmd.js';
import { roundTrip, runFile } from './helpers/installed.js';

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip = have('dpkg-deb') ? false : 'dpkg-deb is not installed';

let tmp: string;
let deb: string;
let tree: string;

before(() => {
  if (skip) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'albatross-deb-test-'));
  const r = runFile(process.execPath, [path.join(repoRoot, 'scripts', 'package-deb.mjs'), '--out', tmp]);
  assert.equal(r.status, 0, r.stderr);
  deb = path.join(tmp, `albatross-ts_${pkg.version}_all.deb`);
  assert.ok(fs.existsSync(deb), r.stdout);
  tree = path.join(tmp, 'tree');
  assert.equal(runFile('dpkg-deb', ['-x', deb, tree]).status, 0);
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('control: name, version, architecture all, the dependencies', { skip }, () => {
  const field = (f: string): string => runFile('dpkg-deb', ['-f', deb, f]).stdout.trim();
  assert.equal(field('Package'), 'albatross-ts');
  assert.equal(field('Version'), pkg.version);
  assert.equal(field('Architecture'), 'all');
  assert.deepEqual(field('Depends').split(/,\s*/), ['nodejs (>= 20.19)', 'openbsd-inetd | inet-superserver', 'iproute2', 'util-linux']);
  assert.match(runFile('dpkg-deb', ['-I', deb, 'conffiles']).stdout, /^\/etc\/albatross\/README$/m);
});

test('contents: launchers 0755 under /usr/lib/albatross-ts, relative symlinks in /usr/bin for every binary and alias', { skip }, () => {
  const listing = new Map<string, { mode: string; owner: string; link?: string }>();
  for (const line of runFile('dpkg-deb', ['-c', deb]).stdout.split('\n').filter(Boolean)) {
    const m = /^(\S+) (\S+)\s+\d+ \S+ \S+ \.(\/\S*?)(?: -> (\S+))?$/.exec(line);
    assert.ok(m, line);
    listing.set(m[3].replace(/\/$/, '') || '/', { mode: m[1], owner: m[2], ...(m[4] ? { link: m[4] } : {}) });
  }
  for (const [b, file] of Object.entries(pkg.bin)) {
    assert.deepEqual(listing.get(`/usr/bin/${b}`), { mode: 'lrwxrwxrwx', owner: 'root/root', link: `../lib/albatross-ts/${file}` }, b);
    assert.deepEqual(listing.get(`/usr/lib/albatross-ts/${file}`), { mode: '-rwxr-xr-x', owner: 'root/root' }, file);
  }
  for (const f of ['/usr/lib/albatross-ts/lib/launch.cjs', '/usr/lib/albatross-ts/lib/alias.cjs', '/usr/lib/albatross-ts/dist/vmmd.js', '/usr/lib/albatross-ts/dist/upstream.js', '/usr/lib/albatross-ts/dist/vmmd_tls_inetd.jsc', '/usr/lib/sysusers.d/albatross-ts.conf', '/usr/lib/tmpfiles.d/albatross-ts.conf', '/etc/albatross/README', '/usr/share/doc/albatross-ts/examples/inetd.conf.example', '/usr/lib/systemd/system/vmmd.service', '/usr/lib/systemd/system/vmmd_tls_inetd@.service', '/usr/lib/systemd/system/vmmd_web.service', '/usr/lib/albatross-ts/web/app.js', '/usr/share/bash-completion/completions/vmmc_local', '/usr/share/bash-completion/completions/vmmp_ca']) {
    assert.deepEqual(listing.get(f), { mode: '-rw-r--r--', owner: 'root/root' }, f);
  }
  for (const [p, e] of listing) if (e.owner !== 'root/root') assert.fail(`${p} is owned by ${e.owner}`);
  assert.match(fs.readFileSync(path.join(tree, 'etc', 'albatross', 'README'), 'utf8'), /\/etc\/albatross\/cacert\.pem[\s\S]*\/etc\/albatross\/server\.pem[\s\S]*\/etc\/albatross\/server\.key/);
});

test('units and the inetd example run the installed binaries (/usr/bin), each of which is in the package', { skip }, () => {
  const unitDir = path.join(tree, 'usr', 'lib', 'systemd', 'system');
  const units = fs.readdirSync(unitDir);
  assert.deepEqual(units.sort(), fs.readdirSync(path.join(repoRoot, 'packaging', 'systemd')).sort());
  const texts = [...units.map((u) => fs.readFileSync(path.join(unitDir, u), 'utf8')), fs.readFileSync(path.join(tree, 'usr', 'share', 'doc', 'albatross-ts', 'examples', 'inetd.conf.example'), 'utf8')];
  let commands = 0;
  for (const t of texts) {
    assert.doesNotMatch(t, /\/usr\/local\//);
    for (const m of t.matchAll(/\/usr\/bin\/(vmm[a-z_]+)/g)) {
      commands++;
      assert.ok(fs.statSync(path.join(tree, 'usr', 'bin', m[1])).mode & 0o111, `${m[1]} is executable in the package`);
    }
  }
  assert.ok(commands >= 8, `${commands} commands`);
});

test('systemd-analyze verify: the units are valid; the only complaint is that our binaries are not installed on this host', { skip: skip || (!have('systemd-analyze') && 'systemd-analyze is not installed') }, () => {
  const unitDir = path.join(tree, 'usr', 'lib', 'systemd', 'system');
  const units = fs.readdirSync(unitDir).map((u) => path.join(unitDir, u));
  const r = spawnSync('systemd-analyze', ['verify', ...units], { encoding: 'utf8', cwd: unitDir });
  const complaints = `${r.stdout}${r.stderr}`.split('\n').filter(Boolean);
  for (const c of complaints) {
    const m = /^\S+: Command \/usr\/bin\/(\S+) is not executable: No such file or directory$/.exec(c);
    assert.ok(m, `systemd-analyze verify: ${c}`);
    assert.ok(fs.existsSync(path.join(tree, 'usr', 'bin', m[1])), `${m[1]} is in the package`);
  }
});

test('sysusers.d makes user and group albatross; tmpfiles.d makes the directories with the modes of README', { skip }, () => {
  const sysusers = fs.readFileSync(path.join(tree, 'usr', 'lib', 'sysusers.d', 'albatross-ts.conf'), 'utf8');
  assert.match(sysusers, /^g albatross -$/m);
  assert.match(sysusers, /^u albatross -:albatross /m);
  const tmpfiles = fs.readFileSync(path.join(tree, 'usr', 'lib', 'tmpfiles.d', 'albatross-ts.conf'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
  assert.deepEqual(tmpfiles, [
    'd /run/albatross 0755 root root -',
    'd /run/albatross/util 0770 root albatross -',
    'd /run/albatross/fifo 2770 root albatross -',
    'd /var/lib/albatross 0700 root root -',
    'd /var/lib/albatross/block 0700 root root -',
    'd /var/log/albatross 0750 albatross albatross -',
  ]);
});

test('the extracted tree: /usr/bin/vmmd --version, and vmmd_console, vmmd and vmmc_local run a unikernel', { skip }, async () => {
  const bin = (b: string): string => path.join(tree, 'usr', 'bin', b);
  for (const b of ['vmmd', 'albatrossd', 'albatross-client']) {
    const r = runFile(bin(b), ['--version']);
    assert.equal(r.stdout, `${b} version ${pkg.version} protocol version 5\n`, r.stderr);
  }
  const d = makeRunDir();
  try {
    const info = await roundTrip({ d, consoleFile: bin('vmmd_console'), vmmdFile: bin('vmmd'), client: (args) => runFile(bin('vmmc_local'), [...args, '--tmpdir', d.tmpdir]) });
    assert.match(info, /hello/);
  } finally {
    d.remove();
  }
});

test('dpkg -i into a temporary root: installed, postinst made user, group and directories there', { skip: skip || (!have('dpkg') && 'dpkg is not installed') || (process.getuid?.() !== 0 && 'not root') }, () => {
  const root = path.join(tmp, 'root');
  for (const d of ['var/lib/dpkg/updates', 'var/lib/dpkg/info']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.writeFileSync(path.join(root, 'var', 'lib', 'dpkg', 'status'), '');
  // the dependencies are not in this root's database; the postinst runs here with DPKG_ROOT=root
  const r = runFile('dpkg', [`--root=${root}`, '--force-depends', '--force-script-chrootless', '--log=/dev/null', '-i', deb]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(runFile('dpkg', [`--root=${root}`, '-s', 'albatross-ts']).stdout, /^Status: install ok installed$/m);
  assert.equal(runFile(path.join(root, 'usr', 'bin', 'vmmd'), ['--version']).status, 0);
  if (!have('systemd-sysusers') || !have('systemd-tmpfiles')) return; // the postinst leaves a foreign root alone without them
  const passwd = fs.readFileSync(path.join(root, 'etc', 'passwd'), 'utf8');
  const m = /^albatross:x:(\d+):(\d+):/m.exec(passwd);
  assert.ok(m, passwd);
  const gid = Number(m[2]);
  const st = (p: string): [string, number, number] => {
    const s = fs.statSync(path.join(root, p));
    return [(s.mode & 0o7777).toString(8), s.uid, s.gid];
  };
  assert.deepEqual(st('run/albatross/util'), ['770', 0, gid]);
  assert.deepEqual(st('run/albatross/fifo'), ['2770', 0, gid]);
  assert.deepEqual(st('var/lib/albatross'), ['700', 0, 0]);
  assert.deepEqual(st('var/lib/albatross/block'), ['700', 0, 0]);
  assert.deepEqual(st('var/log/albatross'), ['750', Number(m[1]), gid]);
});
