/**
 * Labels, paths and names (SEMANTICS.md §2).
 *
 * A name is a path (sequence of labels, empty = root) and an optional label.
 * Text form: path labels joined by ':', then ':', then the label (or nothing).
 * The trie key of a name is its path labels followed by its label, so `foo:`
 * and `:foo` share a key.
 */
import { type Result, ok, err } from './result.js';

export type Label = string;
export type Path = readonly Label[];
export interface Name {
  readonly path: Path;
  readonly label?: Label;
}

export const LABEL_ERROR = 'invalid label (only [a-zA-Z0-9-.] allowed, 1 to 63 chars)';
const LABEL_RE = /^[a-zA-Z0-9.][a-zA-Z0-9.-]{0,62}$/;

export const root: Name = { path: [] };

/** Validates a label and returns it lower-cased. */
export function parseLabel(s: string): Result<Label> {
  return LABEL_RE.test(s) ? ok(s.toLowerCase()) : err(LABEL_ERROR);
}

export const isLabel = (s: string): boolean => LABEL_RE.test(s) && s === s.toLowerCase();

function parseLabels(pieces: string[]): Result<Label[]> {
  const out: Label[] = [];
  for (const p of pieces) {
    const l = parseLabel(p);
    if (!l.ok) return l;
    out.push(l.value);
  }
  return ok(out);
}

/** A path string as used by `--path` and policy arguments: `org:team`, `:org`, or empty for root. */
export function parsePath(s: string): Result<Path> {
  if (s === '' || s === ':') return ok([]);
  const body = s.endsWith(':') ? s.slice(0, -1) : s;
  const pieces = body.split(':');
  if (pieces[0] === '') pieces.shift();
  const r = parseLabels(pieces);
  return r.ok ? r : err(`invalid path: ${r.error}`);
}

/** Parses the textual name form (SEMANTICS.md §2.2 `of_string`). */
export function parseName(s: string): Result<Name> {
  if (s === '') return err('empty name');
  if (s.endsWith(':')) {
    const body = s.slice(0, -1);
    if (body === '') return ok(root);
    const pieces = body.split(':');
    if (pieces[0] === '') pieces.shift();
    const r = parseLabels(pieces);
    return r.ok ? ok({ path: r.value }) : err('invalid name');
  }
  const pieces = s.split(':');
  if (pieces[0] === '' && pieces.length > 1) pieces.shift();
  const r = parseLabels(pieces);
  if (!r.ok) return err('invalid name');
  const labels = r.value;
  const label = labels.pop() as Label;
  return ok({ path: labels, label });
}

export function nameToString(n: Name): string {
  return `${n.path.join(':')}:${n.label ?? ''}`;
}

export function pathToString(p: Path): string {
  return `${p.join(':')}:`;
}

export const makeName = (path: Path, label?: Label): Name => (label === undefined ? { path } : { path, label });
export const isPath = (n: Name): boolean => n.label === undefined;
export const pathOfName = (n: Name): Name => ({ path: n.path });

/** The trie key: path labels then the label. */
export function nameKey(n: Name): Label[] {
  return n.label === undefined ? [...n.path] : [...n.path, n.label];
}

/** Builds a name from a trie key: the last label becomes the label (empty key = root). */
export function nameOfKey(key: readonly Label[]): Name {
  if (key.length === 0) return root;
  return { path: key.slice(0, -1), label: key[key.length - 1] };
}

export function pathIsPrefix(prefix: Path, p: Path): boolean {
  if (prefix.length > p.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== p[i]) return false;
  return true;
}

/** Is `n` at or below the path `p` (the access rule: a domain covers everything beneath it)? */
export function nameIsBelow(n: Name, p: Path): boolean {
  return pathIsPrefix(p, nameKey(n));
}

/**
 * Is `n` inside the path `p`: is its *path* `p` or below it? The rule of confinement and of
 * policy accounting. Unlike nameIsBelow (a trie-key prefix), the unikernel `:team` (root path,
 * label `team`) is not inside `team:`, although it has the trie key of the path `team:`.
 */
export function nameIsWithin(n: Name, p: Path): boolean {
  return pathIsPrefix(p, n.path);
}

export function nameEqual(a: Name, b: Name): boolean {
  return a.label === b.label && a.path.length === b.path.length && pathIsPrefix(a.path, b.path);
}

/** Strict ancestors of a path, excluding the root, outermost first (`a:b:c` -> `a`, `a:b`). */
export function pathAncestors(p: Path): Path[] {
  const out: Path[] = [];
  for (let i = 1; i < p.length; i++) out.push(p.slice(0, i));
  return out;
}

/**
 * The name of `n` relative to the queried path `base` (SEMANTICS.md §2.4):
 * `org:team:web` relative to `org` is `team:web`; `org:db` is `:db`; `org:` itself is `:`.
 * Precondition: `n` is below `base`.
 */
export function relativeName(n: Name, base: Path): Name {
  const key = nameKey(n).slice(base.length);
  if (n.label === undefined) return { path: key };
  return nameOfKey(key);
}

/** Name of a block device used by unikernel `n` with host device `dev`: same path as the unikernel. */
export const blockName = (unikernel: Name, dev: Label): Name => ({ path: unikernel.path, label: dev });

/** Joins a path and a relative name (the inverse of relativeName). */
export function appendName(base: Path, n: Name): Name {
  return n.label === undefined ? { path: [...base, ...n.path] } : { path: [...base, ...n.path], label: n.label };
}

/**
 * Does a subscription (stats, log) to `sub` cover the name `n`? A subscription to a path
 * covers the names inside it (nameIsWithin: `:team` is not inside `team:`); one to a name
 * with a label covers that name and what is below its trie key, as upstream (`:team`
 * covers `:team` and `team:web`).
 */
export function subscriptionCovers(sub: Name, n: Name): boolean {
  return isPath(sub) ? nameIsWithin(n, sub.path) : nameIsBelow(n, nameKey(sub));
}
