/**
 * vmmc_local: the operator's client on the host. Sends one subcommand to the daemon that
 * handles it over its Unix socket and prints the answers (SEMANTICS.md §11.2, §11.3).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Writable } from 'node:stream';
import { type CliSpec, EXIT, JSON_OPTION, jsonMode, UsageError, defaultTmpdir, die, parseCli, runMain, useColour } from './common.js';
import { COMMAND_OPTIONS, SUBCOMMANDS, subcommandSpecs, type Request, type Step, buildRequest, fixAddName } from '../client/commands.js';
import { type SessionOptions, CODE, NO_CONSOLE_EXIT, NO_FOLLOW_QUIET_MS, checkReadable, runStep } from '../client/session.js';
import { type InfoStatus, type Style, describeLogMessage, docText, logDoc, downloadFileName, hexdump, logMessageJson } from '../client/output.js';
import { decodeStatusWire, encodeStatusWire } from '../core/wire/status.js';
import { connectUnix } from '../transport/conn.js';
import { type Command, command, commandEndpoint, encodeWire, makeHeader } from '../core/wire/wire.js';
import { decodeLogWire, encodeLogWire, logMessage } from '../core/wire/log.js';
import { decodeState } from '../core/wire/state.js';
import { type Name, nameEqual, nameToString } from '../core/name.js';
import { stateToJson } from '../inspect/inspect.js';
import { configTmpdir } from './remotes.js';
import { formatPolicy } from '../core/policy.js';

const BINARY = 'vmmc_local';
const DEFAULT_DBDIR = process.platform === 'freebsd' ? '/var/db/albatross' : '/var/lib/albatross';
const SOCKET = { vmmd: 'vmmd.sock', console: 'console.sock', stats: 'stat.sock', log: 'log.sock' } as const;

const spec: CliSpec = {
  binary: BINARY,
  synopsis: [`${BINARY} SUBCOMMAND ARGS... [--tmpdir DIR | --socket PATH] [--json] [OPTIONS]`],
  description: [
    'Sends SUBCOMMAND to the daemon that handles it, over its socket in DIR/util (vmmd.sock,',
    'console.sock, stat.sock, log.sock), and prints the answers: tables for info, policy and',
    'block, console lines with non-printable characters escaped; with --json one JSON document',
    'per command (per line for console, stats, log), --json=wire the wire form. console, stats',
    'and log print until the connection ends (--no-follow: what is there). get and dump-block',
    'write to $TMPDIR/<name>.<time>, e.g. dept_web.20240131T120000Z (or --output).',
    '--socket - prints the encoded message instead.',
  ].join('\n'),
  subcommands: subcommandSpecs(Object.keys(SUBCOMMANDS), 'local', {
    get: ['output'], 'dump-block': ['output'], 'extract-dump': ['output', 'dbdir'], 'inspect-dump': ['dbdir'],
  }),
  common: ['tmpdir', 'socket', 'json', 'color'],
  options: [
    { name: 'tmpdir', type: 'string', arg: 'DIR', default: defaultTmpdir(), help: 'runtime directory of the daemons (sockets in DIR/util); ALBATROSS_TMPDIR sets the default, else tmpdir of the config file (README: Named remotes).' },
    { name: 'socket', type: 'string', arg: 'PATH', help: 'socket to connect to instead of the daemon\'s; "-" prints the message.' },
    JSON_OPTION,
    { name: 'output', alias: 'o', type: 'string', arg: 'FILE', help: 'get, dump-block, extract-dump: write the data to FILE.' },
    { name: 'dbdir', type: 'string', arg: 'DIR', default: DEFAULT_DBDIR, help: 'inspect-dump, extract-dump: directory of the state file.' },
    { name: 'color', type: 'string', choices: ['auto', 'always', 'never'], arg: 'WHEN', default: 'auto', help: 'auto, always or never.' },
    ...COMMAND_OPTIONS,
  ],
  examples: [
    `${BINARY} info`,
    `${BINARY} create hello hello.hvt --net service:br0 --mem 64 --arg=--hello=world`,
    `${BINARY} console hello --since 2024-01-31`,
    `${BINARY} add-policy dept 3 --mem 256 --cpu 0 --cpu 1 --bridge br0 --size 100`,
    `${BINARY} set-block storage disk.img --compression-level 6`,
    `${BINARY} info --socket -`,
  ],
  more: [
    'EXIT STATUS',
    '  0 success; 117 the daemon answered with a failure; 121 communication failure',
    '  (also: the daemon closed the connection without an answer); 122 cannot connect',
    '  (the message names the socket); 123 other errors; 124 command line error;',
    '  125 internal error.',
    '',
  ].join('\n'),
};

function stateFile(o: Record<string, unknown>, file: string | undefined): string {
  const f = file ?? 'state';
  return f.includes('/') ? f : path.join(String(o.dbdir), f);
}

function readState(o: Record<string, unknown>, file: string | undefined) {
  const f = stateFile(o, file);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(fs.readFileSync(f));
  } catch (e) {
    const c = (e as NodeJS.ErrnoException).code;
    return die(BINARY, EXIT.other, `cannot read the state file ${f}: ${c === 'ENOENT' ? 'dump file not found' : (e as Error).message}`);
  }
  return { file: f, bytes };
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const o = fixAddName(parseCli(spec, argv), argv);
  const [sub, ...args] = (o as { _: string[] })._;
  if (sub === undefined) throw new UsageError('missing SUBCOMMAND');
  // the config file's tmpdir, when neither --tmpdir nor ALBATROSS_TMPDIR chose one
  if (!process.env.ALBATROSS_TMPDIR && !argv.some((a) => a === '--tmpdir' || a.startsWith('--tmpdir='))) {
    const t = configTmpdir(BINARY);
    if (t !== undefined) o.tmpdir = t;
  }
  const colourOpt = String(o.color);
  if (!['auto', 'always', 'never'].includes(colourOpt)) throw new UsageError('--color: expected auto, always or never');
  const style: Style = { colour: colourOpt === 'always' || (colourOpt === 'auto' && useColour(process.stdout)) };
  const json = jsonMode(o) !== 'none';
  const jsonWire = jsonMode(o) === 'wire';

  let image: Uint8Array | undefined;
  if (sub === 'create' && args.length >= 2) {
    try {
      image = new Uint8Array(fs.readFileSync(args[1]));
    } catch (e) {
      const c = (e as NodeJS.ErrnoException).code;
      die(BINARY, EXIT.other, `cannot read image ${args[1]}: ${c === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
  }
  const built = buildRequest({ sub, args, opts: o, dest: 'local', image });
  if (!built.ok) {
    if (built.error.kind === 'usage') throw new UsageError(built.error.message);
    die(BINARY, EXIT.other, built.error.message);
  }
  const req: Request = built.value;
  const socketOpt = o.socket as string | undefined;
  const util = path.join(String(o.tmpdir), 'util');

  switch (req.kind) {
    case 'inspect-dump': {
      const { file, bytes } = readState(o, req.file);
      if (json) {
        const j = stateToJson(bytes, false);
        if (!j.ok) die(BINARY, EXIT.other, `couldn't parse dump file ${file}: ${j.error}`);
        process.stdout.write(`${JSON.stringify(j.value)}\n`);
        return EXIT.ok;
      }
      const d = decodeState(bytes);
      if (!d.ok) die(BINARY, EXIT.other, `couldn't parse dump file ${file}: ${d.error}`);
      const { unikernels, policies } = d.value.dump;
      process.stdout.write(`parsed ${unikernels.length} unikernels:\n`);
      for (const u of unikernels) {
        const c = u.config;
        process.stdout.write(
          `${nameToString(u.name)}: ${c.typ}, ${c.image.length} bytes${c.compressed ? ' compressed' : ''}, CPUs ${c.cpuids.join(',')}, ${c.memory} MB` +
          `${c.blocks.length ? `, blocks ${c.blocks.map((b) => b.blockName).join(',')}` : ''}${c.bridges.length ? `, nets ${c.bridges.map((b) => b.netif).join(',')}` : ''}` +
          `${c.arguments ? `, args ${JSON.stringify(c.arguments)}` : ''}\n`,
        );
      }
      if (policies.length > 0) {
        process.stdout.write(`${policies.length} policies:\n`);
        for (const p of policies) process.stdout.write(`${nameToString(p.name)}: ${formatPolicy(p.policy)}\n`);
      }
      return EXIT.ok;
    }
    case 'extract-dump': {
      const { file, bytes } = readState(o, req.file);
      const d = decodeState(bytes);
      if (!d.ok) die(BINARY, EXIT.other, `couldn't parse dump file ${file}: ${d.error}`);
      const u = d.value.dump.unikernels.find((x) => nameEqual(x.name, req.name));
      if (u === undefined) die(BINARY, EXIT.other, `no unikernel ${nameToString(req.name)} in ${file}`);
      let img = u.config.image;
      try {
        if (u.config.compressed) img = new Uint8Array(zlib.inflateSync(img));
      } catch (e) {
        die(BINARY, EXIT.other, `cannot uncompress the image of ${nameToString(req.name)}: ${(e as Error).message}`);
      }
      const target = (o.output as string | undefined) ?? path.join(process.env.TMPDIR || '/tmp', downloadFileName(req.name, Date.now()));
      try {
        fs.writeFileSync(target, img, { mode: 0o600 });
      } catch (e) {
        die(BINARY, EXIT.other, `cannot write ${target}: ${(e as Error).message}`);
      }
      process.stdout.write(json ? `${JSON.stringify({ wrote: target, bytes: img.length })}\n` : `wrote ${target} (${img.length} bytes)\n`);
      return EXIT.ok;
    }
    case 'log': {
      const msg = logMessage.subscribe(makeHeader(req.name), req.since);
      if (socketOpt === '-') {
        process.stdout.write(hexdump(encodeLogWire(msg)));
        return EXIT.ok;
      }
      const sock = socketOpt ?? path.join(util, SOCKET.log);
      const c = await connectUnix(sock);
      if (!c.ok) die(BINARY, EXIT.connect, connectHint(c.error, socketOpt));
      const conn = c.value;
      try {
        await conn.write(encodeLogWire(msg));
      } catch (e) {
        die(BINARY, EXIT.communication, `communication failure: ${(e as Error).message}`);
      }
      // vmmd_log answers a subscription with a reply first: an end before any message is a
      // daemon that went away, not an empty log
      // --no-follow: the history comes right after the reply; it is over when nothing more
      // arrives for a moment, or at the first event stamped after the reply
      const follow = o.follow !== false;
      let repliedAt: number | undefined;
      let events = 0;
      for (let seen = 0; ; seen++) {
        const quiet = !follow && repliedAt !== undefined;
        const r = await conn.read(quiet ? NO_FOLLOW_QUIET_MS : undefined);
        const over = quiet && r.kind === 'error' && r.error === `timed out after ${NO_FOLLOW_QUIET_MS} ms`;
        if (r.kind === 'end' && seen === 0) die(BINARY, EXIT.communication, 'communication failure: the daemon closed the connection without an answer');
        if (r.kind === 'end' || over) {
          conn.close();
          if (!follow && events === 0 && o.name !== undefined) die(BINARY, NO_CONSOLE_EXIT, `no log entries for ${nameToString(req.name)}`);
          return EXIT.ok;
        }
        if (r.kind === 'error') die(BINARY, EXIT.communication, `communication failure: ${r.error}`);
        const m = decodeLogWire(r.body);
        if (!m.ok) die(BINARY, EXIT.communication, `communication failure: ${m.error}`);
        if (seen === 0) repliedAt = Date.now();
        if (m.value.payload.kind === 'data') {
          if (!follow && repliedAt !== undefined && m.value.payload.value.timestamp > repliedAt) {
            conn.close();
            return EXIT.ok;
          }
          events++;
        }
        if (m.value.payload.kind === 'failure') {
          process.stderr.write(`${BINARY}: ${describeLogMessage(style, m.value)}`);
          return CODE.remoteFailed;
        }
        if (!json) process.stdout.write(describeLogMessage(style, m.value));
        else if (jsonWire) process.stdout.write(logMessageJson(m.value));
        else {
          const doc = logDoc(m.value);
          if (doc !== undefined) process.stdout.write(docText(doc));
        }
      }
    }
    case 'observe': {
      // status: vmmd's status query on its own (WIRE.md §8.2), printed as the remote one is
      const msg = encodeStatusWire({ header: makeHeader(req.name), payload: { kind: 'command', value: { kind: 'status', value: null } } });
      if (socketOpt === '-') {
        process.stdout.write(hexdump(msg));
        return EXIT.ok;
      }
      const c = await connectUnix(socketOpt ?? path.join(util, SOCKET.vmmd));
      if (!c.ok) die(BINARY, EXIT.connect, connectHint(c.error, socketOpt));
      try {
        await c.value.write(msg);
      } catch (e) {
        die(BINARY, EXIT.communication, `communication failure: ${(e as Error).message}`);
      }
      const { runObserve } = await import('../client/observe.js');
      const code = await runObserve(c.value, req.name, req.command, { binary: BINARY, style, json, jsonWire, stdout: process.stdout, stderr: process.stderr, progress: false, downloadDir: '/tmp' });
      c.value.close();
      return code;
    }
    case 'commands':
      break;
    default: {
      const never: never = req;
      return never;
    }
  }

  if (socketOpt === '-') {
    for (const s of req.steps) process.stdout.write(hexdump(encodeWire(command(s.name, s.command))));
    return EXIT.ok;
  }
  for (const s of req.steps) {
    if (s.upload !== undefined) {
      const e = checkReadable(s.upload.file);
      if (e !== undefined) die(BINARY, EXIT.other, e);
    }
  }
  for (const [i, s] of req.steps.entries()) {
    const e = await checkBlockRoom(req.steps.slice(0, i), s, socketOpt ?? path.join(util, SOCKET.vmmd));
    if (e !== undefined) die(BINARY, e.code, e.message);
  }
  const session: SessionOptions = {
    binary: BINARY, style, json, jsonWire, stdout: process.stdout, stderr: process.stderr, progress: process.stderr.isTTY === true,
    outputFile: o.output as string | undefined, downloadDir: process.env.TMPDIR || '/tmp',
  };
  if (sub === 'info') {
    const st = await askStatus(socketOpt ?? path.join(util, SOCKET.vmmd), req.steps[0].name);
    if (st !== undefined) session.status = st;
  }
  session.follow = o.follow !== false;
  if (sub === 'stats' && socketOpt === undefined) {
    // which unikernels are there to report on: none, and stats would wait for ever
    const names = await runningNames(path.join(util, SOCKET.vmmd), req.steps[0].name);
    if (names !== undefined && names.size === 0) {
      const what = req.steps[0].name.label === undefined ? `no unikernel below ${nameToString(req.steps[0].name)} is running` : `no unikernel ${nameToString(req.steps[0].name)} is running`;
      if (!session.follow) die(BINARY, NO_CONSOLE_EXIT, what);
      process.stderr.write(`${BINARY}: note: ${what}; waiting for statistics (--no-follow exits instead)\n`);
    }
    if (names !== undefined) session.statsNames = names;
  }
  for (const s of req.steps) {
    const sock = socketOpt ?? path.join(util, SOCKET[commandEndpoint(s.command).daemon]);
    const c = await connectUnix(sock);
    if (!c.ok) die(BINARY, EXIT.connect, connectHint(c.error, socketOpt));
    // info and block with a name (`-n acme`) that find nothing: is there a path of that name?
    const empty = EMPTY_LISTING[sub];
    const probe = empty !== undefined && !json && o.name !== undefined && s.name.label !== undefined;
    let printed = '';
    const out = probe ? new Writable({
      write(chunk: Buffer, _enc, cb) {
        printed += chunk.toString();
        process.stdout.write(chunk, cb);
      },
    }) : process.stdout;
    const code = await runStep(c.value, s, probe ? { ...session, stdout: out } : session);
    c.value.close();
    if (code !== EXIT.ok) return code;
    if (probe && printed === empty) await pathHint(sock, s.name, s.command);
  }
  return EXIT.ok;
}

/** A missing socket may be in another runtime directory: say how to choose it. */
function connectHint(error: string, socketOpt: string | undefined): string {
  return socketOpt === undefined && error.startsWith('no socket at ')
    ? `${error} (if the daemons run with another runtime directory: --tmpdir DIR, or ALBATROSS_TMPDIR=DIR)`
    : error;
}

