/**
 * From a verified client certificate chain to what the TLS endpoint executes
 * (CERTS.md §3): the target name, the policies to install (deepest first) and the one
 * command carried by the leaf.
 *
 * The input is the chain as DER, leaf first, each certificate followed by its issuer,
 * *without* the trust anchor (the root CA is not part of any name; a root that the
 * client sent is dropped by the shell as well). OpenSSL has verified signatures,
 * validity and CA constraints; this module reads the Albatross extensions and refuses,
 * with a precise message, everything CERTS.md §3.1 refuses. On top of upstream it checks
 * the validity period and CA flag of the certificates it interprets (so that a chain the
 * shell assembled can never differ from one OpenSSL would accept in those respects) and
 * that every delegated policy fits into the one above it, so that an oversized
 * delegation is refused with a clear reason before any daemon sees it.
 */
import { type Result, ok, err } from './result.js';
import { type Name, type Path, LABEL_ERROR, appendName, parseLabel, parseName, parsePath, pathToString, nameToString, root } from './name.js';
import { OID_BASIC_CONSTRAINTS, OPENSSL_CRITICAL_EXTENSIONS, certFacts, type CertFacts } from './x509.js';
import { limits } from './limits.js';
import { type Policy, isSubPolicy } from './policy.js';
import { ALBATROSS_OID } from './wire/wire.js';
import { type LeafCommand, decodeLeafExtension, describeLeafCommand } from './wire/leaf.js';

export interface Delegation {
  /** The path the policy is installed at (`org:team`). */
  path: Path;
  policy: Policy;
}

export interface ChainCommand {
  /** The target name: always at or below the path formed by the chain's delegations. */
  name: Name;
  /** The path formed by the chain's policy-carrying CAs (`org:team`), root if none. */
  path: Path;
  /** Deepest first: the leaf's issuer's policy first, the top-most delegation last. */
  policies: Delegation[];
  /** The wire version of the leaf's extension (always 5). */
  version: number;
  /** Upstream's Command, or our `status` / `log` (leaf.ts), which no intermediate may carry. */
  command: LeafCommand;
}

export interface ChainOptions {
  /** Milliseconds since the epoch; when given, every certificate must be valid at that time. */
  now?: number;
}

/**
 * Does the command address a path rather than a unikernel or block device (CERTS.md
 * §3.1 step 5)? Its leaf CN is then a path below the chain's path, `""`, `.` or `:` the
 * chain's path itself.
 */
export function pathCommand(cmd: LeafCommand): boolean {
  return cmd.kind === 'policy' || (cmd.kind === 'console' && cmd.value.kind === 'list_inactive');
}

/**
 * Does the command read state below a name (status, log subscribe; CERTS.md §3.3)? Its leaf
 * CN is then a name below the chain's path: `hello` the unikernel `org:team:hello`, `dev:`
 * the path `org:team:dev`, absent, `""`, `.` or `:` the chain's path itself.
 */
export const observerCommand = (cmd: LeafCommand): boolean => cmd.kind === 'status' || cmd.kind === 'log';

/** May a leaf certificate carry this command (CERTS.md §3.3)? */
export function leafCommandAllowed(cmd: LeafCommand): boolean {
  switch (cmd.kind) {
    case 'status':
    case 'log':
      // albatross-ts: they only read, at or below the chain's path (the name is built below it)
      return true;
    case 'console':
      return cmd.value.kind === 'subscribe' || cmd.value.kind === 'list_inactive';
    case 'stats':
      return cmd.value.kind === 'subscribe';
    case 'unikernel':
      return true;
    case 'policy':
      // add and remove only below the chain's path (checked in commandOfChain)
      return true;
    case 'block':
      return true;
    default: {
      const never: never = cmd;
      return never;
    }
  }
}

/** The error for a leaf without a name (CN absent, `.` or `:`) whose command needs one, if any. */
function emptyNameError(cmd: LeafCommand): string | undefined {
  if (cmd.kind === 'policy' && (cmd.value.kind === 'add' || cmd.value.kind === 'remove')) {
    return 'policy add|remove may not have an empty name';
  }
  if (cmd.kind === 'block' && cmd.value.kind !== 'info') {
    return 'block add|add-old|remove|set|set-old|dump|dump-old may not have an empty name';
  }
  return undefined;
}

const what = (i: number, n: number): string => (i === 0 ? 'leaf certificate' : i === n - 1 && n > 1 ? `certificate ${i} (top of the chain)` : `certificate ${i}`);

