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

export function fileLogger(binary: string, path: string): ClosableLogger {
  const line = (level: string, msg: string): void => {
    try {
      appendFileSync(path, `${stamp()} ${binary}[${process.pid}] ${level}: ${msg}\n`, { mode: 0o640 });
    } catch {
      // a log that cannot be written must not take the handler down
    }
  };
  return { info: (m) => line('info', m), error: (m) => line('error', m), close: async () => {} };
}

export function syslogLogger(binary: string): ClosableLogger {
  let child: ChildProcess | undefined;
  const start = (): ChildProcess => {
    // loaded here, not at start-up: a handler logging to a file never needs it
    const { spawn } = require('node:child_process') as typeof import('node:child_process');
    child = spawn('logger', ['-t', `${binary}[${process.pid}]`, '-p', 'daemon.info'], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.on('error', () => {});
    child.stdin?.on('error', () => {});
    return child;
  };
  const line = (level: string, msg: string): void => {
    (child ?? start()).stdin?.write(`${level}: ${msg.replace(/\n/g, ' ')}\n`);
  };
  return {
    info: (m) => line('info', m),
    error: (m) => line('error', m),
    close: () =>
      new Promise<void>((resolve) => {
        if (child === undefined || child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin?.end();
        setTimeout(resolve, 2000).unref();
      }),
  };
}

export function stderrLogger(binary: string): ClosableLogger {
  const line = (level: string, msg: string): void => {
    process.stderr.write(`${binary}: ${level === 'error' ? 'error: ' : ''}${msg}\n`);
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
