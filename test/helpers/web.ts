/**
 * Test helpers for vmmd_web: the whole local stack (vmmd_console, vmmd_log, vmmd with the fake
 * tender, vmmd_stats) on a temp run directory, vmmd_web started as a process on loopback, and a
 * small HTTP client.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { type RunDir, type VmmdProcess, makeRunDir, startVmmd, until } from './vmmd.js';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli');

export interface Stack {
  d: RunDir;
  vmmd: VmmdProcess;
  procs: ChildProcess[];
  stop(): Promise<void>;
}

/** vmmd_console, vmmd_log, vmmd and vmmd_stats (samples every 200 ms) on a fresh run directory. */
export async function startStack(): Promise<Stack> {
  const d = makeRunDir();
  const procs: ChildProcess[] = [];
  const util = path.join(d.tmpdir, 'util');
  procs.push(spawn(process.execPath, [path.join(CLI, 'vmmd_console.js'), '--tmpdir', d.tmpdir], { stdio: 'ignore' }));
  await until('console.sock', () => fs.existsSync(path.join(util, 'console.sock')));
  procs.push(spawn(process.execPath, [path.join(CLI, 'vmmd_log.js'), '--tmpdir', d.tmpdir, '--logfile', path.join(d.root, 'albatross.log')], { stdio: 'ignore' }));
  await until('log.sock', () => fs.existsSync(path.join(util, 'log.sock')));
  const vmmd = await startVmmd(d);
  procs.push(spawn(process.execPath, [path.join(CLI, 'vmmd_stats.js'), '--tmpdir', d.tmpdir, '--interval-ms', '200'], { stdio: 'ignore' }));
  await until('stat.sock', () => fs.existsSync(path.join(util, 'stat.sock')));
  return {
    d, vmmd, procs,
    stop: async () => {
      await vmmd.stop();
      for (const p of procs) p.kill();
      d.remove();
    },
  };
}

export interface WebProcess {
  proc: ChildProcess;
  url: string;
  /**
   * The administrator's password of the first start (undefined on later starts): printed, or
   * read from the file named on standard output (which is a pipe here).
   */
  adminPassword?: string;
  /** The file it was read from, when it was not printed. */
  adminPasswordFile?: string;
  stdout: () => string;
  stderr: () => string;
  stop(): Promise<void>;
}

/** vmmd_web on 127.0.0.1 (a free port), with the given extra arguments; waits for its URL. */
export async function startWeb(tmpdir: string, state: string, extra: string[] = []): Promise<WebProcess> {
  const proc = spawn(process.execPath, [path.join(CLI, 'vmmd_web.js'), '--http', '127.0.0.1:0', '--tmpdir', tmpdir, '--state', state, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  await until('vmmd_web url', () => {
    if (proc.exitCode !== null) throw new Error(`vmmd_web exited: ${err}`);
    return /url: (\S+)/.test(out);
  }, 20_000);
  const url = (/url: (\S+)/.exec(out) as RegExpExecArray)[1];
  const file = /its password is in (\S+) /.exec(out)?.[1];
  const pw = file === undefined ? /password: (\S+)/.exec(out)?.[1] : fs.readFileSync(file, 'utf8').trim();
  return {
    proc, url, adminPassword: pw, adminPasswordFile: file, stdout: () => out, stderr: () => err,
    stop: () => new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    }),
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface RequestOptions {
  token?: string;
  json?: unknown;
  body?: Buffer | Uint8Array | string;
  headers?: Record<string, string>;
  /**
   * A connection of its own rather than a kept-alive one: a large body is not written onto a
   * connection the server is closing as idle (its keepAliveTimeout) at that moment.
   */
  fresh?: boolean;
}

/** One HTTP request; the answer's body is parsed as JSON when it says it is JSON. */
export function call(base: string, method: string, p: string, o: RequestOptions = {}): Promise<Reply> {
  const u = new URL(p, base);
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  let body: Buffer | undefined;
  if (o.json !== undefined) {
    body = Buffer.from(JSON.stringify(o.json));
    headers['content-type'] = 'application/json';
  } else if (o.body !== undefined) {
    body = Buffer.from(o.body as Uint8Array);
    headers['content-type'] ??= 'application/octet-stream';
  }
  if (body !== undefined) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = http.request(u, { method, headers, ...(o.fresh === true ? { agent: false } : {}) }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const b = Buffer.concat(parts);
        const isJson = /json/.test(String(res.headers['content-type']));
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, json: isJson ? JSON.parse(b.toString()) : undefined });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A multipart/form-data body with fields and one file. */
export function multipart(fields: [string, string][], file: { field: string; filename: string; data: Uint8Array }): { body: Buffer; type: string } {
  const boundary = `----vmmdweb${Date.now()}`;
  const parts: Buffer[] = [];
  for (const [k, v] of fields) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; filename="${file.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`));
  parts.push(Buffer.from(file.data));
  parts.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` };
}

/** Reads server-sent events from `p` until `done` says so (or the timeout); returns them. */
export function readEvents(base: string, p: string, token: string, done: (events: { event: string; data: any }[]) => boolean, ms = 15_000): Promise<{ event: string; data: any }[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    const events: { event: string; data: any }[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
    const req = http.get(new URL(p, base), { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => reject(new Error(`status ${res.statusCode}: ${b}`)));
        return;
      }
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        for (;;) {
          const i = buf.indexOf('\n\n');
          if (i < 0) break;
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (ev !== undefined && data !== undefined) events.push({ event: ev, data: JSON.parse(data) });
        }
        if (done(events)) {
          clearTimeout(timer);
          req.destroy();
          resolve(events);
        }
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve(events);
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`timed out; events so far: ${JSON.stringify(events)}`));
    }, ms);
    req.on('error', () => undefined);
  });
}