const cnOf = (f: CertFacts): string => ` (CN ${JSON.stringify(f.subjectCN ?? '')})`;

/** Names of the extensions a message may mention besides their OID. */
const EXTENSION_NAMES: Record<string, string> = { [ALBATROSS_OID]: 'albatross', [OID_BASIC_CONSTRAINTS]: 'basicConstraints' };
const extensionName = (oid: string): string => (EXTENSION_NAMES[oid] === undefined ? oid : `${oid} (${EXTENSION_NAMES[oid]})`);

/** RFC 5280 §4.2: "A certificate MUST NOT include more than one instance of a particular extension." */
function checkUniqueExtensions(f: CertFacts, which: string): Result<void> {
  const seen = new Map<string, number>();
  for (const e of f.extensions) seen.set(e.oid, (seen.get(e.oid) ?? 0) + 1);
  for (const [oid, n] of seen) {
    if (n > 1) return err(`${which}${cnOf(f)}: extension ${extensionName(oid)} appears ${n} times (RFC 5280 §4.2 allows one instance of each extension)`);
  }
  return ok(undefined);
}

/**
 * Why OpenSSL refused a chain with an unhandled critical extension, which node reports
 * as `UNSPECIFIED`: the first certificate of the chain (leaf first, as the client sent
 * it) with a critical extension OpenSSL does not process, and that extension's OID.
 */
export function unhandledCriticalExtension(chain: readonly Uint8Array[]): string | undefined {
  for (let i = 0; i < chain.length; i++) {
    const f = certFacts(chain[i]);
    if (!f.ok) continue;
    const e = f.value.extensions.find((x) => x.critical && !OPENSSL_CRITICAL_EXTENSIONS.has(x.oid));
    if (e !== undefined) return `${i === 0 ? 'leaf certificate' : `certificate ${i}`}${cnOf(f.value)} has the unhandled critical extension ${extensionName(e.oid)}`;
  }
  return undefined;
}

function checkValidity(f: CertFacts, now: number, which: string): Result<void> {
  if (f.notBefore !== undefined && now < f.notBefore) {
    return err(`${which} is not yet valid (valid from ${new Date(f.notBefore).toISOString()})`);
  }
  if (f.notAfter !== undefined && now > f.notAfter) {
    return err(`${which} has expired (valid until ${new Date(f.notAfter).toISOString()})`);
  }
  return ok(undefined);
}

type Ext = { present: false } | { present: true; decoded: Result<{ version: number; command: LeafCommand }> };

function albatrossExtension(f: CertFacts): Ext {
  const e = f.extensions.find((x) => x.oid === ALBATROSS_OID);
  if (e === undefined) return { present: false };
  return { present: true, decoded: decodeLeafExtension(e.value) };
}

/**
 * Every delegation must fit into the one above it (policies are deepest first, so the
 * parent of policies[i] is policies[i+1]). The top-most one is checked by vmmd against
 * what the operator installed.
 */
export function checkDelegations(policies: readonly Delegation[]): Result<void> {
  for (let i = 0; i + 1 < policies.length; i++) {
    const sub = policies[i];
    const sup = policies[i + 1];
    const r = isSubPolicy(sub.policy, sup.policy);
    if (!r.ok) return err(`delegation to ${pathToString(sub.path)} exceeds the one to ${pathToString(sup.path)}: ${r.error}`);
  }
  return ok(undefined);
}