/** What info and block print when they find nothing. */
const EMPTY_LISTING: Record<string, string> = { info: 'no unikernels\n', block: 'no block devices\n' };

/**
 * `-n acme` asks for the unikernel `:acme`; what lives below the path `acme:` is asked for
 * with `-n acme:`. When the name finds nothing but the path does, say so on stderr.
 */
async function pathHint(sock: string, name: Name, cmd: Command): Promise<void> {
  const asPath: Name = { path: [...name.path, name.label as string] };
  const c = await connectUnix(sock);
  if (!c.ok) return;
  try {
    await c.value.writeMessage(command(asPath, cmd));
    const m = await c.value.readMessage(5000);
    if (m.kind !== 'message' || m.wire.payload.kind !== 'reply') return;
    const r = m.wire.payload.value;
    const n = r.kind === 'unikernel_info' || r.kind === 'unikernel_info_v5' || r.kind === 'unikernel_info_v4' || r.kind === 'block_devices' ? r.value.length : 0;
    if (n === 0) return;
    const text = nameToString(asPath);
    const what = r.kind === 'block_devices' ? 'block device' : 'unikernel';
    process.stderr.write(
      `${BINARY}: note: ${nameToString(name)} is a name and has no ${what}; the path ${text} has ${n} ${what}${n === 1 ? '' : 's'} below it: use -n ${text}\n`,
    );
  } catch {
    // a hint only
  } finally {
    c.value.close();
  }
}

