/**
 * The leaf-only commands at the TLS endpoint (WIRE.md §8.3): the answer to a status query
 * (one status message) and a log subscription (vmmd_log's reply, then entries), printed with
 * the output of vmmc_local's info status and log.
 */
import type { FramedConn } from '../transport/conn.js';
import { nameToString, type Name } from '../core/name.js';
import type { OwnLeafCommand } from '../core/wire/leaf.js';
import { decodeStatusWire, statusWire } from '../core/wire/status.js';
import { decodeLogWire } from '../core/wire/log.js';
import { describeLogMessage, docText, logDoc, logMessageJson, statusDoc, statusText } from './output.js';
import { type SessionOptions, CODE, NO_CONSOLE_EXIT, NO_FOLLOW_QUIET_MS } from './session.js';

/** Why the peer closed without answering: vmmd without the status query, or an endpoint without the leaf-only commands. */
export const notRelayedText = (cmd: OwnLeafCommand, endpoint = true): string => !endpoint
  ? 'vmmd closed the connection without answering the status query (a vmmd without it: upstream, or albatross-ts before it)'
  : `the endpoint closed the connection without an answer: it does not relay ${cmd.kind === 'status' ? 'the status query' : 'the event log'} (upstream's endpoint, or albatross-ts before it), or refused the certificate`;

const complain = (o: SessionOptions, text: string): void => {
  o.stderr.write(`${o.binary}: ${text.replace(/\s*\n\s*/g, ' ').trim()}\n`);
};

/** Reads and prints the answers of a status or log certificate; the exit code as for other commands. */
export async function runObserve(conn: FramedConn, name: Name, cmd: OwnLeafCommand, o: SessionOptions): Promise<number> {
  const readError = (error: string): number => {
    const c = o.classify?.(error);
    complain(o, c?.message ?? `communication failure: ${error}`);
    return c?.code ?? CODE.communication;
  };
  if (cmd.kind === 'status') {
    const r = await conn.read(60_000);
    if (r.kind === 'end') {
      complain(o, `communication failure: ${notRelayedText(cmd, o.endpoint === true)}`);
      return CODE.communication;
    }
    if (r.kind === 'error') return readError(r.error);
    const m = decodeStatusWire(r.body);
    if (!m.ok) return readError(m.error);
    const p = m.value.payload;
    if (p.kind === 'failure') {
      complain(o, `failure: ${p.value}`);
      return CODE.remoteFailed;
    }
    if (p.kind !== 'reply') return readError('unexpected command from the endpoint');
    const status = { list: p.value, now: Date.now() };
    if (!o.json) o.stdout.write(statusText(o.style, status));
    else if (o.jsonWire) o.stdout.write(`${JSON.stringify(statusWire.toJson(m.value))}\n`);
    else o.stdout.write(docText(statusDoc(status)));
    return CODE.ok;
  }
  // the log: vmmd_log's reply first, then the history and what follows; --no-follow ends
  // when nothing more arrives for a moment after the history
  const follow = o.follow !== false;
  let events = 0;
  for (let seen = 0; ; seen++) {
    const quiet = !follow && seen > 0;
    const r = await conn.read(quiet ? NO_FOLLOW_QUIET_MS : undefined);
    if (r.kind === 'end' && seen === 0) {
      complain(o, `communication failure: ${notRelayedText(cmd)}`);
      return CODE.communication;
    }
    if (r.kind === 'end' || (quiet && r.kind === 'error' && r.error === `timed out after ${NO_FOLLOW_QUIET_MS} ms`)) {
      if (!follow && events === 0 && name.label !== undefined) {
        complain(o, `no log entries for ${nameToString(name)}`);
        return NO_CONSOLE_EXIT;
      }
      return CODE.ok;
    }
    if (r.kind === 'error') return readError(r.error);
    const m = decodeLogWire(r.body);
    if (!m.ok) return readError(m.error);
    if (m.value.payload.kind === 'failure') {
      o.stderr.write(`${o.binary}: ${describeLogMessage(o.style, m.value)}`);
      return CODE.remoteFailed;
    }
    if (m.value.payload.kind === 'data') events++;
    if (!o.json) o.stdout.write(describeLogMessage(o.style, m.value));
    else if (o.jsonWire) o.stdout.write(logMessageJson(m.value));
    else {
      const doc = logDoc(m.value);
      if (doc !== undefined) o.stdout.write(docText(doc));
    }
  }
}
