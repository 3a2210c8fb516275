/**
 * Where the handlers log. Under inetd, stdout and stderr are the client's socket, so a
 * handler logs only to a file (`--logfile`, one line per event, appended synchronously
 * so that nothing is lost when the process exits) or to syslog through logger(1)
 * (`--syslog`; node cannot write to /dev/log itself), or not at all (`--quiet`).
 */
import { appendFileSync, fstatSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from './tls-handler.js';

export interface ClosableLogger extends Logger {
  close(): Promise<void>;
}

const stamp = (): string => new Date().toISOString();
/** One log line per event: newlines in a message (OpenSSL's errors end in one) become spaces. */
const oneLine = (msg: string): string => msg.replace(/\s*\n\s*/g, ' ').trim();

export function fileLogger(binary: string, path: string): ClosableLogger {
  const line = (level: string, msg: string): void => {
    try {
      appendFileSync(path, `${stamp()} ${binary}[${process.pid}] ${level}: ${oneLine(msg)}\n`, { mode: 0o640 });
    } catch {
      // a log that cannot be written must not take the handler down
    }
  };
  return { info: (m) => line('info', m), error: (m) => line('error', m), close: async () => {} };
}

/**
 * Lines go to logger(1) on its standard input. Starting logger is a fork of this process,
 * so it is not done on the client's time: the first lines wait in memory until
 * `deferMs` has passed or the logger is closed (a short connection's lines are thus
 * handed over once its client has the answer); from then on lines go straight through.
 */
export function syslogLogger(binary: string, deferMs = 500): ClosableLogger {
  let child: ChildProcess | undefined;
  let queued: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const start = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    // loaded here, not at start-up: a handler logging to a file never needs it
    const { spawn } = require('node:child_process') as typeof import('node:child_process');
    child = spawn('logger', ['-t', `${binary}[${process.pid}]`, '-p', 'daemon.info'], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.on('error', () => {});
    child.stdin?.on('error', () => {});
    for (const l of queued) child.stdin?.write(l);
    queued = [];
  };
  const line = (level: string, msg: string): void => {
    const text = `${level}: ${msg.replace(/\n/g, ' ')}\n`;
    if (child !== undefined) {
      child.stdin?.write(text);
      return;
    }
    queued.push(text);
    timer ??= setTimeout(start, deferMs).unref();
  };
  return {
    info: (m) => line('info', m),
    error: (m) => line('error', m),
    close: () =>
      new Promise<void>((resolve) => {
        if (child === undefined && queued.length > 0) start();
        if (child === undefined || child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin?.end();
        setTimeout(resolve, 2000).unref();
      }),
  };
}

export function stderrLogger(binary: string): ClosableLogger {
  const line = (level: string, msg: string): void => {
    process.stderr.write(`${binary}: ${level === 'error' ? 'error: ' : ''}${oneLine(msg)}\n`);
  };
  return { info: (m) => line('info', m), error: (m) => line('error', m), close: async () => {} };
}

export const quietLogger: ClosableLogger = { info: () => {}, error: () => {}, close: async () => {} };

/** Is file descriptor `fd` a socket (as under inetd)? */
export function fdIsSocket(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}