const MB = 1024 * 1024;

/** The names vmmd's info lists at or below `name` (as the stats daemon names them), or undefined if it cannot be asked. */
async function runningNames(sock: string, name: Name): Promise<Set<string> | undefined> {
  const c = await connectUnix(sock);
  if (!c.ok) return undefined;
  try {
    await c.value.writeMessage(command(name, { kind: 'unikernel', value: { kind: 'info', value: null } }));
    const m = await c.value.readMessage(30_000);
    if (m.kind !== 'message' || m.wire.payload.kind !== 'reply') return undefined;
    const r = m.wire.payload.value;
    if (r.kind !== 'unikernel_info' && r.kind !== 'unikernel_info_v5' && r.kind !== 'unikernel_info_v4') return undefined;
    return new Set(r.value.map((x) => nameToString(x.name)));
  } catch {
    return undefined;
  } finally {
    c.value.close();
  }
}

/**
 * vmmd's status of the unikernels at or below `name` (WIRE.md §8.2), asked beside the info
 * command: undefined when the daemon does not answer it (upstream's closes the connection),
 * and info is shown as before.
 */
async function askStatus(sock: string, name: Name): Promise<InfoStatus | undefined> {
  const c = await connectUnix(sock);
  if (!c.ok) return undefined;
  try {
    await c.value.write(encodeStatusWire({ header: makeHeader(name), payload: { kind: 'command', value: { kind: 'status', value: null } } }));
    const r = await c.value.read(30_000);
    if (r.kind !== 'frame') return undefined;
    const m = decodeStatusWire(r.body);
    return m.ok && m.value.payload.kind === 'reply' ? { list: m.value.payload.value, now: Date.now() } : undefined;
  } catch {
    return undefined;
  } finally {
    c.value.close();
  }
}

