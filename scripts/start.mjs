// `npm start`: runs the daemons from this checkout on a run directory under ./run
// (`npm start -- --run DIR` for another), in upstream's start order, each started once the
// previous one listens on its socket, then the web console vmmd_web on loopback (ready once
// it prints its URL; VMMD_WEB_PORT, default 8080). Their output is shown line by line, prefixed with the
// daemon's name. Ctrl-C, SIGTERM or SIGHUP stops them all (in reverse order), and so does
// the end of whoever started us: npm passes SIGTERM on to its shell only, so when npm is
// killed this script finds its parent (or npm above the shell) gone, or its standard input
// (a pipe) closed. Daemons still running when this script exits anyhow get SIGKILL.
// A daemon that exits on its own stops the rest, and this script then exits non-zero
// saying which daemon it was and how it ended.
import { spawn } from 'node:child_process';
import { chmodSync, fstatSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rel = (p) => relative(process.cwd(), p) || '.';

function runDirectory(argv) {
  if (argv.length === 0) return join(root, 'run');
  if (argv.length === 2 && argv[0] === '--run') return resolve(argv[1]);
  process.stderr.write('usage: node scripts/start.mjs [--run DIR]   (npm start -- --run DIR)\n');
  process.exit(124);
}
const run = runDirectory(process.argv.slice(2));
const tmpdir = join(run, 'tmp');
const util = join(tmpdir, 'util');
const fifo = join(tmpdir, 'fifo');
const dbdir = join(run, 'db');
const logdir = join(run, 'log');
const webState = join(run, 'web.json');
/** Port of vmmd_web's web console (VMMD_WEB_PORT, default 8080). */
const webPort = process.env.VMMD_WEB_PORT ?? '8080';

// Upstream order: the console first (vmmd refuses to start without it), then the log,
// vmmd itself, and the statistics daemon, which connects to vmmd.
const daemons = [
  { name: 'vmmd_console', socket: join(util, 'console.sock'), args: ['--tmpdir', tmpdir] },
  { name: 'vmmd_log', socket: join(util, 'log.sock'), args: ['--tmpdir', tmpdir, '--logfile', join(logdir, 'albatross')] },
  { name: 'vmmd', socket: join(util, 'vmmd.sock'), args: ['--tmpdir', tmpdir, '--dbdir', dbdir] },
  { name: 'vmmd_stats', socket: join(util, 'stat.sock'), args: ['--tmpdir', tmpdir] },
  // the web console on loopback; ready once it prints its URL (and, at the first start, the
  // administrator's generated password: printed, though its standard output is our pipe)
  { name: 'vmmd_web', readyLine: /url: (\S+)/, args: ['--http', `127.0.0.1:${webPort}`, '--tmpdir', tmpdir, '--state', webState, '--print-admin-password'] },
];

/** How long a daemon may take to create its socket. */
const readyTimeoutMs = 10_000;
/** How long a daemon may take to exit after SIGTERM before it gets SIGKILL. */
const stopTimeoutMs = 5_000;

const say = (line) => process.stderr.write(`start: ${line}\n`);

function makeDirectories() {
  // Modes as the packaging creates them (SEMANTICS §1.1): FIFOs are created by vmmd and read
  // by the console daemon, so the fifo directory is setgid and group-writable.
  for (const [dir, mode] of [[run, 0o755], [tmpdir, 0o755], [util, 0o770], [fifo, 0o2770], [dbdir, 0o700], [logdir, 0o750]]) {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, mode);
  }
}

const width = Math.max(...daemons.map((d) => d.name.length));

/** Copies a child's stream to ours, one line at a time, each prefixed with the daemon's name. */
function relayLines(stream, out, name, onLine = () => {}) {
  const prefix = `${name.padEnd(width)} | `;
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
    out.write(`${prefix}${line}\n`);
    onLine(line);
  });
}

