/**
 * A remote Albatross host reached over its TLS endpoint (vmmd_tls), as vmmc_bistro reaches it:
 * for each command a throw-away leaf certificate carrying the command, signed by a CA whose
 * certificate and key vmmd_web holds. That CA stands for one path on the host (`base`): names
 * there are `base:label`, and a listing is of `base`.
 */
import * as fs from 'node:fs';
import type * as x509 from '@peculiar/x509';
import type { FramedConn } from '../transport/conn.js';
import { type Name, type Path, nameToString, pathIsPrefix } from '../core/name.js';
import type { Command } from '../core/wire/wire.js';
import type { LeafCommand } from '../core/wire/leaf.js';
import type { SinceCount } from '../core/wire/console.js';
import { type UnikernelStatus, decodeStatusWire } from '../core/wire/status.js';
import { type Result, ok, err } from '../core/result.js';
import { certificateCn } from '../client/commands.js';
import { connectTls, validateOwnChain } from '../client/remote.js';
import { oneShotCertificate } from '../client/oneshot.js';
import { type KeyPair, loadPrivateKey } from '../provision/keys.js';
import { parseCertificates } from '../provision/certs.js';
import { COMMAND_TIMEOUT_MS, type Instance, REFUSED } from './instance.js';
import { showPath } from './access.js';

/**
 * What vmmd_web says when the endpoint does not run a status query or log subscription
 * (WIRE.md §8.3): upstream's endpoint closes after the handshake (it cannot decode the
 * extension), an albatross-ts one older than these commands refuses with `unknown Command`.
 */
export const NOT_RELAYED = {
  status: 'the endpoint does not relay the status query',
  log: 'the endpoint does not relay the event log',
} as const;

/** Is a failure the endpoint's refusal of the certificate's command (not an answer of a daemon)? */
export const endpointRefusal = (msg: string): boolean => /^refused: .*unknown Command \[1[67]\]/.test(msg);

/** The message for an endpoint that closed before any answer, or refused the command. */
export function notRelayed(what: keyof typeof NOT_RELAYED, failure?: string): string {
  return failure === undefined
    ? `${NOT_RELAYED[what]} (it closed the connection without an answer: upstream's endpoint, or an albatross-ts one without it)`
    : `${NOT_RELAYED[what]} (${failure})`;
}

/** How long connecting and the TLS handshake to a remote instance may take: a host that is down does not hold up the others for longer. */
export const REMOTE_CONNECT_TIMEOUT_MS = 5_000;

export interface RemoteConfig {
  name: string;
  host: string;
  port: number;
  /** Files: the CA (with its chain) that signs the leaves, its key, the CA of the server's certificate. */
  ca: string;
  caKey: string;
  serverCa: string;
  /** The path the CA stands for on that host (its certificate's CN chain), e.g. `team`. */
  path: string;
}

export class RemoteInstance implements Instance {
  readonly kind = 'remote';

  private constructor(
    readonly name: string, readonly host: string, readonly port: number, readonly base: Path,
    private readonly chain: x509.X509Certificate[], private readonly key: KeyPair, private readonly serverCa: string,
    private readonly timeoutMs: number,
  ) {}

  /** Reads the CA, its key and the server's CA; the error names the file. */
  static async load(c: RemoteConfig, base: Path, timeoutMs = REMOTE_CONNECT_TIMEOUT_MS): Promise<Result<RemoteInstance>> {
    const read = (f: string, what: string): Result<string> => {
      try {
        return ok(fs.readFileSync(f, 'utf8'));
      } catch (e) {
        return err(`cannot read the ${what} ${f}: ${(e as Error).message}`);
      }
    };
    const caText = read(c.ca, 'CA certificate');
    if (!caText.ok) return caText;
    const chain = parseCertificates(caText.value, c.ca);
    if (!chain.ok) return chain;
    const keyText = read(c.caKey, 'CA key');
    if (!keyText.ok) return keyText;
    const key = await loadPrivateKey(keyText.value, c.caKey);
    if (!key.ok) return key;
    const serverCa = read(c.serverCa, 'server CA');
    if (!serverCa.ok) return serverCa;
    return ok(new RemoteInstance(c.name, c.host, c.port, base, chain.value, key.value, serverCa.value, timeoutMs));
  }

