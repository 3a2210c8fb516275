/**
 * What vmmd asks of the host: commands run without a shell, tender lookup, tap devices and
 * bridges, FIFOs, the discovered root policy, and the atomic state file.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Result, ok, err } from '../core/result.js';
import type { Policy } from '../core/wire/common.js';
import { MAX_UNIKERNELS } from '../core/policy.js';
import { type Platform, chooseTapName, parseBridgeList } from '../core/unikernel.js';
import { type TenderCandidate, type Solo5Abi, candidateText, checkTenderVersionOutput, tenderCandidates, tenderNotFound } from '../core/solo5.js';

export interface RunResult { code: number | null; stdout: string; stderr: string; error?: string }

/** Runs a program (no shell) and collects its output; never rejects. */
export function run(file: string, args: readonly string[], timeoutMs = 10_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, [...args], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (e, stdout, stderr) => {
      const code = e === null ? 0 : typeof (e as { code?: unknown }).code === 'number' ? ((e as { code: number }).code) : null;
      resolve({ code, stdout: String(stdout), stderr: String(stderr), error: e === null ? undefined : e.message });
    });
  });
}

const firstLine = (r: RunResult): string => (r.stderr.trim() || r.stdout.trim() || r.error || 'failed').split('\n')[0];

function isExecutableFile(p: string): boolean {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) return false;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `command -v`: the first executable `name` in $PATH. */
export function whichInPath(name: string, envPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of envPath.split(':')) {
    if (dir === '') continue;
    const p = path.join(dir, name);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}

/** Tender selection (SEMANTICS.md §6.2) and its `--version` check. */
export async function findTender(base: string, abi: Solo5Abi, dbdir: string): Promise<Result<string>> {
  const candidates: TenderCandidate[] = tenderCandidates(base, abi, dbdir);
  let found: string | undefined;
  for (const c of candidates) {
    found = c.kind === 'file' ? (isExecutableFile(c.path) ? c.path : undefined) : whichInPath(c.command);
    if (found !== undefined) break;
  }
  if (found === undefined) return err(tenderNotFound(candidates));
  // the --version check is repeated only when the tender file changed
  let id: string | undefined;
  try {
    const st = fs.statSync(found);
    id = `${found}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}\0${abi.version}`;
  } catch {
    id = undefined;
  }
  // the path checked before is returned itself: every running unikernel's argv shares it
  const known = id === undefined ? undefined : checkedTenders.get(id);
  if (known !== undefined) return ok(known);
  const v = await run(found, ['--version']);
  const out = v.stdout + v.stderr;
  const check = checkTenderVersionOutput(out, abi);
  if (!check.ok) return err(check.error);
  if (id !== undefined) checkedTenders.set(id, found);
  return ok(found);
}

/** Tender files whose --version passed, by file identity: the path string. */
const checkedTenders = new Map<string, string>();
export { candidateText };

// ------------------------------------------------------------------ taps and bridges

export async function bridgeExists(platform: Platform, bridge: string): Promise<boolean> {
  const r = platform === 'linux' ? await run('ip', ['link', 'show', bridge]) : await run('ifconfig', [bridge]);
  return r.code === 0;
}

/** Creates a tap device attached to `bridge` (SEMANTICS.md §6.5); `taken` are names being created now. */
export async function createTap(platform: Platform, bridge: string, taken: readonly string[]): Promise<Result<string>> {
  if (platform === 'freebsd') {
    const c = await run('ifconfig', ['tap', 'create']);
    if (c.code !== 0) return err(`ifconfig tap create: ${firstLine(c)}`);
    const tap = c.stdout.trim();
    const a = await run('ifconfig', [bridge, 'addm', tap]);
    if (a.code !== 0) {
      await run('ifconfig', [tap, 'destroy']);
      return err(`ifconfig ${bridge} addm ${tap}: ${firstLine(a)}`);
    }
    return ok(tap);
  }
  const show = await run('ip', ['tuntap', 'show']);
  if (show.code !== 0) return err(`ip tuntap show: ${firstLine(show)}`);
  const tap = chooseTapName(show.stdout, taken);
  const steps: string[][] = [
    ['tuntap', 'add', tap, 'mode', 'tap'],
    ['link', 'set', 'dev', tap, 'up'],
    ['link', 'set', 'dev', tap, 'master', bridge],
  ];
  for (const [i, s] of steps.entries()) {
    const r = await run('ip', s);
    if (r.code !== 0) {
      if (i > 0) await destroyTap(platform, tap);
      return err(`ip ${s.join(' ')}: ${firstLine(r)}`);
    }
  }
  return ok(tap);
}

export async function destroyTap(platform: Platform, tap: string): Promise<Result<void>> {
  const r = platform === 'linux' ? await run('ip', ['tuntap', 'del', 'dev', tap, 'mode', 'tap']) : await run('ifconfig', [tap, 'destroy']);
  return r.code === 0 ? ok(undefined) : err(`destroying tap ${tap}: ${firstLine(r)}`);
}

// ------------------------------------------------------------------ FIFO

/** Creates the console FIFO (mode 0640) unless a FIFO is already there. */
export async function ensureFifo(p: string): Promise<Result<void>> {
  try {
    const st = fs.lstatSync(p);
    return st.isFIFO() ? ok(undefined) : err(`file ${p} exists and is not a fifo`);
  } catch {
    /* absent */
  }
  fs.mkdirSync(path.dirname(p), { recursive: true });
  const r = await run('mkfifo', ['-m', '0640', p]);
  return r.code === 0 ? ok(undefined) : err(`mkfifo ${p}: ${firstLine(r)}`);
}

