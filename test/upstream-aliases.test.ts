/**
 * Upstream's binary names (bin/albatrossd, ..., src/cli/upstream.ts): upstream v2.7.2's
 * command lines are translated to ours, and the aliases run a unikernel with upstream's
 * spellings (albatrossd and albatross-console started as upstream's units start them,
 * albatross-client create / info / destroy locally).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeRunDir, repoRoot } from './helpers/vmmd.js';
import { roundTrip, runFile } from './helpers/installed.js';
import { translate } from '../src/cli/upstream.js';

const { version } = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
const bin = (b: string): string => path.join(repoRoot, 'bin', b);
const run = (binary: string, args: string[]) => ({ kind: 'run', binary, args });

test('albatrossd: upstream\'s logging options become vmmd\'s, --influx and --syslog pass (vmmd takes them)', () => {
  assert.deepEqual(
    translate('albatrossd', ['--systemd-socket-activation', '--tmpdir=/run/albatross/', '--dbdir', '/var/lib/albatross', '--color=never', '--verbosity=info', '--influx=127.0.0.1', '--syslog', '--no-drop-path']),
    run('vmmd', ['--systemd-socket-activation', '--tmpdir=/run/albatross/', '--dbdir', '/var/lib/albatross', '-v', '--influx=127.0.0.1', '--syslog', '--no-drop-path']),
  );
  assert.deepEqual(translate('albatrossd', ['--verbosity', 'quiet', '--color', 'always']), run('vmmd', ['-q']));
  assert.deepEqual(translate('albatrossd', ['--version', '--tmpdir', 'x']), { kind: 'print', text: `albatrossd version ${version} protocol version 5\n` });
});

test('albatross-console, -stats, -influx: options that only choose where logs and self-metrics go are dropped', () => {
  assert.deepEqual(translate('albatross-console', ['--systemd-socket-activation', '--tmpdir=/run/albatross/', '--influx', '127.0.0.1:8094', '--syslog', '--color=never', '--max-subscribers', '3', '-v']),
    run('vmmd_console', ['--systemd-socket-activation', '--tmpdir=/run/albatross/', '--max-subscribers', '3', '-v']));
  assert.deepEqual(translate('albatross-stats', ['--gather-bhyve-stats', '--interval', '5', '--influx=h', '--syslog']), run('vmmd_stats', ['--interval', '5']));
  assert.deepEqual(translate('albatross-influx', ['--influx=127.0.0.1', '-n', 'org:', '--syslog', '--color=auto']), run('vmmd_influx', ['--influx=127.0.0.1', '-n', 'org:']));
});

test('albatross-tls-endpoint: vmmd_tls; with --inetd vmmd_tls_inetd without the listening options, -q as --quiet', () => {
  assert.deepEqual(translate('albatross-tls-endpoint', ['--systemd-socket-activation', '--tmpdir=/run/albatross/', 'ca.pem', 'server.pem', 'server.key', '-v']),
    run('vmmd_tls', ['--systemd-socket-activation', '--tmpdir=/run/albatross/', 'ca.pem', 'server.pem', 'server.key']));
  assert.deepEqual(translate('albatross-tls-endpoint', ['--inetd', '--syslog', '--port', '1025', '--ip', '::', 'ca.pem', 'server.pem', 'server.key', '--tmpdir', '/run/albatross']),
    run('vmmd_tls_inetd', ['--syslog', 'ca.pem', 'server.pem', 'server.key', '--tmpdir', '/run/albatross']));
  assert.deepEqual(translate('albatross-tls-endpoint', ['ca', 'cert', 'key', '--inetd', '-q']), run('vmmd_tls_inetd', ['ca', 'cert', 'key', '--quiet']));
  assert.deepEqual(translate('albatross-tls-endpoint', ['ca', 'cert', 'key', '--inetd', '--verbosity=quiet']), run('vmmd_tls_inetd', ['ca', 'cert', 'key', '--quiet']));
});

test('albatross-client: local, --destination, --csr, certificate, generate and sign run our clients', () => {
  assert.deepEqual(translate('albatross-client', ['create', 'hello', 'hello.hvt', '--mem=64', '--restart', '-f', '--ca', 'ca.pem', '--ca-key=ca.key', '--server-ca', 'cacert.pem', '--key-type', 'p256', '-v', '--tmpdir', '/run/albatross']),
    run('vmmc_local', ['create', 'hello', 'hello.hvt', '--mem=64', '--restart', '-f', '--tmpdir', '/run/albatross']));
  assert.deepEqual(translate('albatross-client', ['info', '-d', 'host:1025', '--ca', 'user.pem', '--ca-key', 'user.key', '--tmpdir', '/x']),
    run('vmmc_bistro', ['info', '-d', 'host:1025', '--ca', 'user.pem', '--ca-key', 'user.key']));
  assert.deepEqual(translate('albatross-client', ['set-block', 'disk', 'disk.img', '--csr']), run('vmmp_request', ['set-block', 'disk']), 'a request carries no data');
  assert.deepEqual(translate('albatross-client', ['add-policy', 'team', '2', '--csr', '--key-type=rsa2048', '--ca', 'ca.pem', '--mem', '128']),
    run('vmmp_request', ['add-policy', 'team', '2', '--key-type=rsa2048', '--mem', '128']));
  assert.deepEqual(translate('albatross-client', ['certificate', 'team.pem', 'team.key', '--destination', 'host', '--server-ca', 'cacert.pem']),
    run('vmmc_remote', ['team.pem', 'team.key', '--destination', 'host', '--server-ca', 'cacert.pem']));
  assert.deepEqual(translate('albatross-client', ['generate', 'ca', 'db', '--server-days', '30']), run('vmmp_ca', ['generate', 'ca', 'db', '--server-days', '30']));
  assert.deepEqual(translate('albatross-client', ['sign', 'cacert.pem', 'db', 'ca.key', 'team.req', '--days', '2']), run('vmmp_ca', ['sign', 'cacert.pem', 'db', 'ca.key', 'team.req', '--days', '2']));
  // an option's value is not the subcommand, a boot argument is not an option of ours
  assert.deepEqual(translate('albatross-client', ['--tmpdir', 'sign', 'create', 'a', 'b', '--arg=--csr']), run('vmmc_local', ['--tmpdir', 'sign', 'create', 'a', 'b', '--arg=--csr']));
  assert.deepEqual(translate('albatross-client', ['info', '--csr', '--socket', 's']), { kind: 'error', message: 'The options --csr, --destination, and --socket are mutually exclusive' });
  assert.equal(translate('albatross-client', []).kind, 'print');
});

test('albatrossd and albatross-console started with upstream\'s flags; albatross-client creates, lists and destroys a unikernel with upstream\'s spellings', async () => {
  const d = makeRunDir();
  try {
    const upstreamLogging = ['--color=never', '--verbosity=info'];
    const info = await roundTrip({
      d,
      consoleFile: bin('albatross-console'),
      consoleArgs: [`--tmpdir=${d.tmpdir}/`, '--syslog', '--influx', '127.0.0.1:8094', ...upstreamLogging],
      vmmdFile: bin('albatrossd'),
      vmmdArgs: [`--tmpdir=${d.tmpdir}/`, `--dbdir=${d.dbdir}`, '--syslog', '--influx=127.0.0.1', ...upstreamLogging],
      // upstream takes the certificate options with every command and uses them remotely only
      client: (args) => runFile(bin('albatross-client'), [...args, ...(args[0] === 'create' ? ['--force'] : []), `--tmpdir=${d.tmpdir}/`, '--ca', 'ca.pem', '--ca-key', 'ca.key', '--server-ca', 'cacert.pem', '--key-type', 'p256', '-v']),
    });
    assert.match(info, /hello/);
  } finally {
    d.remove();
  }
});

test('albatross-tls-endpoint --inetd is the per-connection handler; without --syslog or -q it logs to syslog (upstream exits 3)', () => {
  const r = runFile(bin('albatross-tls-endpoint'), ['--inetd', '--port', '1025', 'ca.pem', 'server.pem', 'server.key']);
  assert.equal(r.status, 2); // the handler ran: the certificate files are missing
  assert.equal(r.stderr, ''); // standard error is a socket here, as under inetd: nothing is written there
  assert.equal(runFile(bin('albatross-tls-endpoint'), ['--version']).stdout.split(' ')[0], 'albatross-tls-endpoint');
});
