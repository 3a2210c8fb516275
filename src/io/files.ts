/**
 * Crash-only file writes, shared by every daemon and tool that persists something
 * (vmmd's state file and runtime records, vmmd_log's sequence file, keys, certificates
 * and CRLs): a `kill -9` at any moment leaves either the old or the new content.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** fsync of a directory, so that a rename in it is durable (not every file system allows it). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // not every file system lets a directory be fsynced
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export interface AtomicWriteOptions {
  /** Mode of a newly written file (default 0600). */
  mode?: number;
  /** Keep the previous content under this name (hard link, so `file` never disappears). */
  backup?: string;
}

/**
 * Replaces `file` with `data`: a temp file in the same directory, fsync, rename over
 * the old file, fsync of the directory. Throws on failure (the temp file is removed).
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'w', opts.mode ?? 0o600);
    try {
      fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (opts.backup !== undefined && fs.existsSync(file)) {
      fs.rmSync(opts.backup, { force: true });
      fs.linkSync(file, opts.backup);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}
