// `npm run package:deb`: builds albatross-ts_<version>_all.deb with dpkg-deb from the
// bundles in dist/ (run `npm run build` first; the npm script does). Usage:
//   node scripts/package-deb.mjs [--out DIR]      (default DIR: the checkout)
// Layout of the package:
//   /usr/lib/albatross-ts/{bin,lib,dist,web} the launchers, lib/launch.cjs, the bundles, vmmd_web's page
//   /usr/bin/<binary>                      relative symlinks to the launchers (and the upstream aliases)
//   /usr/lib/systemd/system/               the units of packaging/systemd, ExecStart in /usr/bin
//   /usr/lib/sysusers.d/albatross-ts.conf  user and group albatross
//   /usr/lib/tmpfiles.d/albatross-ts.conf  /run/albatross/{util,fifo}, /var/lib/albatross/block, /var/log/albatross
//   /etc/albatross/README                  where the CA certificate, server certificate and key go
//   /usr/share/doc/albatross-ts/           README.md, examples/inetd.conf.example
//   /usr/share/bash-completion/completions/<client>  packaging/completion/albatross.bash, under each client's name
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const { version } = pkg;

const outIndex = process.argv.indexOf('--out');
const outDir = outIndex > 0 ? resolve(process.argv[outIndex + 1] ?? '.') : root;
const debName = `albatross-ts_${version}_all.deb`;

const fail = (msg) => {
  process.stderr.write(`package-deb: ${msg}\n`);
  process.exit(1);
};

if (!existsSync(join(root, 'dist', 'vmmd.js'))) fail('dist/ is not built: run npm run build (npm run package:deb does)');
if (spawnSync('dpkg-deb', ['--version'], { stdio: 'ignore' }).status !== 0) fail('dpkg-deb not found (Debian package dpkg)');

/** Where the launchers live once installed; /usr/bin holds symlinks to them. */
const libDir = '/usr/lib/albatross-ts';
const bins = Object.keys(pkg.bin);
/** The directories of README's Directories table: path, mode, owner, group. */
const tmpfiles = [
  ['/run/albatross', '0755', 'root', 'root'],
  ['/run/albatross/util', '0770', 'root', 'albatross'],
  ['/run/albatross/fifo', '2770', 'root', 'albatross'],
  ['/var/lib/albatross', '0700', 'root', 'root'],
  ['/var/lib/albatross/block', '0700', 'root', 'root'],
  ['/var/log/albatross', '0750', 'albatross', 'albatross'],
];

const stage = mkdtempSync(join(tmpdir(), 'albatross-deb-'));
const at = (p) => join(stage, p);
const dir = (p) => {
  mkdirSync(at(p), { recursive: true });
  return at(p);
};
const put = (p, content, mode = 0o644) => {
  mkdirSync(dirname(at(p)), { recursive: true });
  writeFileSync(at(p), content);
  chmodSync(at(p), mode);
};
const copy = (from, p, mode) => put(p, readFileSync(join(root, from)), mode ?? (statSync(join(root, from)).mode & 0o111 ? 0o755 : 0o644));
/** Our example paths (/usr/local/bin, as for a checkout symlinked there) become the installed ones. */
const installedPaths = (text) => text.replaceAll('/usr/local/bin/', '/usr/bin/');

