/**
 * The remote clients against the real stack: vmmd (fake tender), vmmd_console, vmmd_log and
 * the TLS endpoint vmmd_tls on loopback; a delegation CA from vmmp_ca, one-shot commands from
 * vmmc_bistro and a signed certificate used with vmmc_remote.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { type RunDir, type VmmdProcess, config, create, destroy, makeRunDir, request, startVmmd, until } from './helpers/vmmd.js';
import { solo5Image } from './helpers/image.js';

const CLI = path.join(__dirname, '..', 'src', 'cli');
let d: RunDir;
let pki: string;
let vmmd: VmmdProcess;
const procs: ChildProcess[] = [];
let port = 0;
let logProc: ChildProcess;

interface Out { code: number; stdout: string; stderr: string }
function run(bin: string, args: string[]): Promise<Out> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(CLI, `${bin}.js`), ...args], { cwd: pki, timeout: 30_000 }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
    });
  });
}
function sync(bin: string, args: string[]): void {
  const r = spawnSync(process.execPath, [path.join(CLI, `${bin}.js`), ...args], { cwd: pki, encoding: 'utf8' });
  assert.equal(r.status, 0, `${bin} ${args.join(' ')}: ${r.stderr}`);
}
const freePort = (): Promise<number> => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as net.AddressInfo).port;
    s.close(() => resolve(p));
  });
});

before(async () => {
  d = makeRunDir();
  pki = path.join(d.root, 'pki');
  fs.mkdirSync(pki);
  const consoleProc = spawn(process.execPath, [path.join(CLI, 'vmmd_console.js'), '--tmpdir', d.tmpdir], { stdio: 'ignore' });
  procs.push(consoleProc);
  await until('console.sock', () => fs.existsSync(path.join(d.tmpdir, 'util', 'console.sock')));
  procs.push(spawn(process.execPath, [path.join(CLI, 'vmmd_stats.js'), '--tmpdir', d.tmpdir, '--interval-ms', '100'], { stdio: 'ignore' }));
  await until('stat.sock', () => fs.existsSync(path.join(d.tmpdir, 'util', 'stat.sock')));
  logProc = spawn(process.execPath, [path.join(CLI, 'vmmd_log.js'), '--tmpdir', d.tmpdir, '--logfile', path.join(d.root, 'albatross.log')], { stdio: 'ignore' });
  procs.push(logProc);
  await until('log.sock', () => fs.existsSync(path.join(d.tmpdir, 'util', 'log.sock')));
  vmmd = await startVmmd(d);
  sync('vmmp_ca', ['generate', 'ca', 'db']);
  sync('vmmp_request', ['add-policy', 'team', '2', '--mem', '128', '--cpu', '0', '--size', '8']);
  sync('vmmp_ca', ['sign', 'cacert.pem', 'db', 'ca.key', 'team.req']);
  port = await freePort();
  const tlsProc = spawn(process.execPath, [path.join(CLI, 'vmmd_tls.js'), 'cacert.pem', 'server.pem', 'server.key', '--ip', '127.0.0.1', '--port', String(port), '--tmpdir', d.tmpdir], { cwd: pki, stdio: 'ignore' });
  procs.push(tlsProc);
  await until('vmmd_tls listening', () => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  }));
});

after(async () => {
  for (const p of procs) p.kill();
  await vmmd?.stop();
  d?.remove();
});

const bistro = (args: string[]): Promise<Out> => run('vmmc_bistro', [...args, '--ca', 'team.pem', '--ca-key', 'team.key', '-d', `127.0.0.1:${port}`]);

test('one-shot commands through the endpoint: the policy of the CA is installed and enforced', async () => {
  let r = await bistro(['create-block', 'vol', '4']);
  assert.deepEqual([r.code, r.stdout], [0, 'added block device\n'], r.stderr);
  r = await bistro(['create-block', 'big', '16']);
  assert.equal(r.code, 117);
  assert.match(r.stderr, /failure: block device policy limit of 8 MB \(used 4 MB\) would be exceeded by the request \(16 MB\)/);
  const data = Buffer.alloc(1_000_000);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  fs.writeFileSync(path.join(pki, 'data.img'), data);
  r = await bistro(['set-block', 'vol', 'data.img']);
  assert.deepEqual([r.code, r.stdout], [0, 'set block device\n'], r.stderr);
  r = await bistro(['dump-block', 'vol', '--output', 'back.img']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(fs.readFileSync(path.join(pki, 'back.img')).subarray(0, data.length), data);
  // the unikernel lands below the CA's path
  fs.writeFileSync(path.join(pki, 'web.spt'), solo5Image());
  r = await bistro(['create', 'web', 'web.spt', '--arg=--solo5:quiet', '--arg=--sleep']);
  assert.deepEqual([r.code, r.stdout], [0, 'created unikernel\n'], r.stderr);
  r = await bistro(['create', 'fat', 'web.spt', '--mem', '512']);
  assert.equal(r.code, 123, 'refused before connecting: does not fit the CA policy');
  assert.match(r.stderr, /maximum allowed memory \(128\) would be exceeded \(requesting 512\)/);
});

test('signed certificates with vmmc_remote: info, a create whose image follows the handshake, destroy', async () => {
  sync('vmmp_request', ['info', '--name', 'web']);
  sync('vmmp_ca', ['sign', 'team.pem', 'db', 'team.key', 'web.req']);
  let r = await run('vmmc_remote', ['web.pem', 'web.key', '-d', `127.0.0.1:${port}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\nteam:web +solo5 +0 +32 /);
  // an image that travels after the handshake instead of in the certificate
  fs.writeFileSync(path.join(pki, 'late.spt'), solo5Image());
  sync('vmmp_request', ['create', 'late', 'late.spt', '--image-later', '--arg=--solo5:quiet', '--arg=--sleep']);
  sync('vmmp_ca', ['sign', 'team.pem', 'db', 'team.key', 'late.req']);
  r = await run('vmmc_remote', ['late.pem', 'late.key', '-d', `127.0.0.1:${port}`, '--data', 'late.spt']);
  assert.deepEqual([r.code, r.stdout], [0, 'created unikernel\n'], r.stderr);
  r = await bistro(['get', 'late', '--output', 'late.back']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(fs.readFileSync(path.join(pki, 'late.back')), fs.readFileSync(path.join(pki, 'late.spt')));
  r = await bistro(['destroy', 'late']);
  assert.equal(r.code, 0, r.stderr);
  sync('vmmp_request', ['destroy', 'web']);
  sync('vmmp_ca', ['sign', 'team.pem', 'db', 'team.key', 'web.req']);
  r = await run('vmmc_remote', ['web.pem', 'web.key', '-d', `127.0.0.1:${port}`]);
  assert.deepEqual([r.code, r.stdout], [0, 'destroyed unikernel\n'], r.stderr);
});

test('set-block by request: vmmp_request set-block NAME takes no FILE (a request carries no data); vmmc_remote --data sends it', async () => {
  let r = await bistro(['create-block', 'disk', '1']);
  assert.equal(r.code, 0, r.stderr);
  r = await run('vmmp_request', ['set-block', 'disk', 'disk.img']);
  assert.equal(r.code, 124);
  assert.match(r.stderr, /^vmmp_request: set-block: unexpected argument "disk.img" \(a request carries no data: give FILE to vmmc_remote --data\)/);
  r = await run('vmmp_request', ['--help']);
  assert.match(r.stdout, /\n +set-block NAME +overwrite/);
  sync('vmmp_request', ['set-block', 'disk']);
  sync('vmmp_ca', ['sign', 'team.pem', 'db', 'team.key', 'disk.req']);
  const data = Buffer.alloc(300_000, 7);
  fs.writeFileSync(path.join(pki, 'disk.img'), data);
  r = await run('vmmc_remote', ['disk.pem', 'disk.key', '-d', `127.0.0.1:${port}`, '--data', 'disk.img']);
  assert.deepEqual([r.code, r.stdout], [0, 'set block device\n'], r.stderr);
  r = await bistro(['dump-block', 'disk', '--output', 'disk.back']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(fs.readFileSync(path.join(pki, 'disk.back')).subarray(0, data.length), data);
  r = await bistro(['destroy-block', 'disk']);
  assert.equal(r.code, 0, r.stderr);
});

test('vmmc_bistro defaults to the files of `vmmp_ca generate ca`: cacert.pem and ca.key', async () => {
  const r = await run('vmmc_bistro', ['info', '-d', `127.0.0.1:${port}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^(no unikernels|NAME +TYPE)/);
});

/** Runs vmmc_bistro until its standard output matches `want`, then stops it (for subscriptions). */
function bistroUntil(args: string[], want: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(CLI, 'vmmc_bistro.js'), ...args, '--ca', 'team.pem', '--ca-key', 'team.key', '-d', `127.0.0.1:${port}`], { cwd: pki, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => { p.kill(); reject(new Error(`no ${String(want)} in ${JSON.stringify(out)}: ${err}`)); }, 20_000);
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (want.test(out)) {
        clearTimeout(timer);
        p.kill();
        resolve(out);
      }
    });
    p.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    p.on('exit', (code) => { clearTimeout(timer); if (!want.test(out)) reject(new Error(`exit ${code}: ${out} ${err}`)); });
  });
}

