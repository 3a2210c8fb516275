/**
 * What a message is, from its first octets: the header (to answer it) and the command's tags,
 * read before the rest of a long frame is accepted. vmmd uses it to tell the few messages
 * that may be large (those carrying a unikernel image or inline block data) from every other
 * command, which is small. WIRE.md §4: Wire ::= SEQUENCE { Header, Payload }, the payload
 * `command [0]`, the command family ([3] unikernel, [5] block, ...), then the command's tag.
 */
import { type Result, ok, err } from '../result.js';
import { readHeader } from '../der.js';
import { decodeDer } from '../asn.js';
import { type Header, header } from './common.js';

export interface PeekedMessage {
  /** The request's header, to answer it with the same one. */
  header: Header;
  /** "unikernel info", "unikernel create", "reply", ... */
  what: string;
  /** Does this message carry a unikernel image or block data (and may thus be large)? */
  carriesData: boolean;
}

const FAMILY: Record<number, string> = { 0: 'console', 1: 'stats', 2: 'log', 3: 'unikernel', 4: 'policy', 5: 'block' };
const PAYLOAD: Record<number, string> = { 1: 'reply', 2: 'failure', 3: 'data' };
const UNIKERNEL: Record<number, string> = {
  3: 'destroy', 9: 'create (v3)', 10: 'force create (v3)', 11: 'get', 14: 'restart', 15: 'info (v4)',
  16: 'create (v4)', 17: 'force create (v4)', 18: 'info (v5)', 19: 'info', 20: 'create', 21: 'force create',
};
const BLOCK: Record<number, string> = { 0: 'info', 1: 'add', 2: 'remove', 3: 'old add', 4: 'old set', 5: 'old dump', 6: 'dump', 7: 'set' };
/** Each family's commands by tag: console, stats, log, unikernel, policy, block. */
const COMMANDS: Record<number, Record<number, string>> = {
  0: { 0: 'add', 2: 'subscribe', 3: 'list-inactive' },
  1: { 0: 'add', 1: 'remove', 2: 'subscribe', 3: 'initial' },
  3: UNIKERNEL,
  4: { 0: 'info', 1: 'add', 2: 'remove' },
  5: BLOCK,
};
/** Unikernel creates (every version) carry an image; the legacy block add and set carry the data inline. */
const UNIKERNEL_DATA = new Set([9, 10, 16, 17, 20, 21]);
const BLOCK_DATA = new Set([3, 4]);

const CONTEXT = 2;

/**
 * Reads the header and the command tags from `prefix`, the first octets of a frame body (the
 * rest may not have arrived). The header must lie within `prefix`; the error says what is wrong.
 */
export function peekMessage(prefix: Uint8Array): Result<PeekedMessage> {
  try {
    const end = prefix.length;
    const w = readHeader(prefix, 0, end);
    if (w.cls !== 0 || w.tag !== 16 || !w.constructed) return err('not a DER SEQUENCE (a Wire message)');
    const hStart = w.headerLength;
    const h = readHeader(prefix, hStart, end);
    const hEnd = hStart + h.headerLength + h.length;
    if (hEnd > end) return err(`its header does not end within the first ${end} bytes`);
    const hd = decodeDer(header, prefix.subarray(hStart, hEnd));
    if (!hd.ok) return err(`header: ${hd.error}`);
    const p = readHeader(prefix, hEnd, end);
    if (p.cls !== CONTEXT) return err('payload is not a context-tagged choice');
    if (p.tag !== 0) return ok({ header: hd.value, what: PAYLOAD[p.tag] ?? `payload [${p.tag}]`, carriesData: false });
    const f = readHeader(prefix, hEnd + p.headerLength, end);
    const family = FAMILY[f.tag] ?? `command [${f.tag}]`;
    if (f.cls !== CONTEXT) return ok({ header: hd.value, what: family, carriesData: false });
    const c = readHeader(prefix, hEnd + p.headerLength + f.headerLength, end);
    const what = `${family} ${COMMANDS[f.tag]?.[c.tag] ?? `[${c.tag}]`}`;
    const carriesData = c.cls === CONTEXT && ((f.tag === 3 && UNIKERNEL_DATA.has(c.tag)) || (f.tag === 5 && BLOCK_DATA.has(c.tag)));
    return ok({ header: hd.value, what, carriesData });
  } catch (e) {
    return err((e as Error).message);
  }
}