/** One running daemon: its process, and a promise settled with how it ended. */
function startDaemon(d) {
  const child = spawn(process.execPath, [join(root, 'bin', d.name), ...d.args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r = { ...d, child, stopping: false, readyMatch: undefined };
  relayLines(child.stdout, process.stdout, d.name, (line) => {
    const m = d.readyLine?.exec(line);
    if (m) r.readyMatch ??= m;
  });
  relayLines(child.stderr, process.stderr, d.name);
  // 'close' rather than 'exit': every line the daemon wrote has been relayed by then.
  const ended = new Promise((resolve) => {
    child.on('error', (error) => resolve({ error }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  r.ended = ended;
  return r;
}

const describeEnd = ({ error, code, signal }) =>
  error ? `could not be started (${error.message})` : signal ? `was killed by signal ${signal}` : `exited with status ${code}`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Identifies one socket file, or undefined if there is none. Inode numbers are reused at once
 * when a daemon unlinks a stale socket and binds a new one, so the change time is part of it.
 */
const socketFileId = (path) => {
  const st = statSync(path, { bigint: true, throwIfNoEntry: false });
  return st === undefined ? undefined : `${st.ino}@${st.ctimeNs}`;
};

/**
 * Resolves 'ready' once the daemon has created its socket (a new file: a stale one left by
 * an earlier run does not count), 'ended' if the daemon ends first, 'timeout' otherwise.
 */
async function waitReady(r, staleFile) {
  let ended = false;
  r.ended.then(() => { ended = true; });
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (ended) return 'ended';
    if (r.readyLine !== undefined) {
      if (r.readyMatch !== undefined) return 'ready';
    } else {
      const file = socketFileId(r.socket);
      if (file !== undefined && file !== staleFile) return 'ready';
    }
    if (Date.now() > deadline) return 'timeout';
    await sleep(50);
  }
}

const running = [];

async function stopAll() {
  for (const r of [...running].reverse()) {
    r.stopping = true;
    if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM');
    const timer = setTimeout(() => r.child.kill('SIGKILL'), stopTimeoutMs);
    await r.ended;
    clearTimeout(timer);
  }
}

let shuttingDown = false;
async function shutdown(reason, status) {
  if (shuttingDown) return;
  shuttingDown = true;
  say(reason);
  await stopAll();
  process.exit(status);
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => void shutdown(`${signal}: stopping the daemons`, 0));
}
// Whoever reads our output may be gone already: that must not keep us from stopping the daemons.
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);
// However this script ends (an exception, process.exit), no daemon outlives it.
process.on('exit', () => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
});

/** The parent pid of a process, from /proc (Linux); undefined where there is none. */
function parentOf(pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]);
  } catch {
    return undefined;
  }
}
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};
/**
 * Who must stay alive for us to go on: our parent, and when npm started us through a shell
 * (npm run-script spawns `sh -c`), npm above it too, since npm passes SIGTERM to the shell
 * only and a killed npm may leave the shell behind.
 */
const parent = process.ppid;
const watched = [parent];
if (process.env.npm_lifecycle_event !== undefined) {
  const grand = parentOf(parent);
  if (grand !== undefined && grand > 1) watched.push(grand);
}
setInterval(() => {
  if (process.ppid !== parent) void shutdown(`parent process ${parent} is gone: stopping the daemons`, 1);
  for (const pid of watched) if (!alive(pid)) void shutdown(`process ${pid} that started us is gone: stopping the daemons`, 1);
}, 500).unref();
// Standard input that is a pipe or a socket ends when whoever holds its other end goes away
// (a terminal or /dev/null is left alone: reading a terminal would stop a background job).
try {
  const st = fstatSync(0);
  if (st.isFIFO() || st.isSocket()) {
    process.stdin.on('end', () => void shutdown('standard input closed: stopping the daemons', 1));
    process.stdin.on('error', () => undefined);
    process.stdin.resume();
  }
} catch {
  // no standard input at all
}

makeDirectories();
say(`run directory ${rel(run)}: --tmpdir ${rel(tmpdir)} --dbdir ${rel(dbdir)}`);

for (const d of daemons) {
  const staleFile = d.socket === undefined ? undefined : socketFileId(d.socket);
  const r = startDaemon(d);
  running.push(r);
  const state = await waitReady(r, staleFile);
  if (shuttingDown) break;
  if (state === 'ended') {
    await shutdown(`${r.name} ${describeEnd(await r.ended)} before it listened on ${r.socket ? rel(r.socket) : 'its port'}; not starting the rest`, 1);
  } else if (state === 'timeout') {
    await shutdown(`${r.name} did not ${r.socket ? `create ${rel(r.socket)}` : 'print its URL'} within ${readyTimeoutMs / 1000} s; stopping`, 1);
  }
  // From now on a daemon ending by itself stops everything: a partial set is not a working system.
  r.ended.then((how) => {
    if (!r.stopping) void shutdown(`${r.name} ${describeEnd(how)}; stopping the other daemons`, 1);
  });
}

if (!shuttingDown) {
  say('all daemons are running; their sockets:');
  for (const r of running) if (r.socket) say(`  ${r.name.padEnd(width)} ${rel(r.socket)} (pid ${r.child.pid})`);
  say(`try: bin/vmmc_local --tmpdir ${rel(tmpdir)} info`);
  const web = running.find((r) => r.name === 'vmmd_web');
  say(`web console and REST API: ${web.readyMatch[1]} (user admin; its password is printed above at the first start,`);
  say(`  only its hash is kept in ${rel(webState)}; delete that file to get a new one)`);
  say('Ctrl-C stops them.');
}
