/**
 * Named remotes of the clients (SEMANTICS.md §11.5): `$ALBATROSS_CONFIG`, else
 * `$XDG_CONFIG_HOME/albatross/remotes` (`~/.config/albatross/remotes`), an INI file:
 *
 * ```ini
 * tmpdir = /run/albatross          ; vmmc_local's --tmpdir when neither it nor ALBATROSS_TMPDIR is given
 *
 * [prod]
 * destination = albatross.example.org:1025
 * server-ca = cacert.pem           ; relative paths are relative to the file's directory
 * ca = user.pem                    ; vmmc_bistro: --ca and --ca-key
 * ca-key = user.key
 * cert = hello.pem                 ; vmmc_remote: CERT and KEY when not given
 * key = hello.key
 * ```
 *
 * The file holds paths, never keys: one that others may write (group or other write bit)
 * is refused, as is inline PEM, and a key file it names that others may read or write.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Result, ok, err } from '../core/result.js';

export interface Remote {
  name: string;
  destination?: string;
  'server-ca'?: string;
  ca?: string;
  'ca-key'?: string;
  cert?: string;
  key?: string;
}

export interface ClientConfig {
  file: string;
  tmpdir?: string;
  remotes: Map<string, Remote>;
}

const REMOTE_KEYS = ['destination', 'server-ca', 'ca', 'ca-key', 'cert', 'key'] as const;
/** Keys that name files (resolved against the file's directory). */
const FILE_KEYS = new Set(['server-ca', 'ca', 'ca-key', 'cert', 'key', 'tmpdir']);
/** Keys that name private keys (their mode is checked). */
export const KEY_KEYS = ['ca-key', 'key'] as const;

/** Where the config file is: $ALBATROSS_CONFIG, else $XDG_CONFIG_HOME or ~/.config, then albatross/remotes. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ALBATROSS_CONFIG) return env.ALBATROSS_CONFIG;
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'albatross', 'remotes');
}

/** Parses the text of a config file (pure); `dir` resolves relative paths. */
export function parseConfig(text: string, file: string, dir: string): Result<ClientConfig> {
  const cfg: ClientConfig = { file, remotes: new Map() };
  let cur: Remote | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const at = `${file}: line ${i + 1}`;
    if (lines[i].includes('-----BEGIN')) {
      return err(`${at}: PEM text (a key or a certificate): the file names files only; put it in a file (a key with mode 0600) and give its path`);
    }
    const line = lines[i].replace(/\s[;#].*$/, '').trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[([^\]]*)\]$/.exec(line);
    if (sec !== null) {
      const name = sec[1].trim();
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) return err(`${at}: remote name ${JSON.stringify(name)}: expected letters, digits, ".", "_" and "-"`);
      if (cfg.remotes.has(name)) return err(`${at}: remote ${name} defined twice`);
      cur = { name };
      cfg.remotes.set(name, cur);
      continue;
    }
    const kv = /^([A-Za-z-]+)\s*=\s*(.*)$/.exec(line);
    if (kv === null) return err(`${at}: expected [NAME] or KEY = VALUE, got ${JSON.stringify(line.slice(0, 40))}`);
    const [, key, raw] = kv;
    const value = raw.replace(/^"(.*)"$/, '$1');
    if (value === '') return err(`${at}: ${key} has no value`);
    const v = FILE_KEYS.has(key) && !path.isAbsolute(value) ? path.resolve(dir, value.replace(/^~(?=\/)/, os.homedir())) : value;
    if (cur === undefined) {
      if (key !== 'tmpdir') return err(`${at}: ${key} outside a [remote] section (only tmpdir is global)`);
      cfg.tmpdir = v;
      continue;
    }
    if (!(REMOTE_KEYS as readonly string[]).includes(key)) return err(`${at}: unknown key ${key} (one of ${REMOTE_KEYS.join(', ')})`);
    cur[key as (typeof REMOTE_KEYS)[number]] = v;
  }
  return ok(cfg);
}

const octal = (m: number): string => (m & 0o777).toString(8).padStart(4, '0');

/**
 * Reads the config file; undefined when there is none. Refuses a file that group or others
 * may write (it chooses the keys and the servers trusted), and inline keys.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Result<ClientConfig | undefined> {
  const file = configPath(env);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !env.ALBATROSS_CONFIG) return ok(undefined);
    return err(`cannot read the config file ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if ((st.mode & 0o022) !== 0) {
    return err(`the config file ${file} may be written by ${st.mode & 0o002 ? 'anyone' : 'its group'} (mode ${octal(st.mode)}): it chooses keys and trusted servers; chmod go-w ${file}`);
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    return err(`cannot read the config file ${file}: ${(e as Error).message}`);
  }
  return parseConfig(text, file, path.dirname(path.resolve(file)));
}

/** A key file named by the config must not be readable or writable by others, nor writable by its group. */
export function checkKeyFile(file: string, what: string, cfg: string): Result<void> {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return ok(undefined); // reading it later says why
  }
  if ((st.mode & 0o026) !== 0) {
    return err(`${what} ${file} (from ${cfg}) is ${st.mode & 0o004 ? 'readable by anyone' : 'writable by others'} (mode ${octal(st.mode)}): chmod 600 ${file}`);
  }
  return ok(undefined);
}

/** The remote of that name, or an error listing the ones there are. */
export function findRemote(cfg: ClientConfig | undefined, name: string, env: NodeJS.ProcessEnv = process.env): Result<Remote> {
  if (cfg === undefined) return err(`--remote ${name}: no config file ${configPath(env)} (ALBATROSS_CONFIG names another)`);
  const r = cfg.remotes.get(name);
  if (r !== undefined) return ok(r);
  const names = [...cfg.remotes.keys()];
  return err(`--remote ${name}: no remote of that name in ${cfg.file}${names.length ? ` (there: ${names.join(', ')})` : ' (it defines none)'}`);
}
