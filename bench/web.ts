/**
 * vmmd_web with 1,000 unikernels (BENCH_WEB_N) across 3 instances: the local one (vmmd_web's
 * --tmpdir) and two remote ones, each a vmmd behind vmmd_tls on loopback reached with a
 * delegation CA for the path `bench` (one signed leaf per command, as in production). Each
 * instance is its own set of daemons (vmmd_console, vmmd) on a temporary directory, restored
 * from a generated state file with a third of the unikernels; the tender is a shell script that
 * exec's sleep, so 1,000 of them cost little.
 *
 * Measured over BENCH_WEB_ROUNDS rounds (default 30), as medians and p95, from this process
 * over loopback HTTP with an administrator's token:
 * - the unikernel list of all three instances, requested at once as the list page does;
 * - the list of each instance alone;
 * - one unikernel's detail, local and remote;
 * - the list page in headless Chromium (when /usr/bin/chromium is installed), logged in:
 *   navigation start to DOMContentLoaded, and to the three tables rendered with every row
 *   (polled each animation frame, so up to one frame late).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { connectUnix } from '../src/transport/conn.js';
import { encodeState, type StateDump } from '../src/core/wire/state.js';
import type { UnikernelConfig } from '../src/core/wire/common.js';

const root = path.resolve(__dirname, '..', '..');
const CLI = path.join(root, 'build', 'src', 'cli');
const N = Number(process.env.BENCH_WEB_N ?? '1000');
const ROUNDS = Number(process.env.BENCH_WEB_ROUNDS ?? '30');
const CHROMIUM = '/usr/bin/chromium';

const out = (s: string): void => void process.stdout.write(`${s}\n`);
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];
const fmt = (xs: number[]): string => `median ${pct(xs, 50).toFixed(1)} ms, p95 ${pct(xs, 95).toFixed(1)} ms (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)}; ${xs.length} rounds)`;

function image(): Uint8Array {
  const { solo5Image } = require(path.join(root, 'build', 'test', 'helpers', 'image.js')) as { solo5Image: () => Uint8Array };
  return solo5Image();
}

const freePort = (): Promise<number> => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as net.AddressInfo).port;
    s.close(() => resolve(p));
  });
});

async function until(what: string, f: () => boolean | Promise<boolean>, ms = 600_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const socketAnswers = async (sock: string): Promise<boolean> => {
  if (!fs.existsSync(sock)) return false;
  const c = await connectUnix(sock);
  if (c.ok) c.value.close();
  return c.ok;
};

const portAnswers = (port: number): Promise<boolean> => new Promise((resolve) => {
  const c = net.connect(port, '127.0.0.1', () => {
    c.destroy();
    resolve(true);
  });
  c.on('error', () => resolve(false));
});

interface Reply {
  status: number;
  body: string;
  ms: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function get(base: string, p: string, token: string, o: { method?: string; json?: unknown } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const body = o.json === undefined ? undefined : Buffer.from(JSON.stringify(o.json));
    const headers: Record<string, string> = token === '' ? {} : { authorization: `Bearer ${token}` };
    if (body !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(body.length) });
    const req = http.request(new URL(p, base), { method: o.method ?? 'GET', headers, agent }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString(), ms: performance.now() - t }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function run(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-web-'));
  const procs: ChildProcess[] = [];
  const pidDirs: string[] = [];
  const img = image();
  const counts = [0, 1, 2].map((k) => Math.floor(N / 3) + (k < N % 3 ? 1 : 0));
  const config = (i: number): UnikernelConfig => ({
    typ: 'solo5', compressed: false, image: img, addName: true, failBehaviour: { kind: 'quit', value: null },
    cpuids: [0], memory: 1, blocks: [], bridges: [], cpus: 1, arguments: [`--n=${i}`],
  });
  const daemon = (main: string, args: string[], log: string, cwd?: string): ChildProcess => {
    const fd = fs.openSync(log, 'a');
    const p = spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', process.execPath, path.join(CLI, main), ...args],
      { stdio: ['ignore', 'ignore', fd], cwd });
    fs.closeSync(fd);
    procs.push(p);
    return p;
  };
  try {
    // three sets of daemons, each restoring its third of the unikernels at bench:u<i>
    const insts = counts.map((n, k) => {
      const base = path.join(dir, `i${k}`);
      const tmpdir = path.join(base, 'tmp');
      const dbdir = path.join(base, 'db');
      const pids = path.join(base, 'pids');
      for (const d of [path.join(tmpdir, 'util'), dbdir, pids]) fs.mkdirSync(d, { recursive: true });
      pidDirs.push(pids);
      fs.writeFileSync(path.join(dbdir, 'solo5-spt'), `#!/bin/sh\ncase "$1" in --version) echo "solo5-spt tender, version v0.12.1"; echo "ABI version 2"; exit 0;; esac\n: > '${pids}'/$$\nexec sleep 1000000\n`, { mode: 0o755 });
      const first = counts.slice(0, k).reduce((a, b) => a + b, 0);
      const dump: StateDump = {
        unikernels: Array.from({ length: n }, (_, i) => ({ name: { path: ['bench'], label: `u${first + i}` }, config: config(first + i) })),
        policies: [],
      };
      fs.writeFileSync(path.join(dbdir, 'state'), encodeState(dump));
      return { base, tmpdir, dbdir, n };
    });
    const t0 = performance.now();
    for (const i of insts) {
      daemon('vmmd_console.js', ['--tmpdir', i.tmpdir], path.join(i.base, 'console.log'));
      await until('console.sock', () => socketAnswers(path.join(i.tmpdir, 'util', 'console.sock')));
      daemon('vmmd.js', ['--tmpdir', i.tmpdir, '--dbdir', i.dbdir], path.join(i.base, 'vmmd.log'));
    }
    for (const i of insts) await until('vmmd.sock', () => socketAnswers(path.join(i.tmpdir, 'util', 'vmmd.sock')));
    out(`instances: 3 (local, remote1, remote2), ${counts.join(' + ')} = ${N} unikernels restored in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // the delegation CA for `bench` and the TLS endpoints of the two remote instances
    const pki = path.join(dir, 'pki');
    fs.mkdirSync(pki);
    const sync = (bin: string, args: string[]): void => {
      const r = spawnSync(process.execPath, [path.join(CLI, `${bin}.js`), ...args], { cwd: pki, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')}: ${r.stderr}`);
    };
    sync('vmmp_ca', ['generate', 'ca', 'db']);
    sync('vmmp_request', ['add-policy', 'bench', String(N), '--mem', String(2 * N), '--cpu', '0', '--size', '8']);
    sync('vmmp_ca', ['sign', 'cacert.pem', 'db', 'ca.key', 'bench.req']);
    const ports: number[] = [];
    for (const i of insts.slice(1)) {
      const port = await freePort();
      ports.push(port);
      daemon('vmmd_tls.js', ['cacert.pem', 'server.pem', 'server.key', '--ip', '127.0.0.1', '--port', String(port), '--tmpdir', i.tmpdir], path.join(i.base, 'tls.log'), pki);
      await until('vmmd_tls', () => portAnswers(port));
    }

    // vmmd_web on the first set, the two others as remote instances
    const web = spawn(process.execPath, [path.join(CLI, 'vmmd_web.js'), '--http', '127.0.0.1:0', '--tmpdir', insts[0].tmpdir, '--state', path.join(dir, 'web.json'), '-q'], { stdio: ['ignore', 'pipe', 'ignore'] });
    procs.push(web);
    let stdout = '';
    web.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
    await until('vmmd_web', () => /url: \S+/.test(stdout), 30_000);
    const url = (/url: (\S+)/.exec(stdout) as RegExpExecArray)[1];
    const password = (/password: (\S+)/.exec(stdout) as RegExpExecArray)[1];
    const tok = await get(url, '/api/v1/tokens', '', { method: 'POST', json: { user: 'admin', password } });
    const token = (JSON.parse(tok.body) as { token: string }).token;
    for (const [k, port] of ports.entries()) {
      const r = await get(url, '/api/v1/instances', token, {
        method: 'POST',
        json: { name: `remote${k + 1}`, destination: `127.0.0.1:${port}`, ca: path.join(pki, 'bench.pem'), caKey: path.join(pki, 'bench.key'), serverCa: path.join(pki, 'cacert.pem'), path: 'bench' },
      });
      if (r.status !== 201) throw new Error(`adding remote${k + 1}: ${r.status} ${r.body}`);
    }
    const names = ['local', 'remote1', 'remote2'];
    const list = async (inst: string): Promise<number> => {
      const r = await get(url, `/api/v1/instances/${inst}/unikernels`, token);
      if (r.status !== 200) throw new Error(`list ${inst}: ${r.status} ${r.body}`);
      return r.ms;
    };
    // warm-up (the code of each path, the first handshake)
    for (const n of names) {
      const r = await get(url, `/api/v1/instances/${n}/unikernels`, token);
      const len = (JSON.parse(r.body) as unknown[]).length;
      if (len !== counts[names.indexOf(n)]) throw new Error(`${n} lists ${len} unikernels, expected ${counts[names.indexOf(n)]}: ${r.body.slice(0, 200)}`);
      out(`list of ${n}: ${len} unikernels, ${(r.body.length / 1024).toFixed(0)} kB of JSON`);
    }

    const all: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t = performance.now();
      await Promise.all(names.map(list));
      all.push(performance.now() - t);
    }
    out(`GET unikernels of all 3 instances at once (${N}): ${fmt(all)}`);
    for (const n of names) {
      const xs: number[] = [];
      for (let i = 0; i < ROUNDS; i++) xs.push(await list(n));
      out(`GET unikernels of ${n} alone (${counts[names.indexOf(n)]}): ${fmt(xs)}`);
    }
    for (const [n, label] of [['local', 'u7'], ['remote1', `u${counts[0] + 7}`]]) {
      const xs: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const r = await get(url, `/api/v1/instances/${n}/unikernels/bench:${label}`, token);
        if (r.status !== 200) throw new Error(`detail on ${n}: ${r.status} ${r.body}`);
        xs.push(r.ms);
      }
      out(`GET one unikernel's detail on ${n}: ${fmt(xs)}`);
    }

    if (!fs.existsSync(CHROMIUM)) {
      out(`list page: skipped, ${CHROMIUM} is not installed`);
      return;
    }
    const { chromium } = await import('playwright-core');
    const profile = path.join(dir, 'chromium');
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1200, height: 900 },
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      page.setDefaultTimeout(120_000);
      await page.goto(new URL('/login', url).href);
      await page.fill('#user', 'admin');
      await page.fill('#password', password);
      await page.click('button[type=submit]');
      await page.waitForSelector('#who:has-text("admin")');
      const dcl: number[] = [];
      const rendered: number[] = [];
      for (let i = 0; i <= ROUNDS; i++) {
        // from another document, so that each round is a full navigation (not a hash change)
        await page.goto('about:blank');
        await page.goto(new URL('/#/', url).href, { waitUntil: 'commit' });
        // functions, not strings: the page's Content-Security-Policy forbids eval
        /* eslint-disable @typescript-eslint/no-explicit-any */
        await page.waitForFunction((n: number) => (globalThis as any).document.querySelectorAll('table tr[data-name]').length >= n, N, { polling: 'raf' });
        const t = await page.evaluate(() => {
          const nav = (performance.getEntriesByType as (t: string) => any[])('navigation')[0];
          return { dcl: nav.domContentLoadedEventEnd as number, now: performance.now() };
        });
        /* eslint-enable @typescript-eslint/no-explicit-any */
        if (i === 0) continue; // the first: cold caches
        dcl.push(t.dcl);
        rendered.push(t.now);
      }
      out(`list page in headless Chromium: navigation to DOMContentLoaded ${fmt(dcl)}`);
      out(`list page in headless Chromium: navigation to all ${N} rows rendered ${fmt(rendered)}`);
    } finally {
      await context.close();
    }
  } finally {
    agent.destroy();
    for (const p of procs.reverse()) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 2000));
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const pids of pidDirs) {
      for (const f of fs.readdirSync(pids)) {
        try {
          const argv = fs.readFileSync(`/proc/${f}/cmdline`, 'utf8').split('\0');
          if (argv.includes('1000000')) process.kill(Number(f), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  run().catch((e: unknown) => {
    process.stderr.write(`bench web: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
