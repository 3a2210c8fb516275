/**
 * The local handler: the one-command proxy for a Unix stream connection (stdin/stdout
 * under inetd or systemd, no TLS). It reads one wire message, optionally confines it to
 * a subtree (`--path org:team`: the path of every name must be `org:team` or below it, and
 * policies can be changed only strictly below it, so a confined operator cannot enlarge its
 * own delegation), then routes and relays exactly like the TLS handler. The unikernel
 * `:team` (root path, label `team`) is outside `team:` although it shares its trie key.
 */
import type { Duplex } from 'node:stream';
import { type Name, type Path, nameIsWithin, nameToString, pathToString } from '../core/name.js';
import { limits } from '../core/limits.js';
import { type Command, type Wire, describeCommand, failure } from '../core/wire/wire.js';
import { FramedConn } from '../transport/conn.js';
import { type ProxyOptions, proxyCommand } from './proxy.js';
import type { Logger } from './tls-handler.js';

export interface LocalOptions extends ProxyOptions {
  log: Logger;
  /** Confine every request to this subtree. */
  path?: Path;
}

/** Commands only daemons send to each other; never relayed for a client. */
function internalCommand(cmd: Command): boolean {
  return (cmd.kind === 'console' && cmd.value.kind === 'add') || (cmd.kind === 'stats' && cmd.value.kind !== 'subscribe');
}

/** Why a request is refused for a client confined to `prefix`, if it is. */
export function confinementError(name: Name, cmd: Command, prefix: Path | undefined): string | undefined {
  if (internalCommand(cmd)) return `${describeCommand(cmd)} is not accepted from clients`;
  if (prefix === undefined) return undefined;
  if (!nameIsWithin(name, prefix)) return `${nameToString(name)} is outside ${pathToString(prefix)}`;
  // vmmd applies a policy command to the path of its name (a label is ignored)
  if (cmd.kind === 'policy' && cmd.value.kind !== 'info' && name.path.length <= prefix.length) {
    return `${describeCommand(cmd)} for ${nameToString(name)}: policies can only be changed below ${pathToString(prefix)}`;
  }
  return undefined;
}

export async function handleLocalConnection(stream: Duplex, opts: LocalOptions): Promise<boolean> {
  const client = new FramedConn(stream);
  try {
    const m = await client.readMessage(opts.commandTimeoutMs ?? limits.commandTimeoutMs);
    if (m.kind !== 'message') {
      opts.log.error(`local client: no command: ${m.kind === 'end' ? 'connection closed' : m.error}`);
      return false;
    }
    const w: Wire = m.wire;
    if (w.payload.kind !== 'command') {
      opts.log.error(`local client: expected a command, got a ${w.payload.kind}`);
      await client.writeMessage(failure(w.header, `expected a command, got a ${w.payload.kind}`)).catch(() => {});
      return false;
    }
    const cmd = w.payload.value;
    const what = `${nameToString(w.header.name)} ${describeCommand(cmd)}`;
    const refusal = confinementError(w.header.name, cmd, opts.path);
    if (refusal !== undefined) {
      opts.log.error(`local client: refused: ${refusal}`);
      await client.writeMessage(failure(w.header, refusal)).catch(() => {});
      return false;
    }
    const outcome = await proxyCommand(client, { name: w.header.name, policies: [], version: w.header.version, command: cmd }, opts);
    (outcome.replied ? opts.log.info : opts.log.error).call(opts.log, `local client: ${what}: ${outcome.result}`);
    return outcome.replied;
  } finally {
    client.close();
  }
}