/**
 * A block set whose file is larger than the device is refused before anything is sent: the
 * size is the one of an earlier `block add` of the same request (create-block --data), or what
 * vmmd's block info says. Without a device of that name vmmd answers the set itself.
 */
async function checkBlockRoom(before: Step[], s: Step, sock: string): Promise<{ code: number; message: string } | undefined> {
  if (s.upload === undefined || s.command.kind !== 'block' || s.command.value.kind !== 'set') return undefined;
  const file = s.upload.file;
  const bytes = fs.statSync(file).size;
  let sizeMB: number | undefined;
  for (const b of before) {
    if (nameEqual(b.name, s.name) && b.command.kind === 'block' && b.command.value.kind === 'add') sizeMB = b.command.value.value;
  }
  if (sizeMB === undefined) {
    const c = await connectUnix(sock);
    if (!c.ok) return { code: EXIT.connect, message: c.error };
    try {
      await c.value.writeMessage(command(s.name, { kind: 'block', value: { kind: 'info', value: null } }));
      const m = await c.value.readMessage(30_000);
      if (m.kind !== 'message') return { code: EXIT.communication, message: `communication failure: ${m.kind === 'error' ? m.error : 'the daemon closed the connection without an answer'}` };
      const p = m.wire.payload;
      if (p.kind === 'reply' && p.value.kind === 'block_devices') sizeMB = p.value.value.find((d) => nameEqual(d.name, s.name))?.size;
    } catch (e) {
      return { code: EXIT.communication, message: `communication failure: ${(e as Error).message}` };
    } finally {
      c.value.close();
    }
  }
  if (sizeMB !== undefined && bytes > sizeMB * MB) {
    return { code: EXIT.other, message: `${file} is ${bytes} bytes, larger than the block device ${nameToString(s.name)} of ${sizeMB} MB (${sizeMB * MB} bytes); nothing was sent` };
  }
  return undefined;
}

runMain(BINARY, main);
