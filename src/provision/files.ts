/**
 * Files of the provisioning tools: keys that are created once and reused, outputs written
 * crash-only (temp file, fsync, rename, fsync of the directory), the DB and revocation list.
 */
import * as fs from 'node:fs';
import { writeFileAtomic } from '../io/files.js';
import { type Result, ok, err } from '../core/result.js';
import { type KeyPair, type KeyType, generateKey, loadPrivateKey, privateKeyPem } from './keys.js';

const errno = (e: unknown): string => {
  const x = e as NodeJS.ErrnoException;
  switch (x.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    default:
      return x.message;
  }
};

export function readText(file: string, what: string): Result<string> {
  try {
    return ok(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return err(`cannot read ${what} ${file}: ${errno(e)}`);
  }
}

export function readBytes(file: string, what: string): Result<Uint8Array> {
  try {
    return ok(new Uint8Array(fs.readFileSync(file)));
  } catch (e) {
    return err(`cannot read ${what} ${file}: ${errno(e)}`);
  }
}

/** Writes `data` to `file` so that a crash leaves either the old or the new content. */
export function writeDurable(file: string, data: string | Uint8Array, mode = 0o644): Result<void> {
  try {
    writeFileAtomic(file, data, { mode });
    return ok(undefined);
  } catch (e) {
    return err(`cannot write ${file}: ${errno(e)}`);
  }
}

/** Appends one line and syncs it (the DB of issued serials, the revocation list). */
export function appendLine(file: string, line: string): Result<void> {
  try {
    const fd = fs.openSync(file, 'a', 0o644);
    try {
      fs.writeSync(fd, `${line}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return ok(undefined);
  } catch (e) {
    return err(`cannot append to ${file}: ${errno(e)}`);
  }
}

/**
 * The key in `file`: loaded when it exists (as upstream, an existing key is reused),
 * otherwise generated and written with mode 0600. `fresh` replaces an existing key.
 */
export async function loadOrCreateKey(file: string, type: KeyType, fresh = false): Promise<Result<{ key: KeyPair; created: boolean }>> {
  if (!fresh && fs.existsSync(file)) {
    const text = readText(file, 'key');
    if (!text.ok) return text;
    const k = await loadPrivateKey(text.value, file);
    return k.ok ? ok({ key: k.value, created: false }) : k;
  }
  const key = await generateKey(type);
  const pem = await privateKeyPem(key);
  const w = writeDurable(file, pem, 0o600);
  if (!w.ok) return w;
  // the mode of an existing file is not changed by open(2)
  try {
    fs.chmodSync(file, 0o600);
  } catch (e) {
    return err(`cannot set the mode of ${file}: ${errno(e)}`);
  }
  return ok({ key, created: true });
}
