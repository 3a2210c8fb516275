/**
 * Who may see and act on what (pure). A user is bound to a path; a name is theirs when its
 * PATH is that path or below it, as for a sub-CA: for a user at `acme`, `acme:web` and
 * `acme:team:db` are theirs, the root-level label `:acme` is not.
 */
import { type Name, type Path, nameToString, parseName, pathIsPrefix, pathToString } from '../core/name.js';
import { type Result, ok, err } from '../core/result.js';

export const nameWithin = (n: Name, p: Path): boolean => pathIsPrefix(p, n.path);

/** A path strictly below `p` (policies: a user sets limits for paths beneath its own). */
export const pathStrictlyBelow = (q: Path, p: Path): boolean => q.length > p.length && pathIsPrefix(p, q);

export const showPath = (p: Path): string => (p.length === 0 ? 'the root' : pathToString(p).slice(0, -1));

/** A unikernel or block device name as given in a URL or form: parsed as the CLIs parse it, with a label. */
export function parseTargetName(s: string): Result<Name> {
  const n = parseName(s);
  if (!n.ok) return err(`${JSON.stringify(s)}: ${n.error}`);
  if (n.value.label === undefined) return err(`${JSON.stringify(s)}: a path, not a name (expected e.g. acme:web)`);
  return n;
}

/** Why `user` (at `userPath`) may not act on `n`, or ok. */
export function checkWithin(user: string, userPath: Path, n: Name): Result<void> {
  if (nameWithin(n, userPath)) return ok(undefined);
  return err(`${user} may act only on names whose path is ${showPath(userPath)} or below; ${nameToString(n)} is not`);
}