/** CERTS.md §3.1: the name, policies and command of a verified chain (leaf first, no trust anchor). */
export function commandOfChain(chain: readonly Uint8Array[], opts: ChainOptions = {}): Result<ChainCommand> {
  if (chain.length >= limits.maxChainLength) return err('certificate chain too long');
  if (chain.length === 0) return err('empty chain');
  const facts: CertFacts[] = [];
  for (let i = 0; i < chain.length; i++) {
    const f = certFacts(chain[i]);
    if (!f.ok) return err(`${what(i, chain.length)}: ${f.error}`);
    facts.push(f.value);
  }
  // beyond upstream: the certificates we interpret are the ones OpenSSL accepted
  for (let i = 0; i < facts.length; i++) {
    // upstream reads the first of two Albatross extensions; OpenSSL does not look at them
    const u = checkUniqueExtensions(facts[i], what(i, facts.length));
    if (!u.ok) return u;
    if (opts.now !== undefined) {
      const v = checkValidity(facts[i], opts.now, what(i, facts.length));
      if (!v.ok) return v;
    }
    if (i > 0 && !facts[i].isCA) return err(`${what(i, facts.length)} (CN ${JSON.stringify(facts[i].subjectCN ?? '')}) is not a CA`);
  }
  // beyond upstream: a CA certificate delegates; the command comes in an end-entity one
  if (facts[0].isCA) return err(`leaf certificate${cnOf(facts[0])} is a CA (basicConstraints cA TRUE): a command must come in an end-entity certificate`);
  const [leaf, ...above] = facts;
  const rest = above.reverse();
  const path: string[] = [];
  const policies: Delegation[] = [];
  for (const c of rest) {
    const ext = albatrossExtension(c);
    if (!ext.present) continue;
    if (!ext.decoded.ok) return err(ext.decoded.error);
    const cmd = ext.decoded.value.command;
    if (cmd.kind === 'policy' && cmd.value.kind === 'add') {
      if (c.subjectCN === undefined) return err('policy add may not have an empty name');
      const l = parseLabel(c.subjectCN);
      if (!l.ok) return err(`${LABEL_ERROR}: intermediate CN ${JSON.stringify(c.subjectCN)}`);
      path.push(l.value);
      policies.unshift({ path: [...path], policy: cmd.value.value });
    } else {
      return err(`unexpected wire ${describeLeafCommand(cmd)}`);
    }
  }
  const leafExt = albatrossExtension(leaf);
  const cn = leaf.subjectCN;
  let name: Name;
  const leafCommand = leafExt.present && leafExt.decoded.ok ? leafExt.decoded.value.command : undefined;
  if (leafCommand !== undefined && observerCommand(leafCommand)) {
    // albatross-ts: a name (label, path, or path and label) below the chain's path, never
    // above or beside it, so that a tenant sees its own unikernels and events only
    const below = cn === undefined || cn === '' || cn === '.' || cn === ':' ? ok(root) : parseName(cn);
    if (!below.ok) return err(`${below.error}: leaf CN ${JSON.stringify(cn)}`);
    name = appendName(path, below.value);
  } else if (leafCommand !== undefined && pathCommand(leafCommand)) {
    // beyond upstream, which reads the CN as a label and so addresses the chain's path
    // whatever it says (vmmd ignores the label of a policy command), or refuses the path
    // upstream's own client writes there (`org:team`, or "" for the root)
    const below = cn === undefined || cn === '.' ? ok([]) : parsePath(cn);
    if (!below.ok) return err(`${below.error}: leaf CN ${JSON.stringify(cn)}`);
    name = { path: [...path, ...below.value] };
    if (leafCommand.kind === 'policy' && leafCommand.value.kind !== 'info' && below.value.length === 0) {
      // the chain's own policy comes from its CA certificate, which a leaf cannot change
      return err(`policy ${leafCommand.value.kind} may not have an empty name: a leaf certificate adds or removes policies below the path of its chain (${pathToString(path)}), its CN names the path below it`);
    }
  } else if (cn === undefined || cn === '.' || cn === ':') {
    if (leafExt.present && leafExt.decoded.ok) {
      const e = emptyNameError(leafExt.decoded.value.command);
      if (e !== undefined) return err(e);
    }
    name = { path: [...path] };
  } else {
    const l = parseLabel(cn);
    if (!l.ok) return err(`${LABEL_ERROR}: leaf CN ${JSON.stringify(cn)}`);
    name = { path: [...path], label: l.value };
  }
  if (!leafExt.present) return err('leaf certificate does not contain an albatross extension');
  if (!leafExt.decoded.ok) return err(leafExt.decoded.error);
  const { version, command } = leafExt.decoded.value;
  if (!leafCommandAllowed(command)) return err(`unexpected command (${describeLeafCommand(command)} is not allowed in a leaf certificate)`);
  const d = checkDelegations(policies);
  if (!d.ok) return d;
  return ok({ name, path: [...path], policies, version, command });
}

/** One line for logs: `org:team:hello unikernel create (2 policies)`. */
export function describeChainCommand(c: ChainCommand): string {
  const p = c.policies.length;
  return `${nameToString(c.name)} ${describeLeafCommand(c.command)}${p === 0 ? '' : ` (${p} ${p === 1 ? 'policy' : 'policies'})`}`;
}