test('vmmc_bistro: every subcommand README lists runs through vmmd_tls, the policy ones included', async () => {
  // policy commands: the leaf CN is the path below the CA's (before: an empty CN for the
  // root was an invalid label, policy add/remove were refused in a leaf, and -p sub was
  // read as the label of team:sub, which vmmd ignores, so every policy of team: was listed)
  let r = await bistro(['add-policy', 'sub', '1', '--mem', '64', '--cpu', '0']);
  assert.deepEqual([r.code, r.stdout], [0, 'added policy\n'], r.stderr);
  // paths relative to the query: team: is ":", team:sub: is "sub:"
  const rows = (out: string): string[] => out.split('\n').slice(1).filter((l) => l !== '').map((l) => l.split(/ +/).slice(0, 3).join(' '));
  r = await bistro(['policy']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(rows(r.stdout), [': 2 0', 'sub: 1 0']);
  r = await bistro(['policy', '-p', 'sub']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(rows(r.stdout), [': 1 0']);
  r = await bistro(['replace-policy', 'sub', '1', '--mem', '32', '--cpu', '0']);
  assert.deepEqual([r.code, r.stdout], [0, 'added policy\n'], r.stderr);
  r = await bistro(['add-policy', 'sub', '9', '--mem', '32', '--cpu', '0']);
  assert.equal(r.code, 123, 'refused before connecting: more than the CA allows');
  // a leaf may not change the chain's own policy, which its CA certificate carries
  r = await bistro(['remove-policy']);
  assert.equal(r.code, 117);
  assert.match(r.stderr, /failure: refused: policy remove may not have an empty name: a leaf certificate adds or removes policies below the path of its chain \(team:\)/);
  r = await bistro(['remove-policy', '-p', 'sub']);
  assert.deepEqual([r.code, r.stdout], [0, 'removed policy\n'], r.stderr);
  r = await bistro(['policy']);
  assert.deepEqual(rows(r.stdout), [': 2 0'], r.stderr);
  // the root CA: an empty CN (upstream's client writes the root path so) is the root path
  r = await run('vmmc_bistro', ['policy', '-d', `127.0.0.1:${port}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(rows(r.stdout).includes('team: 2 0'), r.stdout);

  // the unikernel, console, stats and block subcommands
  fs.writeFileSync(path.join(pki, 'web.spt'), solo5Image());
  r = await bistro(['create', 'echo', 'web.spt', '--arg=--solo5:quiet', '--arg=--sleep']);
  assert.deepEqual([r.code, r.stdout], [0, 'created unikernel\n'], r.stderr);
  r = await bistro(['info', '-n', 'echo']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /team:echo/);
  r = await bistro(['restart', 'echo']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(await bistroUntil(['console', 'echo', '--count', '5'], /\S/), /\S/);
  assert.match(await bistroUntil(['stats', '-n', 'echo'], /echo|rss|utime/), /\S/);
  r = await bistro(['destroy', 'echo']);
  assert.equal(r.code, 0, r.stderr);
  r = await bistro(['inactive-consoles']);
  assert.equal(r.code, 0, r.stderr);
  r = await bistro(['inactive-consoles', '-p', 'sub']);
  assert.equal(r.code, 0, r.stderr);
  r = await bistro(['create-block', 'vol2', '1']);
  assert.equal(r.code, 0, r.stderr);
  r = await bistro(['block']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /team:vol2|vol2/);
  r = await bistro(['destroy-block', 'vol2']);
  assert.equal(r.code, 0, r.stderr);
  // daemon-internal: refused before anything is made
  for (const sub of ['stats-add', 'stats-remove']) {
    r = await bistro([sub, ...(sub === 'stats-add' ? ['1'] : [])]);
    assert.equal(r.code, 124, sub);
    assert.match(r.stderr, /cannot run remotely/);
  }
});

test('refusals after the handshake reach vmmc_remote with their reason: a command not allowed in a leaf (117)', async () => {
  sync('vmmp_request', ['stats-remove', '--name', 'spy']);
  sync('vmmp_ca', ['sign', 'team.pem', 'db', 'team.key', 'spy.req']);
  const r = await run('vmmc_remote', ['spy.pem', 'spy.key', '-d', `127.0.0.1:${port}`]);
  assert.equal(r.code, 117, r.stderr);
  assert.equal(r.stderr, 'vmmc_remote: failure: refused: unexpected command (stats remove is not allowed in a leaf certificate)\n');
});

test('a revoked certificate reaches vmmc_remote as the refusal of its certificate (119) with the reason; --crl checks the CRLs there are', async () => {
  sync('vmmp_request', ['info', '--name', 'gone']);
  sync('vmmp_ca', ['sign', 'team.pem', 'db', 'team.key', 'gone.req']);
  sync('vmmp_request', ['info', '--name', 'kept']);
  sync('vmmp_ca', ['sign', 'team.pem', 'db', 'team.key', 'kept.req']);
  sync('vmmp_ca', ['revoke', 'team.pem', 'db', 'team.key', 'gone.pem']);
  // team's CRL only: the root publishes none (before, --crl refused every chain then, UNABLE_TO_GET_CRL)
  const crlPort = await freePort();
  const p = spawn(process.execPath, [path.join(CLI, 'vmmd_tls.js'), 'cacert.pem', 'server.pem', 'server.key', '--ip', '127.0.0.1', '--port', String(crlPort), '--tmpdir', d.tmpdir, '--crl', 'team.crl', '-q'], { cwd: pki, stdio: 'ignore' });
  procs.push(p);
  await until('vmmd_tls --crl listening', () => new Promise((resolve) => {
    const c = net.connect(crlPort, '127.0.0.1', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  }));
  let r = await run('vmmc_remote', ['kept.pem', 'kept.key', '-d', `127.0.0.1:${crlPort}`]);
  assert.equal(r.code, 0, r.stderr);
  r = await run('vmmc_remote', ['gone.pem', 'gone.key', '-d', `127.0.0.1:${crlPort}`]);
  assert.equal(r.code, 119, r.stderr);
  assert.equal(r.stderr, 'vmmc_remote: the server refused our certificate (CERT_REVOKED (certificate 0, CN "gone", is in the CRL of CN "team"))\n');
});

test('status and log leaves through vmmd_tls (vmmc_bistro, vmmp_request + vmmc_remote): team sees its own unikernels and events, never :team, teamx:web or other:web', async () => {
  const vmmdSock = path.join(d.tmpdir, 'util', 'vmmd.sock');
  // beside team, made directly at vmmd: the root-level :team, teamx:web, other:web
  const beside = [':team', 'teamx:web', 'other:web'];
  for (const n of beside) {
    const ws = await request(vmmdSock, n, create(config(['--sleep'])));
    assert.equal(ws[0].payload.kind, 'reply', n);
  }
  fs.writeFileSync(path.join(pki, 'st.spt'), solo5Image());
  let r = await bistro(['create', 'st', 'st.spt', '--arg=--solo5:quiet', '--arg=--sleep']);
  assert.deepEqual([r.code, r.stdout], [0, 'created unikernel\n'], r.stderr);
  r = await bistro(['create', 'loop', 'st.spt', '--arg=--solo5:quiet', '--arg=--exit=3', '--restart-on-fail', '--exit-code', '3']);
  assert.deepEqual([r.code, r.stdout], [0, 'created unikernel\n'], r.stderr);
  try {
    // status of the CA's path: names relative to team:, as vmmc_local's
    let text = '';
    await until('loop restarting', async () => {
      r = await bistro(['status']);
      text = r.stdout;
      return r.code === 0 && /^:loop +restarting after \d+ failures?, next start /m.test(text);
    }, 20_000);
    assert.match(text, /^NAME +STATE\n/);
    assert.match(text, /^:st +running pid \d+, up \d+s\n/m);
    assert.deepEqual(text.split('\n').slice(1).filter((l) => l !== '').map((l) => l.split(/ +/)[0]), [':loop', ':st']);
    r = await bistro(['status', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { unikernels: { name: string; state: string; pid?: number; since?: string; failures: number; next_start?: string }[] };
    assert.deepEqual(doc.unikernels.map((u) => u.name), [':loop', ':st']);
    assert.equal(doc.unikernels[1].state, 'running');
    assert.equal(typeof doc.unikernels[1].pid, 'number');
    const loop = doc.unikernels[0];
    if (loop.state === 'restarting') assert.match(loop.next_start as string, /^\d{4}-/);
    else assert.equal(loop.state, 'running', 'a crash loop runs for a moment between its waits');
    assert.ok(loop.failures >= 1, JSON.stringify(loop));
    r = await bistro(['status', '-n', 'st']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^team:st +running pid \d+/m);
    // a name that is another tenant's is read below team: (`-n :team` is team:team): nothing
    r = await bistro(['status', '-n', ':team']);
    assert.deepEqual([r.code, r.stdout], [0, 'no unikernels\n'], r.stderr);

    // vmmc_local status on the host (the root): everything, in the same table
    r = await run('vmmc_local', ['status', '--tmpdir', d.tmpdir]);
    assert.equal(r.code, 0, r.stderr);
    for (const n of [':team', 'teamx:web', 'other:web', 'team:st']) assert.match(r.stdout, new RegExp(`^${n} +running pid \\d+`, 'm'), n);
    // (a crash loop runs for a moment between its waits)
    assert.match(r.stdout, /^team:loop +(restarting after |running pid )/m);

    // the event log: history of team's names only
    r = await bistro(['log', '--no-follow', '--count', '200']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, / start team:st pid \d+/);
    for (const n of beside) assert.ok(!r.stdout.includes(` ${n} `), `${n} in ${r.stdout}`);
    r = await bistro(['log', '--no-follow', '--count', '200', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const names = new Set(r.stdout.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { name?: string }).name));
    assert.ok(names.has('team:st') && names.has('team:loop'), r.stdout);
    for (const n of names) assert.match(String(n), /^team:/, `team's log shows ${String(n)}`);
    r = await bistro(['log', '-n', 'st', '--no-follow', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const entries = r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { name?: string });
    assert.ok(entries.length > 0 && entries.every((e) => e.name === 'team:st'), r.stdout);

    // a signed request for the CA's own path: status.key and status.req, then vmmc_remote
    r = await run('vmmp_request', ['status']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote status\.req: status for CN=\.$/m);
    sync('vmmp_ca', ['sign', 'team.pem', 'db', 'team.key', 'status.req']);
    r = await run('vmmc_remote', ['status.pem', 'status.key', '-d', `127.0.0.1:${port}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^:st +running pid \d+/m);
    sync('vmmp_request', ['log', '-n', 'st', '--count', '5']);
    sync('vmmp_ca', ['sign', 'team.pem', 'db', 'team.key', 'st.req']);
    r = await run('vmmc_remote', ['st.pem', 'st.key', '-d', `127.0.0.1:${port}`, '--no-follow']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, / team:st /);
  } finally {
    for (const n of ['st', 'loop']) await bistro(['destroy', n]);
    for (const n of beside) await request(vmmdSock, n, destroy);
  }
  // vmmd_log gone: a failure saying so
  logProc.kill();
  await new Promise((res) => (logProc.exitCode !== null ? res(undefined) : logProc.once('exit', res)));
  r = await bistro(['log', '--no-follow']);
  assert.equal(r.code, 117, r.stdout);
  assert.match(r.stderr, /^vmmc_bistro: failure: the event log is not available: vmmd_log is not running \(/m);
});