/**
 * Creates the FIFOs of many unikernels at once (start-up relaunches), one `mkfifo` per 500
 * paths: each process vmmd starts and reaps costs it a wait call per running child, which adds
 * up to seconds with thousands of unikernels relaunched one by one. Existing paths are left
 * alone and errors to ensureFifo, which every create still runs.
 */
export async function ensureFifos(paths: readonly string[]): Promise<void> {
  const missing = paths.filter((p) => {
    try {
      fs.lstatSync(p);
      return false;
    } catch {
      return true;
    }
  });
  for (const d of new Set(missing.map((p) => path.dirname(p)))) fs.mkdirSync(d, { recursive: true });
  for (let i = 0; i < missing.length; i += 500) await run('mkfifo', ['-m', '0640', ...missing.slice(i, i + 500)]);
}

/**
 * Opens the FIFO for the tender's stdio. The console daemon already holds the read side, so
 * a non-blocking probe succeeds; without a reader it fails at once (ENXIO) instead of hanging.
 */
export async function openFifoForWriting(p: string): Promise<Result<number>> {
  let probe: number;
  try {
    probe = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    return err(`opening ${p}: ${(e as Error).message}`);
  }
  // the probe stays open until the blocking open is done: closing it first would hand the
  // reader an end of file
  return new Promise((resolve) => {
    fs.open(p, fs.constants.O_WRONLY | fs.constants.O_APPEND, (e, fd) => {
      fs.closeSync(probe);
      resolve(e ? err(`opening ${p}: ${e.message}`) : ok(fd));
    });
  });
}

// ------------------------------------------------------------------ root policy

/** The host's resources as the root policy (SEMANTICS.md §3.3). */
export async function discoverRootPolicy(platform: Platform, blockDir: string): Promise<Policy> {
  let block = 0;
  try {
    const st = fs.statfsSync(blockDir);
    block = Math.floor((st.blocks * st.bsize) / (1024 * 1024));
  } catch {
    /* no file system figure: no block storage */
  }
  let bridges: string[] = [];
  if (platform === 'linux') {
    const r = await run('ip', ['-o', 'link', 'show', 'type', 'bridge']);
    if (r.code === 0) bridges = parseBridgeList(r.stdout);
  } else {
    const r = await run('ifconfig', ['-g', 'bridge']);
    if (r.code === 0) bridges = r.stdout.split(/\s+/).filter((b) => b !== '');
  }
  return {
    unikernels: MAX_UNIKERNELS,
    cpuids: Array.from({ length: os.availableParallelism() }, (_, i) => i),
    memory: Math.floor(os.totalmem() / (1024 * 1024)),
    block,
    bridges,
  };
}

// ------------------------------------------------------------------ crash-only files

export { writeFileAtomic } from '../io/files.js';

/**
 * Start time of a process (clock ticks since boot, /proc/<pid>/stat field 22), if it exists
 * and is not a zombie (a reparented tender that exited may wait for a reaper that never comes).
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

/** A process running an image of vmmd's tmpdir, found by its command line. */
export interface TenderProcess {
  readonly pid: number;
  /** processStartTime when found: the same process while it matches. */
  readonly startTime: string;
  /** `<tmpdir>/<name>.img`, as on the command line. */
  readonly image: string;
}

/**
 * Every process whose command line runs an image in `imageDir` (`... -- <imageDir>/<name>.img`,
 * tenderArgv): a tender, or the pinning command (taskset, cpuset) before it execs the tender.
 * No record is needed to find one, so a tender started just before vmmd was killed is found
 * as well as one started long ago. A process inside execve shows an empty command line for an
 * instant (the new program's arguments are not yet in place): such processes are read again
 * until they show one (at most `retries` times, 5 ms apart). Zombies, kernel threads and this
 * process are not listed. Reads /proc (Linux); without it the list is empty.
 */
export async function tenderProcesses(imageDir: string, retries = 200): Promise<TenderProcess[]> {
  const dir = path.resolve(imageDir);
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const out: TenderProcess[] = [];
  let blank: number[] = [];
  const look = (pid: number): void => {
    const argv = processCmdline(pid);
    if (argv === undefined) return;
    if (argv.length === 0) {
      if (isUserProcess(pid)) blank.push(pid);
      return;
    }
    const i = argv.indexOf('--');
    const image = i < 0 ? undefined : argv[i + 1];
    if (image === undefined || !image.endsWith('.img') || path.dirname(path.resolve(image)) !== dir) return;
    const startTime = processStartTime(pid);
    if (startTime !== undefined) out.push({ pid, startTime, image });
  };
  for (const e of entries) {
    const c0 = e.charCodeAt(0);
    if (c0 < 48 || c0 > 57) continue;
    const pid = Number(e);
    if (Number.isInteger(pid) && pid !== process.pid) look(pid);
  }
  for (let k = 0; k < retries && blank.length > 0; k++) {
    await new Promise((r) => setTimeout(r, 5));
    const again = blank;
    blank = [];
    for (const pid of again) look(pid);
  }
  return out;
}

/** Neither a zombie nor a kernel thread (PF_KTHREAD in /proc/<pid>/stat's flags): a process that has a command line. */
function isUserProcess(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] !== 'Z' && fields[0] !== 'X' && (Number(fields[6]) & 0x00200000) === 0;
  } catch {
    return false;
  }
}

export function processCmdline(pid: number): string[] | undefined {
  try {
    const c = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return c.split('\0').filter((x, i, a) => i < a.length - 1 || x !== '');
  } catch {
    return undefined;
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
