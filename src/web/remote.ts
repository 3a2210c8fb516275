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
import { type Result, ok, err } from '../core/result.js';
import { certificateCn } from '../client/commands.js';
import { connectTls, validateOwnChain } from '../client/remote.js';
import { oneShotCertificate } from '../client/oneshot.js';
import { type KeyPair, loadPrivateKey } from '../provision/keys.js';
import { parseCertificates } from '../provision/certs.js';
import { type Instance, REFUSED } from './instance.js';
import { showPath } from './access.js';

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
    const leaf = await oneShotCertificate(this.chain[0], this.key, cn.value, cmd, 'ed25519');
    if (!leaf.ok) return err(`${REFUSED}the CA's policy does not allow it: ${leaf.error}`);
    const chainPem = [leaf.value.certPem, ...this.chain.map((c) => `${c.toString('pem')}\n`)];
    const v = validateOwnChain(chainPem, this.serverCa);
    if (!v.ok) return err(`our certificate chain does not validate against the server's CA: ${v.error}`);
    const c = await connectTls(this.host, this.port, chainPem, leaf.value.keyPem, this.serverCa, this.timeoutMs);
    return c.ok ? c : err(c.error.message);
  }
}
