/**
 * The config file of the clients (src/client/config.ts) as the binaries use it: errors end
 * the program with one line (exit 123).
 */
import { EXIT, die } from './common.js';
import { type Remote, checkKeyFile, configPath, findRemote, loadConfig } from '../client/config.js';

/** The remote `--remote NAME` names, undefined without --remote. */
export function namedRemote(binary: string, name: string | undefined): Remote | undefined {
  if (name === undefined) return undefined;
  const cfg = loadConfig();
  if (!cfg.ok) return die(binary, EXIT.other, cfg.error);
  const r = findRemote(cfg.value, name);
  return r.ok ? r.value : die(binary, EXIT.other, r.error);
}

/** A key file taken from the config file must be private to its owner (and group, read only). */
export function configKey(binary: string, file: string, what: string): void {
  const c = checkKeyFile(file, what, configPath());
  if (!c.ok) die(binary, EXIT.other, c.error);
}

/** The config file's tmpdir, if it has one; a broken config file ends the program. */
export function configTmpdir(binary: string): string | undefined {
  const cfg = loadConfig();
  if (!cfg.ok) return die(binary, EXIT.other, cfg.error);
  return cfg.value?.tmpdir;
}
