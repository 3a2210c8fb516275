// Makes dist/vmmd_tls_inetd.jsc, the V8 code cache the launcher (lib/launch.cjs) gives
// the TLS handler: runs the handler once, as inetd would, over a real TLS connection
// whose chain carries a policy and an `info` command, against the real vmmd in a
// throw-away directory, and lets it write the compiled code of everything that ran.
// Certificates come from our own provisioning code (build/src/provision). A failure
// only costs start-up time: it is reported and the build goes on without a cache.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const name = 'vmmd_tls_inetd';
const cacheFile = join(root, 'dist', `${name}.jsc`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function identities() {
  const { generateKey, privateKeyPem } = require(join(root, 'build/src/provision/keys.js'));
  const { issue, selfSignedCa } = require(join(root, 'build/src/provision/certs.js'));
  const cn = (s) => [{ '2.5.4.3': [s] }];
  const make = async (subject, issuer, signer, set, cmd) => {
    const kp = await generateKey('p256');
    const cert = await issue({ subject: cn(subject), subjectKey: kp.keys.publicKey, issuer: cn(issuer), signer, set, cmd, keyIds: true, validitySeconds: 600 });
    return { kp, pem: cert.toString('pem') + '\n', keyPem: await privateKeyPem(kp) };
  };
  const caKp = await generateKey('p256');
  const ca = { kp: caKp, pem: (await selfSignedCa('warm-up CA', caKp, 1)).toString('pem') + '\n' };
  const server = await make('server', 'warm-up CA', caKp, 'server');
  const policy = { cpuids: [0], unikernels: 2n, memory: 512, bridges: [] };
  const org = await make('org', 'warm-up CA', caKp, 'ca', { kind: 'policy', value: { kind: 'add', value: policy } });
  const leaf = await make('.', 'org', org.kp, 'leaf', { kind: 'unikernel', value: { kind: 'info', value: null } });
  return { ca, server, org, leaf };
}

async function waitFor(path, ms) {
  for (let t = 0; t < ms; t += 20) {
    if (existsSync(path)) return;
    await sleep(20);
  }
  throw new Error(`${path} did not appear`);
}

export async function warm() {
  const dir = mkdtempSync(join(tmpdir(), 'albatross-warm-'));
  const children = [];
  try {
    const ids = await identities();
    const f = (n, text, mode = 0o644) => { const p = join(dir, n); writeFileSync(p, text, { mode }); return p; };
    const ca = f('cacert.pem', ids.ca.pem);
    const cert = f('server.pem', ids.server.pem);
    const key = f('server.key', ids.server.keyPem, 0o600);
    const run = join(dir, 'run');
    const db = join(dir, 'db');
    mkdirSync(run);
    mkdirSync(db);
    // vmmd wants the console daemon (as upstream's does)
    children.push(spawn(process.execPath, [join(root, 'bin', 'vmmd_console'), '--tmpdir', run], { stdio: 'ignore' }));
    await waitFor(join(run, 'util', 'console.sock'), 10_000);
    const vmmd = spawn(process.execPath, [join(root, 'bin', 'vmmd'), '--tmpdir', run, '--dbdir', db], { stdio: 'ignore' });
    children.push(vmmd);
    await waitFor(join(run, 'util', 'vmmd.sock'), 10_000);

    rmSync(cacheFile, { force: true });
    let handler;
    const server = net.createServer({ pauseOnConnect: true }, (sock) => {
      handler = spawn(process.execPath, [join(root, 'bin', name), ca, cert, key, '--tmpdir', run, '--logfile', join(dir, 'handler.log')], {
        stdio: [sock, sock, 'ignore'],
        env: { ...process.env, ALBATROSS_CODE_CACHE: 'write' },
      });
      children.push(handler);
      sock.destroy();
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address();
    const reply = await new Promise((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port, ca: ids.ca.pem, cert: ids.leaf.pem + ids.org.pem, key: ids.leaf.keyPem, checkServerIdentity: () => undefined, minVersion: 'TLSv1.3' });
      let n = 0;
      c.on('data', (b) => (n += b.length));
      c.on('end', () => resolve(n));
      c.on('error', reject);
      setTimeout(() => reject(new Error('no answer within 20 s')), 20_000).unref();
    });
    server.close();
    if (handler.exitCode === null) await new Promise((r) => handler.once('exit', r));
    if (reply === 0) throw new Error('the handler answered nothing');
    if (handler.exitCode !== 0) throw new Error(`the handler exited with ${handler.exitCode}: ${readFileSync(join(dir, 'handler.log'), 'utf8').trim()}`);
    return statSync(cacheFile).size;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await sleep(50);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  warm().then(
    (size) => console.log(`code cache dist/${name}.jsc: ${(size / 1024).toFixed(1)} kB in ${Math.round(performance.now() - started)} ms`),
    (e) => { console.log(`warning: no code cache for ${name} (it starts slower): ${e.message}`); },
  );
}