try {
  // the program: launchers, their loader, the bundles and the code cache
  for (const b of bins) copy(pkg.bin[b], `${libDir}/${pkg.bin[b]}`, 0o755);
  for (const f of readdirSync(join(root, 'lib'))) copy(`lib/${f}`, `${libDir}/lib/${f}`, 0o644);
  for (const f of readdirSync(join(root, 'dist')).filter((x) => /\.jsc?$/.test(x))) copy(`dist/${f}`, `${libDir}/dist/${f}`, 0o644);
  // vmmd_web's page, script and style, found next to dist/
  for (const f of readdirSync(join(root, 'web'))) copy(`web/${f}`, `${libDir}/web/${f}`, 0o644);
  // the launchers are CommonJS scripts without an extension: say so next to them
  put(`${libDir}/package.json`, `${JSON.stringify({ name: pkg.name, version, private: true, type: 'commonjs' }, null, 2)}\n`);
  dir('usr/bin');
  for (const b of bins) symlinkSync(`../lib/albatross-ts/${pkg.bin[b]}`, at(`usr/bin/${b}`));

  // systemd: units, the user and group, the directories
  for (const f of readdirSync(join(root, 'packaging', 'systemd'))) {
    put(`usr/lib/systemd/system/${f}`, installedPaths(readFileSync(join(root, 'packaging', 'systemd', f), 'utf8')));
  }
  put('usr/lib/sysusers.d/albatross-ts.conf', [
    '# albatross-ts: vmmd_console, vmmd_log, vmmd_stats, vmmd_influx and the TLS endpoint run as',
    '# albatross; vmmd runs as root with group albatross (sockets and console FIFOs are shared by group).',
    'g albatross -',
    'u albatross -:albatross "albatross-ts daemons" /nonexistent /usr/sbin/nologin',
    '',
  ].join('\n'));
  put('usr/lib/tmpfiles.d/albatross-ts.conf', [
    '# albatross-ts directories (README, Directories): sockets in util/, console FIFOs in fifo/',
    '# (created by vmmd, read by vmmd_console: setgid group albatross), state and block devices',
    '# of vmmd (root only), the event log of vmmd_log.',
    ...tmpfiles.map(([p, mode, user, group]) => `d ${p} ${mode} ${user} ${group} -`),
    '',
  ].join('\n'));

  // configuration and documentation
  put('etc/albatross/README', [
    'albatross-ts: certificates of the TLS endpoint (vmmd_tls, vmmd_tls_inetd, albatross-tls-endpoint)',
    '',
    'The units vmmd_tls.service and vmmd_tls_inetd@.service, and the inetd example',
    '/usr/share/doc/albatross-ts/examples/inetd.conf.example, read:',
    '',
    '  /etc/albatross/cacert.pem   the CA certificate that every client chain must lead to',
    '                              (exactly one certificate)',
    '  /etc/albatross/server.pem   the endpoint\'s certificate, issued by that CA',
    '  /etc/albatross/server.key   its private key: mode 0640, owner root, group albatross',
    '  /etc/albatross/crl/         optional: PEM CRLs, for --crl (see vmmd_tls in the README)',
    '  /etc/albatross/web.pem      vmmd_web.service: the certificate chain of its HTTPS',
    '  /etc/albatross/web.key      and its private key: mode 0640, owner root, group albatross',
    '',
    'vmmp_ca generate NAME DB (or albatross-client generate NAME DB) writes cacert.pem,',
    'server.pem and server.key in the current directory; keep NAME.key, the CA\'s key,',
    'elsewhere (offline): it signs every client\'s certificate.',
    '',
    '  install -m 0644 cacert.pem server.pem /etc/albatross/',
    '  install -m 0640 -g albatross server.key /etc/albatross/',
    '  systemctl enable --now vmmd_tls.socket      # or vmmd_tls_inetd.socket, or inetd',
    '',
  ].join('\n'));
  put('DEBIAN/conffiles', '/etc/albatross/README\n');
  copy('README.md', 'usr/share/doc/albatross-ts/README.md', 0o644);
  put('usr/share/doc/albatross-ts/examples/inetd.conf.example', installedPaths(readFileSync(join(root, 'inetd.conf.example'), 'utf8')));
  // bash-completion loads completions/<command> when <command> is first completed
  for (const b of ['vmmc_local', 'vmmc_remote', 'vmmc_bistro', 'vmmp_request', 'vmmp_ca']) {
    copy('packaging/completion/albatross.bash', `usr/share/bash-completion/completions/${b}`, 0o644);
  }

  // maintainer scripts: the user, group and directories at once (not only at the next boot)
  // DPKG_ROOT: dpkg --root=DIR --force-script-chrootless runs this for a tree at DIR (the tests do)
  put('DEBIAN/postinst', [
    '#!/bin/sh',
    'set -e',
    'if [ "$1" = configure ]; then',
    '  if command -v systemd-sysusers >/dev/null 2>&1; then',
    '    systemd-sysusers --root="${DPKG_ROOT:-/}" albatross-ts.conf',
    '  elif [ -z "$DPKG_ROOT" ]; then',
    '    getent group albatross >/dev/null || groupadd --system albatross',
    '    getent passwd albatross >/dev/null || useradd --system -g albatross -d /nonexistent -s /usr/sbin/nologin albatross',
    '  fi',
    '  if command -v systemd-tmpfiles >/dev/null 2>&1; then',
    '    systemd-tmpfiles --root="${DPKG_ROOT:-/}" --create albatross-ts.conf',
    '  elif [ -z "$DPKG_ROOT" ]; then',
    ...tmpfiles.map(([p, mode, user, group]) => `    install -d -m ${mode} -o ${user} -g ${group} ${p}`),
    '  fi',
    '  if [ -z "$DPKG_ROOT" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi',
    'fi',
    '',
  ].join('\n'), 0o755);
  put('DEBIAN/postrm', [
    '#!/bin/sh',
    'set -e',
    'if [ -z "$DPKG_ROOT" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi',
    '',
  ].join('\n'), 0o755);

  const du = spawnSync('du', ['-sk', '--exclude=DEBIAN', stage], { encoding: 'utf8' });
  const installedSize = Number.parseInt(du.stdout, 10);
  put('DEBIAN/control', [
    'Package: albatross-ts',
    `Version: ${version}`,
    'Architecture: all',
    'Section: admin',
    'Priority: optional',
    'Maintainer: albatross-ts developers <albatross-ts@invalid>',
    `Installed-Size: ${installedSize}`,
    // taskset is in util-linux; inet-superserver is what every inetd of Debian provides
    'Depends: nodejs (>= 20.19), openbsd-inetd | inet-superserver, iproute2, util-linux',
    'Conflicts: albatross',
    'Description: deploy and supervise MirageOS unikernels on Solo5 tenders',
    ' albatross-ts is a TypeScript implementation of Albatross, wire-compatible with',
    ' Albatross v2.7.2: the supervisor vmmd, its console, log and statistics daemons,',
    ' the TLS endpoint and the clients, and upstream\'s names for them (albatrossd,',
    ' albatross-client, ...).',
    '',
  ].join('\n'));
  chmodSync(stage, 0o755);

  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, debName);
  const r = spawnSync('dpkg-deb', ['--root-owner-group', '--build', stage, out], { encoding: 'utf8' });
  if (r.status !== 0) fail(`dpkg-deb --build failed: ${r.stderr.trim()}`);
  console.log(`built ${out} (${(statSync(out).size / 1024).toFixed(1)} kB, installed ${installedSize} kB)`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
