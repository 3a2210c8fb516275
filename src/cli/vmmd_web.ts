/**
 * vmmd_web: a web console and REST API for Albatross: users bound to paths, API tokens,
 * unikernels, block devices, policies, console, statistics and the event log of the local
 * daemons.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type CliSpec, UsageError, parseCli, runMain } from './common.js';
import { limits } from '../core/limits.js';
import { stderrLogger, verbosityOf } from '../daemon/server.js';
import { writeFileAtomic } from '../io/files.js';
import { Store, adminPasswordFile } from '../web/store.js';
import { type Instance, LocalInstance } from '../web/instance.js';
import { Registry } from '../web/registry.js';
import { isLoopback, listen, makeServer, parseListen } from '../web/server.js';
import { WebUi, findAssets } from '../web/ui.js';

const BINARY = 'vmmd_web';
const DEFAULT_TMPDIR = process.platform === 'freebsd' ? '/var/run/albatross' : '/run/albatross';
const DEFAULT_STATE = process.platform === 'freebsd' ? '/var/db/albatross/web.json' : '/var/lib/albatross/web.json';

const spec: CliSpec = {
  binary: BINARY,
  synopsis: [
    `${BINARY} --https HOST:PORT --cert FILE --key FILE [--tmpdir DIR] [--state FILE] [OPTIONS]`,
    `${BINARY} --http 127.0.0.1:PORT [--tmpdir DIR] [--state FILE] [OPTIONS]`,
  ],
  description: [
    'Serves a REST API (JSON, bearer tokens) and a web console for the Albatross daemons of',
    'this host (their sockets in DIR/util). Users are bound to a path and see and act only on',
    'names whose path is at or below it. At the first start the state file is created with an',
    'administrator "admin" and a generated password: printed once on standard output when that',
    'is a terminal (or with --print-admin-password), otherwise written to a file next to the',
    'state file (web.json: web.admin-password, mode 0600), deleted once the password is changed.',
    'Plain HTTP is served only on a loopback address; otherwise use --https with a certificate.',
  ].join('\n'),
  options: [
    { name: 'tmpdir', type: 'string', arg: 'DIR', default: DEFAULT_TMPDIR, help: 'runtime directory of the local daemons (sockets in DIR/util).' },
    { name: 'state', type: 'string', arg: 'FILE', default: DEFAULT_STATE, help: 'the state file (users, token hashes, instances), mode 0600.' },
    { name: 'http', type: 'string', arg: 'HOST:PORT', help: 'serve plain HTTP on a loopback address (port 0: any free port).' },
    { name: 'https', type: 'string', arg: 'HOST:PORT', help: 'serve HTTPS with --cert and --key.' },
    { name: 'cert', type: 'string', arg: 'FILE', help: 'certificate chain (PEM) for --https.' },
    { name: 'key', type: 'string', arg: 'FILE', help: 'private key (PEM) for --https.' },
    { name: 'name', type: 'string', arg: 'NAME', default: 'local', help: 'the name of the local instance in URLs.' },
    { name: 'print-admin-password', type: 'boolean', help: 'print the first start\'s administrator password on standard output even when that is not a terminal (npm start does).' },
    { name: 'max-upload', type: 'number', arg: 'MB', help: `largest image or block data accepted (default and maximum ${Math.floor(limits.webMaxUploadBytes / 1048576)} MB).` },
    { name: 'verbose', alias: 'v', type: 'boolean', help: 'log debug messages too.' },
    { name: 'quiet', alias: 'q', type: 'boolean', help: 'log nothing.' },
    { name: 'verbosity', type: 'string', arg: 'LEVEL', help: 'log up to LEVEL: quiet, error, warning, info or debug (default info).' },
  ],
  examples: [
    `${BINARY} --http 127.0.0.1:8080 --tmpdir /run/albatross --state /var/lib/albatross/web.json`,
    `${BINARY} --https 0.0.0.0:8443 --cert web.pem --key web.key`,
  ],
};

function readOrUsage(file: unknown, what: string): string {
  if (typeof file !== 'string') throw new UsageError(`--https needs --${what}`);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const c = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read --${what} ${file}: ${c === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

runMain(BINARY, async () => {
  const o = parseCli(spec);
  if ((o.http === undefined) === (o.https === undefined)) throw new UsageError('give exactly one of --http HOST:PORT and --https HOST:PORT');
  const where = parseListen(String(o.http ?? o.https));
  if (!where.ok) throw new UsageError(`--${o.http !== undefined ? 'http' : 'https'}: ${where.error}`);
  if (o.http !== undefined && !isLoopback(where.value.host)) {
    throw new UsageError(`--http: ${where.value.host} is not a loopback address; plain HTTP would carry passwords and tokens in the clear (use --https)`);
  }
  if (o.http !== undefined && (o.cert !== undefined || o.key !== undefined)) throw new UsageError('--cert and --key go with --https');
  const tls = o.https !== undefined ? { cert: readOrUsage(o.cert, 'cert'), key: readOrUsage(o.key, 'key') } : undefined;
  let maxUpload: number = limits.webMaxUploadBytes;
  if (o['max-upload'] !== undefined) {
    const mb = o['max-upload'] as number;
    if (mb < 1 || mb * 1048576 > limits.webMaxUploadBytes) throw new UsageError(`--max-upload: expected 1 to ${Math.floor(limits.webMaxUploadBytes / 1048576)} MB`);
    maxUpload = mb * 1048576;
  }
  const name = String(o.name);
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name)) throw new UsageError('--name: expected a-z 0-9 . _ - (up to 63)');
  const log = stderrLogger(BINARY, verbosityOf(o));

  const stateFile = path.resolve(String(o.state));
  const opened = await Store.open(stateFile);
  if (!opened.ok) {
    log('error', opened.error);
    return 1;
  }
  const { store, adminPassword } = opened.value;
  // The first password goes to a terminal or, under a service manager (where standard output
  // ends in the journal or syslog), to a file of mode 0600 whose path alone is logged.
  const passwordFile = adminPasswordFile(stateFile);
  const printPassword = process.stdout.isTTY === true || o['print-admin-password'] === true;
  if (adminPassword !== undefined && !printPassword) {
    try {
      writeFileAtomic(passwordFile, `${adminPassword}\n`, { mode: 0o600 });
    } catch (e) {
      // without it nobody could log in: the state file goes too, the next start makes both anew
      fs.rmSync(stateFile, { force: true });
      log('error', `cannot write the administrator's password to ${passwordFile}: ${(e as Error).message} (${stateFile} removed)`);
      return 1;
    }
  } else if (adminPassword !== undefined) {
    fs.rmSync(passwordFile, { force: true }); // an earlier state's, stale
  } else if (fs.existsSync(passwordFile)) {
    log('warning', `${passwordFile} still holds the administrator's first password: log in as admin and change it (the file is then deleted)`);
  }
  const local: Instance[] = [new LocalInstance(name, path.resolve(String(o.tmpdir)))];
  const registry = new Registry(local, store, log);
  await registry.load();
  const assets = findAssets();
  const ui = assets === undefined ? undefined : new WebUi({ store, log, assets, secure: tls !== undefined });
  if (ui === undefined) log('warning', 'no web/ directory with index.html found above the program: serving the API only');
  const { server } = makeServer({ store, instances: () => registry.all(), registry, log, maxUploadBytes: maxUpload, tls, ui, sessionAuth: ui?.sessionAuth });
  const l = await listen(server, where.value.host, where.value.port);
  if (!l.ok) {
    log('error', l.error);
    return 1;
  }
  const host = l.value.host.includes(':') ? `[${l.value.host}]` : l.value.host;
  const url = `${tls ? 'https' : 'http'}://${host}:${l.value.port}/`;
  log('info', `listening on ${url} (state ${stateFile}, local instance "${name}" at ${local[0].where}, ${registry.all().length - 1} remote)`);
  if (adminPassword !== undefined && printPassword) {
    process.stdout.write(`${BINARY}: created ${stateFile} with the administrator "admin", password: ${adminPassword}\n`);
    process.stdout.write(`${BINARY}: this password is shown only now\n`);
  } else if (adminPassword !== undefined) {
    process.stdout.write(`${BINARY}: created ${stateFile} with the administrator "admin"; its password is in ${passwordFile} (mode 0600, deleted once the password is changed)\n`);
  }
  process.stdout.write(`${BINARY}: url: ${url}\n`);
  const stop = (): void => {
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return new Promise<number>(() => undefined);
});
