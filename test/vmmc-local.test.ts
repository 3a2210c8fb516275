/**
 * vmmc_local as a process: every kind of subcommand against the real vmmd and
 * vmmd_console (with the fake tender), and against small peers on Unix sockets for the
 * stats and log daemons and for misbehaving daemons.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { FramedConn } from '../src/transport/conn.js';
import { type Wire, command, decodeWire, encodeWire, makeHeader } from '../src/core/wire/wire.js';
import { decodeLogWire, encodeLogWire, logMessage } from '../src/core/wire/log.js';
import type { StatsData } from '../src/core/wire/stats.js';
import { unwrap } from '../src/core/result.js';
import { type RunDir, type VmmdProcess, makeRunDir, nm, startVmmd, until } from './helpers/vmmd.js';
import { solo5Image } from './helpers/image.js';

const CLIENT = path.join(__dirname, '..', 'src', 'cli', 'vmmc_local.js');
const CONSOLE = path.join(__dirname, '..', 'src', 'cli', 'vmmd_console.js');
const STATS = path.join(__dirname, '..', 'src', 'cli', 'vmmd_stats.js');
const LOG = path.join(__dirname, '..', 'src', 'cli', 'vmmd_log.js');
const FIX = path.join(__dirname, '..', '..', 'test', 'fixtures', 'upstream-2.7.2', 'run1');

interface Out { code: number; stdout: string; stderr: string }
function client(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Out> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLIENT, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, maxBuffer: 16 << 20, timeout: 30_000 }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
    });
  });
}

let d: RunDir;
let vmmd: VmmdProcess;
let consoleProc: ChildProcess | undefined;
const companions: ChildProcess[] = [];
let L: (args: string[]) => Promise<Out>;


before(async () => {
  d = makeRunDir();
  consoleProc = spawn(process.execPath, [CONSOLE, '--tmpdir', d.tmpdir], { stdio: 'ignore' });
  await until('console.sock', () => fs.existsSync(path.join(d.tmpdir, 'util', 'console.sock')));
  companions.push(spawn(process.execPath, [LOG, '--tmpdir', d.tmpdir, '--logfile', path.join(d.root, 'albatross.log')], { stdio: 'ignore' }));
  await until('log.sock', () => fs.existsSync(path.join(d.tmpdir, 'util', 'log.sock')));
  vmmd = await startVmmd(d);
  companions.push(spawn(process.execPath, [STATS, '--tmpdir', d.tmpdir, '--interval', '1'], { stdio: 'ignore' }));
  await until('stat.sock', () => fs.existsSync(path.join(d.tmpdir, 'util', 'stat.sock')));
  L = (args) => client([...args, '--tmpdir', d.tmpdir], { TMPDIR: d.root });
  fs.writeFileSync(path.join(d.root, 'hello.spt'), solo5Image({ blocks: ['storage'] }));
});

after(async () => {
  await L(['destroy', 'hello']);
  await vmmd?.stop();
  consoleProc?.kill();
  for (const c of companions) c.kill();
  d?.remove();
});

test('info, policy, add-policy, block and create-block print tables; failures exit 117 with the message', async () => {
  let r = await L(['info']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'no unikernels\n');
  r = await L(['add-policy', 'dept', '3', '--mem', '256', '--cpu', '0', '--cpu', '1', '--bridge', 'br0', '--size', '100']);
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, 'added policy\n', '']);
  r = await L(['policy', '--path', 'dept']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^PATH +UNIKERNELS +CPUIDS +MEM\(MB\) +BLOCK\(MB\) +BRIDGES\n/);
  assert.match(r.stdout, /\n: +3 +0,1 +256 +100 +br0\n/, "names are relative to the queried path");
  r = await L(['create-block', 'storage', '4']);
  assert.deepEqual([r.code, r.stdout], [0, 'added block device\n']);
  r = await L(['block']);
  assert.match(r.stdout, /:storage +4 +no\n/);
  r = await L(['create-block', 'storage', '4']);
  assert.equal(r.code, 117);
  assert.equal(r.stderr, 'vmmc_local: failure: block device with same name already exists\n');
  r = await L(['remove-policy', '--path', 'nosuch']);
  assert.equal(r.code, 117);
});

test('create, info, console, get, restart and destroy a unikernel', async () => {
  const img = path.join(d.root, 'hello.spt');
  let r = await L(['create', 'hello', img, '--block', 'storage', '--arg=--solo5:quiet', '--arg=--lines=3', '--arg=--sleep']);
  assert.deepEqual([r.code, r.stderr, r.stdout], [0, '', 'created unikernel\n']);
  r = await L(['info']);
  assert.match(r.stdout, /^NAME +TYPE/);
  assert.match(r.stdout, /\n:hello +solo5 +0 +32 +\S+ +quit +running pid \d+, up \d+s +block storage=storage; args /);
  r = await L(['info', '--json']);
  assert.equal(r.stdout.trim().split('\n').length, 1, 'info --json is one document, the state folded in');
  const j = JSON.parse(r.stdout) as { unikernels: Record<string, unknown>[] };
  assert.equal(j.unikernels.length, 1);
  const u = j.unikernels[0];
  assert.deepEqual(
    { ...u, pid: typeof u.pid, since: typeof u.since, started: typeof u.started, digest: typeof u.digest },
    {
      name: ':hello', state: 'running', pid: 'number', since: 'string', failures: 0, type: 'solo5', started: 'string', cpuids: [0], cpus: 1,
      memory_mb: 32, startup: null, on_exit: 'quit', blocks: [{ name: 'storage', host_device: 'storage', sector_size: 512, size_mb: 4 }], networks: [],
      arguments: ['--solo5:quiet', '--lines=3', '--sleep'], digest: 'string',
    },
  );
  assert.match(String(u.since), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  r = await L(['info', '--json=wire']);
  const [reply, status] = r.stdout.trim().split('\n');
  const w = JSON.parse(reply) as { payload: { reply: { unikernel_info: { name: string; info: { typ: unknown } }[] } } };
  assert.equal(w.payload.reply.unikernel_info[0].name, ':hello');
  assert.deepEqual(w.payload.reply.unikernel_info[0].info.typ, { solo5: null }, '--json=wire keeps the wire form');
  assert.match(status, /^\{"status":\[\{"name":":hello","state":"running","pid":\d+,/, "--json=wire: vmmd's status follows the reply");

  {
    const c = spawn(process.execPath, [CLIENT, 'console', 'hello', '--count', '10', '--tmpdir', d.tmpdir], { env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    await until('console lines', () => out.includes('line 3'));
    c.kill();
    assert.match(out, /^subscribed\n/);
    assert.match(out, /:hello \d{4}-\d\d-\d\dT\S+ line 1\n/);
  }

  const got = path.join(d.root, 'got.img');
  r = await L(['get', 'hello', '--output', got]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(fs.readFileSync(got), fs.readFileSync(img));
  // without --output: $TMPDIR/<name>.<time>
  r = await L(['get', 'hello', '--compression-level', '9']);
  const file = /^wrote (\S+) \(\d+ bytes\)\n$/.exec(r.stdout)?.[1];
  // no colons in the default name: the label, then the time in ISO 8601 basic format
  assert.ok(file && /^hello\.\d{8}T\d{6}Z$/.test(path.basename(file)) && path.dirname(file) === d.root, r.stdout);
  assert.deepEqual(fs.readFileSync(file), fs.readFileSync(img));

  // vmmd answers upstream's "created unikernel"; the client says what happened
  r = await L(['restart', 'hello']);
  assert.deepEqual([r.code, r.stdout], [0, 'restarted unikernel\n']);
  r = await L(['destroy', 'hello']);
  assert.deepEqual([r.code, r.stdout], [0, 'destroyed unikernel\n']);
  r = await L(['destroy', 'hello']);
  assert.deepEqual([r.code, r.stderr], [117, 'vmmc_local: failure: destroy: not found\n']);
  r = await L(['inactive-consoles']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /:hello/);
});

test('a name that finds nothing while a path of that name does gets a note (-n dept versus -n dept:); invalid names say the rule', async () => {
  const img = path.join(d.root, 'dweb.spt');
  fs.writeFileSync(img, solo5Image());
  let r = await L(['create', 'dept:web', img, '--arg=--solo5:quiet', '--arg=--sleep']);
  assert.equal(r.code, 0, r.stderr);
  try {
    r = await L(['info', '-n', 'dept']);
    assert.deepEqual([r.code, r.stdout], [0, 'no unikernels\n']);
    assert.equal(r.stderr, 'vmmc_local: note: :dept is a name and has no unikernel; the path dept: has 1 unikernel below it: use -n dept:\n');
    r = await L(['info', '-n', 'dept:']);
    assert.match(r.stdout, /\n:web +solo5 /);
    assert.equal(r.stderr, '');
    r = await L(['info', '-n', 'nosuch']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, 'no unikernels\n', ''], 'no note when the path is empty too');
  } finally {
    await L(['destroy', 'dept:web']);
  }
  r = await L(['destroy', 'Foo_bar']);
  assert.equal(r.code, 124);
  assert.equal(r.stderr, 'vmmc_local: NAME "Foo_bar": invalid name: label "Foo_bar" contains "_" (a label is 1 to 63 characters of a-z, A-Z, 0-9, "-" and ".", not starting with "-"; labels are separated by ":") (see vmmc_local --help)\n');
});

test('set-block streams a file (plain and compressed), dump-block gets it back; too much data is refused', async () => {
  const data = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7919) >>> 8;
  const src = path.join(d.root, 'disk.img');
  fs.writeFileSync(src, data);
  for (const level of ['0', '6']) {
    let r = await L(['set-block', 'storage', src, '--compression-level', level]);
    assert.deepEqual([r.code, r.stderr, r.stdout], [0, '', 'set block device\n']);
    const out = path.join(d.root, `dump${level}.img`);
    r = await L(['dump-block', 'storage', '--output', out, '--compression-level', level === '0' ? '3' : '0']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `wrote ${out} (${4 * 1024 * 1024} bytes)\n`);
    const back = fs.readFileSync(out);
    assert.deepEqual(back.subarray(0, data.length), data);
  }
  // without --output: $TMPDIR/<name>.<time>, no colons
  const dumped = await L(['dump-block', 'storage']);
  assert.equal(dumped.code, 0, dumped.stderr);
  const dumpFile = /^wrote (\S+) \(\d+ bytes\)\n$/.exec(dumped.stdout)?.[1];
  assert.ok(dumpFile && /^storage\.\d{8}T\d{6}Z$/.test(path.basename(dumpFile)) && path.dirname(dumpFile) === d.root, dumped.stdout);
  fs.rmSync(dumpFile);
  fs.writeFileSync(src, Buffer.alloc(5 * 1024 * 1024, 1));
  const r = await L(['set-block', 'storage', src]);
  assert.deepEqual([r.code, r.stderr], [123, `vmmc_local: ${src} is ${5 * 1024 * 1024} bytes, larger than the block device :storage of 4 MB (${4 * 1024 * 1024} bytes); nothing was sent\n`]);
  const missing = await L(['set-block', 'storage', path.join(d.root, 'nope.img')]);
  assert.equal(missing.code, 123);
  assert.match(missing.stderr, /^vmmc_local: cannot read \S+nope.img: no such file\n$/);
});

test('inspect-dump and extract-dump read the state file vmmd wrote', async () => {
  const img = path.join(d.root, 'keep.spt');
  fs.writeFileSync(img, solo5Image());
  let r = await L(['create', 'keep', img, '--arg=--solo5:quiet', '--arg=--sleep', '--compression-level', '4']);
  assert.equal(r.code, 0, r.stderr);
  await until('state file', () => fs.existsSync(path.join(d.dbdir, 'state')));
  r = await L(['inspect-dump', '--dbdir', d.dbdir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^parsed 1 unikernels:\n:keep: solo5, \d+ bytes compressed, CPUs 0, 32 MB, args /);
  const out = path.join(d.root, 'keep.img');
  r = await L(['extract-dump', 'keep', '--dbdir', d.dbdir, '--output', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(fs.readFileSync(out), fs.readFileSync(img));
  r = await L(['extract-dump', 'keep', '--dbdir', d.dbdir]);
  const extracted = /^wrote (\S+) \(\d+ bytes\)\n$/.exec(r.stdout)?.[1];
  assert.ok(extracted && /^keep\.\d{8}T\d{6}Z$/.test(path.basename(extracted)), r.stdout);
  r = await L(['extract-dump', 'other', '--dbdir', d.dbdir]);
  assert.equal(r.code, 123, r.stderr);
  assert.match(r.stderr, /no unikernel :other in /);
  r = await L(['inspect-dump', '--file', path.join(d.root, 'nothing')]);
  assert.equal(r.code, 123);
  await L(['destroy', 'keep']);
});

test('--socket - prints the message upstream sends, as a hexdump', async () => {
  const r = await client(['add-policy', 'dept', '3', '--mem=256', '--cpu=0', '--cpu=1', '--bridge=br0', '--size=100', '--socket', '-']);
  assert.equal(r.code, 0);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines[0], 'out:');
  const hex = lines.slice(1).map((l) => l.slice(10, 59).replace(/ /g, '')).join('');
  assert.equal(hex, fs.readFileSync(path.join(FIX, 'vmmd.3.000.req.der')).toString('hex'));
  assert.match(lines[1], /^00000000  30 /);
});

test('connect errors name the socket and the daemon and how to choose the runtime directory; exit 122', async () => {
  const r = await client(['info', '--tmpdir', path.join(d.root, 'nowhere')]);
  assert.equal(r.code, 122);
  assert.equal(r.stderr, `vmmc_local: no socket at ${path.join(d.root, 'nowhere', 'util', 'vmmd.sock')}: is vmmd running? (if the daemons run with another runtime directory: --tmpdir DIR, or ALBATROSS_TMPDIR=DIR)\n`);
  const s = await client(['stats', '--tmpdir', path.join(d.root, 'nowhere')]);
  assert.match(s.stderr, /stat\.sock: is vmmd_stats running\?/);
  const u = await client(['info', '--mem', '3']);
  assert.equal(u.code, 124);
  assert.match(u.stderr, /--mem does not apply to info/);
});

test('ALBATROSS_TMPDIR sets the default runtime directory (--tmpdir still wins); vmmd_stats too', async () => {
  const r = await client(['info'], { ALBATROSS_TMPDIR: d.tmpdir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^(no unikernels|NAME +TYPE)/);
  const w = await client(['info', '--tmpdir', path.join(d.root, 'nowhere')], { ALBATROSS_TMPDIR: d.tmpdir });
  assert.equal(w.code, 122);
  // a daemon: vmmd_stats listens in $ALBATROSS_TMPDIR/util
  const alt = fs.mkdtempSync(path.join(d.root, 'alt-'));
  fs.mkdirSync(path.join(alt, 'util'));
  const st = spawn(process.execPath, [STATS], { stdio: 'ignore', env: { ...process.env, ALBATROSS_TMPDIR: alt } });
  try {
    await until('stat.sock in ALBATROSS_TMPDIR', () => fs.existsSync(path.join(alt, 'util', 'stat.sock')));
  } finally {
    st.kill();
  }
  const h = await client(['--help'], { ALBATROSS_TMPDIR: '/srv/alb' });
  assert.match(h.stdout, /--tmpdir=DIR\n(?: {6}.*\n)*? {6}.*\(default: \/srv\/alb\)/);
});

test('usage errors help: a mistyped subcommand or option gets a suggestion; --arg --x says to write --arg=--x', async () => {
  let r = await client(['ifno']);
  assert.deepEqual([r.code, r.stderr], [124, 'vmmc_local: unknown subcommand "ifno" (did you mean info?) (see vmmc_local --help)\n']);
  r = await client(['create-blok', 'x', '1']);
  assert.match(r.stderr, /unknown subcommand "create-blok" \(did you mean create-block\?\)/);
  r = await client(['frobnicate']);
  assert.match(r.stderr, /unknown subcommand "frobnicate" \(one of info, get, /);
  r = await client(['info', '--nmae', 'x']);
  assert.deepEqual([r.code, r.stderr], [124, 'vmmc_local: unknown option --nmae (did you mean --name?) (see vmmc_local --help)\n']);
  r = await client(['create', 'hello', 'hello.spt', '--arg', '--hello=world']);
  assert.deepEqual([r.code, r.stderr], [124, 'vmmc_local: --arg got no value: --hello=world was read as an option; write --arg=--hello=world to pass a value that starts with "-" (see vmmc_local --help)\n']);
});

/** Runs a streaming subcommand until its output matches, then stops it. */
async function streamUntil(args: string[], re: RegExp): Promise<string> {
  const c = spawn(process.execPath, [CLIENT, ...args, '--tmpdir', d.tmpdir], { env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  c.stdout.on('data', (b: Buffer) => (out += b.toString()));
  try {
    await until(`output matching ${re}`, () => re.test(out), 15_000);
  } finally {
    c.kill();
  }
  return out;
}

test('stats and log against the real vmmd_stats and vmmd_log', async () => {
  const img = path.join(d.root, 'st.spt');
  fs.writeFileSync(img, solo5Image());
  const r = await L(['create', 'st', img, '--arg=--solo5:quiet', '--arg=--sleep']);
  assert.equal(r.code, 0, r.stderr);
  const stats = await streamUntil(['stats', '-n', 'st'], /:st utime \d+\.\d{6}s stime/);
  assert.match(stats, /^subscribed\n/);
  const log = await streamUntil(['log', '--count', '100'], /start :st pid \d+/);
  assert.match(log, /^\d{4}-\d\d-\d\dT\S+ startup\n/m);
  await L(['destroy', 'st']);
  // destroy's SIGTERM is -11 on the wire (OCaml's number) and shown by its name
  const stop = await streamUntil(['log', '-n', 'st', '--count', '5'], /stop :st pid \d+ SIGTERM\n/);
  assert.doesNotMatch(stop, /startup/, 'log -n st shows only the events of st');
});

test('console shows backslashes as the unikernel printed them (the Solo5 banner), not doubled', async () => {
  const img = path.join(d.root, 'banner.spt');
  fs.writeFileSync(img, solo5Image());
  const r = await L(['create', 'banner', img, '--arg=--sleep']);
  assert.equal(r.code, 0, r.stderr);
  try {
    const c = spawn(process.execPath, [CLIENT, 'console', 'banner', '--tmpdir', d.tmpdir], { env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    await until('the banner', () => out.includes('Bindings version'));
    c.kill();
    assert.match(out, /^:banner \S+ \\__ \\ \(   \| \| \(   \|  \) \|$/m);
    assert.match(out, /^:banner \S+ ____\/\\___\/ _\|\\___\/____\/$/m);
  } finally {
    await L(['destroy', 'banner']);
  }
});

test('a reader that closes the pipe early (`vmmc_local info | head`) ends the output quietly: exit 0, nothing on stderr', async () => {
  // about 200 KB of info (boot arguments): more than a pipe holds, so the writer meets the closed pipe
  const img = path.join(d.root, 'big.spt');
  fs.writeFileSync(img, solo5Image());
  const big = Array.from({ length: 10 }, (_, i) => `--arg=--x${i}=${'a'.repeat(20_000)}`);
  const r = await L(['create', 'big', img, '--arg=--solo5:quiet', '--arg=--sleep', ...big]);
  assert.equal(r.code, 0, r.stderr);
  try {
    // a real shell pipe (64 KiB), as the operator types it; the client's stderr and exit code are kept
    const script = 'node "$1" info --tmpdir "$2" 2>"$3" | head -c 100 >/dev/null; echo "${PIPESTATUS[0]}"';
    const errFile = path.join(d.root, 'epipe.err');
    const code = await new Promise<string>((resolve) => {
      execFile('bash', ['-c', script, 'sh', CLIENT, d.tmpdir, errFile], { env: { ...process.env, NO_COLOR: '1', PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}` } }, (_e, stdout) => resolve(stdout.trim()));
    });
    assert.equal(fs.readFileSync(errFile, 'utf8'), '');
    assert.equal(code, '0');
  } finally {
    await L(['destroy', 'big']);
  }
});

// ------------------------------------------------------------------ peers

/** A daemon stand-in on a Unix socket: `serve` gets each connection. */
async function peer(sock: string, serve: (c: FramedConn, s: net.Socket) => Promise<void>): Promise<net.Server> {
  fs.mkdirSync(path.dirname(sock), { recursive: true });
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    void serve(new FramedConn(s), s);
  });
  await new Promise<void>((r) => srv.listen(sock, r));
  return srv;
}
const close = (s: net.Server): Promise<void> => new Promise((r) => s.close(() => r()));

const tv = { seconds: 1n, microseconds: 500 };
const stats: StatsData = {
  resourceUsage: {
    utime: tv, stime: tv, maxrss: 2048n, ixrss: 0n, idrss: 0n, isrss: 0n, minflt: 1n, majflt: 0n, nswap: 0n, inblock: 0n,
    outblock: 0n, msgsnd: 0n, msgrcv: 0n, nsignals: 0n, nvcsw: 3n, nivcsw: 4n,
  },
  ifdata: [],
  kinfoMem: { vsize: 123456789n, rss: 2048n, tsize: 1n, dsize: 2n, ssize: 2n, runtime: 1n, cow: 0, start: { seconds: 1n, microseconds: 0 } },
};

test('stats streams every data message until the daemon closes; memory is labelled in pages (not KB) and bytes', async () => {
  const dir = fs.mkdtempSync(path.join(d.root, 'peer-'));
  let seen: Wire | undefined;
  const srv = await peer(path.join(dir, 'util', 'stat.sock'), async (c) => {
    const m = await c.readMessage();
    if (m.kind !== 'message') return;
    seen = m.wire;
    const h = m.wire.header;
    await c.writeMessage({ header: h, payload: { kind: 'reply', value: { kind: 'string', value: 'subscribed' } } });
    for (let i = 0; i < 2; i++) await c.writeMessage({ header: makeHeader(nm('a:web')), payload: { kind: 'data', value: { kind: 'statistics', value: stats } } });
    c.close();
  });
  const r = await client(['stats', '-n', 'a:', '--tmpdir', dir]);
  await close(srv);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(seen && encodeWire(seen), encodeWire(command(nm('a:'), { kind: 'stats', value: { kind: 'subscribe', value: null } })));
  assert.equal(r.stdout, 'subscribed\n' + 'a:web utime 1.000500s stime 1.000500s maxrss 2048 pages\n  memory rss 2048 pages vsize 123456789 bytes\n'.repeat(2));
});

test('log subscribes at log.sock and prints the events; signals (OCaml numbers on the wire) by name', async () => {
  const dir = fs.mkdtempSync(path.join(d.root, 'peer-'));
  let got: unknown;
  const srv = await peer(path.join(dir, 'util', 'log.sock'), async (c) => {
    const f = await c.read();
    if (f.kind !== 'frame') return;
    const m = unwrap(decodeLogWire(f.body));
    got = m.payload;
    await c.write(encodeLogWire(logMessage.replyEmpty(m.header)));
    const t = Date.UTC(2024, 0, 31, 12);
    await c.write(encodeLogWire(logMessage.data(makeHeader(nm('web')), t, { kind: 'unikernel_stop', value: { name: nm('web'), pid: 42, status: { kind: 'exit', value: 3 } } })));
    for (const status of [{ kind: 'signal' as const, value: -11 }, { kind: 'signal' as const, value: -7 }, { kind: 'stopped' as const, value: -16 }, { kind: 'signal' as const, value: 40 }]) {
      await c.write(encodeLogWire(logMessage.data(makeHeader(nm('web')), t, { kind: 'unikernel_stop', value: { name: nm('web'), pid: 42, status } })));
    }
    await c.write(encodeLogWire(logMessage.data(makeHeader(nm(':')), t, { kind: 'startup', value: null })));
    c.close();
  });
  const r = await client(['log', '--since', '2024-01-31', '--tmpdir', dir]);
  await close(srv);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(got, { kind: 'command', value: { kind: 'subscribe', value: { kind: 'since', value: Date.UTC(2024, 0, 31) } } });
  assert.equal(r.stdout, [
    'stop :web pid 42 exit 3', 'stop :web pid 42 SIGTERM', 'stop :web pid 42 SIGKILL', 'stop :web pid 42 stopped SIGSTOP',
    'stop :web pid 42 signal 40', 'startup',
  ].map((l) => `2024-01-31T12:00:00Z ${l}\n`).join(''));
});

test('a malformed answer or a connection closed mid-frame is a communication failure (121), one line', async () => {
  const dir = fs.mkdtempSync(path.join(d.root, 'peer-'));
  let mode = 0;
  const srv = await peer(path.join(dir, 'util', 'vmmd.sock'), async (c, s) => {
    await c.readMessage();
    if (mode === 0) await c.write(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x05]));
    else s.write(Buffer.from([0, 0, 0, 10, 0x30]));
    s.end();
  });
  const r1 = await client(['info', '--tmpdir', dir]);
  mode = 1;
  const r2 = await client(['info', '--tmpdir', dir]);
  await close(srv);
  for (const r of [r1, r2]) {
    assert.equal(r.code, 121, r.stderr);
    assert.match(r.stderr, /^vmmc_local: communication failure: .+\n$/);
    assert.doesNotMatch(r.stderr, /    at /);
  }
});

test('a daemon that closes after reading the command, without an answer, is a communication failure (121), not success', async () => {
  const dir = fs.mkdtempSync(path.join(d.root, 'peer-'));
  fs.writeFileSync(path.join(dir, 'hello.spt'), solo5Image({}));
  const handler = async (c: FramedConn, s: net.Socket): Promise<void> => {
    await c.read();
    s.end();
  };
  const vmmdSock = await peer(path.join(dir, 'util', 'vmmd.sock'), handler);
  const logSock = await peer(path.join(dir, 'util', 'log.sock'), handler);
  const runs = [
    await client(['create', 'hello', path.join(dir, 'hello.spt'), '--tmpdir', dir]),
    await client(['destroy', 'hello', '--tmpdir', dir]),
    await client(['info', '--tmpdir', dir]),
    await client(['log', '--tmpdir', dir]),
  ];
  await close(vmmdSock);
  await close(logSock);
  for (const r of runs) {
    assert.deepEqual([r.code, r.stdout, r.stderr], [121, '', 'vmmc_local: communication failure: the daemon closed the connection without an answer\n']);
  }
});

test('a daemon that answers a block upload early does not make the client die of EPIPE', async () => {
  const dir = fs.mkdtempSync(path.join(d.root, 'peer-'));
  const src = path.join(dir, 'big.img');
  fs.writeFileSync(src, Buffer.alloc(8 * 1024 * 1024, 7));
  const srv = await peer(path.join(dir, 'util', 'vmmd.sock'), async (c, s) => {
    const m = await c.readMessage();
    if (m.kind !== 'message') return;
    const p = m.wire.payload;
    if (p.kind === 'command' && p.value.kind === 'block' && p.value.value.kind === 'info') {
      // the client asks for the device's size first: there is none
      await c.writeMessage({ header: m.wire.header, payload: { kind: 'reply', value: { kind: 'block_devices', value: [] } } });
      s.end();
      return;
    }
    await c.read();
    await c.writeMessage({ header: m.wire.header, payload: { kind: 'failure', value: 'set block: not found' } });
    s.destroy();
  });
  const r = await client(['set-block', 'nope', src, '--tmpdir', dir]);
  await close(srv);
  assert.equal(r.code, 117, r.stderr);
  assert.equal(r.stderr, 'vmmc_local: failure: set block: not found\n');
});

test('recorded upstream replies are shown (a failure, the policy table)', async () => {
  const dir = fs.mkdtempSync(path.join(d.root, 'peer-'));
  let rep = '';
  const srv = await peer(path.join(dir, 'util', 'vmmd.sock'), async (c) => {
    await c.readMessage();
    await c.write(new Uint8Array(fs.readFileSync(path.join(FIX, rep))));
    c.close();
  });
  // a failure and a table through the process; every reply is described in client-output.test.ts
  const files = ['vmmd.12.000.rep.der', 'vmmd.4.000.rep.der'];
  let failures = 0;
  for (const f of files) {
    rep = f;
    const w = unwrap(decodeWire(new Uint8Array(fs.readFileSync(path.join(FIX, f)))));
    const r = await client(['info', '--tmpdir', dir]);
    if (w.payload.kind === 'failure') {
      failures++;
      assert.equal(r.code, 117);
      assert.equal(r.stderr, `vmmc_local: failure: ${w.payload.value}\n`);
    } else {
      assert.equal(r.code, 0, `${f}: ${r.stderr}`);
      assert.notEqual(r.stdout, '');
    }
  }
  await close(srv);
  assert.ok(failures > 0);
});