  get where(): string {
    return `${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port} (${showPath(this.base)})`;
  }

  scope(userPath: Path): Path | undefined {
    if (pathIsPrefix(userPath, this.base) || pathIsPrefix(this.base, userPath)) return this.base;
    return undefined;
  }

  /** The name as the CA sees it: `base:label` is `label`, `base` is the root; policies are paths below `base`. */
  private relative(n: Name, cmd: Command): Result<Name> {
    if (!pathIsPrefix(this.base, n.path)) return err(`${nameToString(n)} is not below ${showPath(this.base)}, the path of instance ${this.name}`);
    const rest = n.path.slice(this.base.length);
    if (cmd.kind === 'policy') return ok({ path: rest });
    if (rest.length > 0) return err(`on instance ${this.name} names are ${showPath(this.base)}:LABEL; ${nameToString(n)} is deeper`);
    return ok(n.label === undefined ? { path: [] } : { path: [], label: n.label });
  }

  async open(n: Name, cmd: Command): Promise<Result<FramedConn>> {
    const rel = this.relative(n, cmd);
    if (!rel.ok) return err(`${REFUSED}${rel.error}`);
    const cn = certificateCn(rel.value, cmd);
    if (!cn.ok) return err(`${REFUSED}${cn.error}`);
    return this.connectWith(cn.value, cmd);
  }

  /**
   * A status query or log subscription (WIRE.md §8.3): the leaf's CN is the name below
   * `base` (a label, a path `dev:`, or `.` for `base` itself), which the endpoint appends to
   * the CA's path.
   */
  private observe(n: Name, cmd: LeafCommand): Promise<Result<FramedConn>> {
    if (!pathIsPrefix(this.base, n.path)) return Promise.resolve(err(`${REFUSED}${nameToString(n)} is not below ${showPath(this.base)}, the path of instance ${this.name}`));
    const rest = n.path.slice(this.base.length);
    const cn = rest.length === 0 ? (n.label ?? '.') : nameToString({ path: rest, label: n.label });
    return this.connectWith(cn, cmd);
  }

  /** vmmd's status at or below `n` through the endpoint; the names of the answer are relative to `n` as locally. */
  async status(n: Name): Promise<Result<UnikernelStatus[]>> {
    const c = await this.observe(n, { kind: 'status', value: { kind: 'status', value: null } });
    if (!c.ok) return c;
    try {
      const r = await c.value.read(COMMAND_TIMEOUT_MS);
      if (r.kind === 'end') return err(notRelayed('status'));
      if (r.kind === 'error') return err(`status: ${r.error}`);
      const m = decodeStatusWire(r.body);
      if (!m.ok) return err(`status: ${m.error}`);
      const pl = m.value.payload;
      if (pl.kind === 'failure') return err(endpointRefusal(pl.value) ? notRelayed('status', pl.value) : `status: ${pl.value}`);
      if (pl.kind !== 'reply') return err('status: unexpected answer');
      return ok(pl.value);
    } finally {
      c.value.close();
    }
  }

  /** A vmmd_log subscription through the endpoint: log messages (reply, then entries) arrive on the connection. */
  openLog(n: Name, since: SinceCount): Promise<Result<FramedConn>> {
    return this.observe(n, { kind: 'log', value: { kind: 'subscribe', value: since } });
  }

  private async connectWith(cn: string, cmd: LeafCommand): Promise<Result<FramedConn>> {
    const leaf = await oneShotCertificate(this.chain[0], this.key, cn, cmd, 'ed25519');
    if (!leaf.ok) return err(`${REFUSED}the CA's policy does not allow it: ${leaf.error}`);
    const chainPem = [leaf.value.certPem, ...this.chain.map((c) => `${c.toString('pem')}\n`)];
    const v = validateOwnChain(chainPem, this.serverCa);
    if (!v.ok) return err(`our certificate chain does not validate against the server's CA: ${v.error}`);
    const c = await connectTls(this.host, this.port, chainPem, leaf.value.keyPem, this.serverCa, this.timeoutMs);
    return c.ok ? c : err(c.error.message);
  }
}
