/**
 * The event log family, for our own vmmd_log daemon (WIRE.md §8, SEMANTICS.md §10).
 *
 * Upstream dropped its log daemon in 1.2.0; in wire version 5, Command [2] and Data [2]
 * exist only to be rejected ("support for log dropped" / "support for log was dropped").
 * So our log messages must not reuse those tags: a version-5 peer (or our own decodeWire)
 * must refuse them rather than misread them.
 *
 * Design:
 *
 * - **On disk** we keep the 2021 record format, a concatenation of
 *   `LogRecord ::= SEQUENCE { version INTEGER, entry SEQUENCE { timestamp UTCTime, event LogEvent } }`.
 *   Records of version 3 and 4 (written by upstream's albatross-log) carry names as
 *   `SEQUENCE OF UTF8String` labels; records of version 5 (what we write) carry the
 *   textual names of version 5 in the same event shapes. Other versions are skipped,
 *   as upstream skips records of a version it does not know.
 *
 * - **On the socket** the log daemon speaks version-5 framing and headers, with a
 *   message type of its own:
 *
 *   ```asn1
 *   LogWire ::= SEQUENCE {
 *       header   Header,               -- exactly Wire's header (version 5, Int64, Name)
 *       payload  LogPayload }
 *   LogPayload ::= CHOICE {
 *       reply    [1] LogSuccess,       -- same tag and shape as Wire's reply (empty, string)
 *       failure  [2] UTF8String,       -- same as Wire's failure
 *       command  [4] LogCmd,           -- tag never used by Wire's Payload
 *       data     [5] LogEntry }        -- tag never used by Wire's Payload
 *   LogSuccess ::= CHOICE { empty [0] NULL, string [1] UTF8String }
 *   LogCmd     ::= CHOICE { subscribe [0] SinceCount }   -- SinceCount as in ConsoleCmd
 *   LogEntry   ::= SEQUENCE { timestamp GeneralizedTime, event LogEvent }  -- textual names
 *   ```
 *
 *   vmmd sends each event as `data [5]` (header name = the unikernel, sequence = its
 *   counter) and gets `reply empty`; a subscriber sends `command [4] subscribe` and
 *   receives `reply empty`, then `data [5]` entries. Because payload [4] and [5] are
 *   unknown to version-5 Wire, `decodeWire` refuses a log command or event, and
 *   `decodeLogWire` refuses every version-5 command and data message. The replies
 *   (`reply empty`, `failure`) are the same octets in both, which is harmless: they are
 *   answers, read only by whoever asked.
 */
import {
  type Codec, type Node, type Time, type TypeOf, choice, decodeDer, decodeFail, encodeDer, explicit,
  generalizedTime, int, map, name, octets, opt, seq, seqOf, sizedOctets, tagNull, utcTime, utf8,
} from '../asn.js';
import { type Name, nameKey, nameOfKey, parseLabel } from '../name.js';
import { readHeader } from '../der.js';
import { type Result } from '../result.js';
import { type Header, WIRE_VERSION, header } from './common.js';
import { sinceCount } from './console.js';
import { peekVersion } from './wire.js';

// ------------------------------------------------------------------ names

/**
 * A 2021 name (wire versions 3 and 4): the list of labels, root = empty list; the last
 * label is the unikernel. Labels are checked and lower-cased with today's rules, which
 * accept every 2021 label.
 */
export const nameV4: Codec<Name> = map(
  seqOf(utf8, 'Name (SEQUENCE OF UTF8String)'),
  'Name (SEQUENCE OF UTF8String)',
  (labels, at) => {
    const out: string[] = [];
    for (const l of labels) {
      const r = parseLabel(l);
      if (!r.ok) decodeFail(at, `${r.error} ${JSON.stringify(l)}`);
      else out.push(r.value);
    }
    return nameOfKey(out);
  },
  (n) => nameKey(n),
);

// ------------------------------------------------------------------ events

function makeLogEvent(what: string, nm: Codec<Name>) {
  const endpoint = seq('Endpoint', { name: nm, ip: sizedOctets('IPv4 address', 4), port: int });
  const tap = seq('LogTap', { bridge: utf8, tap: utf8 });
  return choice(what, {
    /** Written by the log daemon itself when it starts. */
    startup: tagNull(0),
    login: explicit(1, endpoint),
    logout: explicit(2, endpoint),
    unikernel_start_old0: explicit(3, seq('UnikernelStartOld0', {
      name: nm, pid: int, taps: seqOf(utf8), block: opt(utf8),
    })),
    unikernel_stop: explicit(4, seq('UnikernelStop', {
      name: nm,
      pid: int,
      /** Signal numbers are the OCaml runtime's (SIGTERM = -11), not POSIX numbers. */
      status: choice('ExitStatus', { exit: explicit(0, int), signal: explicit(1, int), stopped: explicit(2, int) }),
    })),
    /** Written after SIGHUP, when the file is re-opened. */
    hup: tagNull(5),
    unikernel_start_old1: explicit(6, seq('UnikernelStartOld1', {
      name: nm, pid: int, taps: seqOf(tap), blocks: seqOf(seq('LogBlock', { name: utf8, device: utf8 })),
    })),
    unikernel_start: explicit(7, seq('UnikernelStart', {
      name: nm, digest: octets, pid: int, taps: seqOf(tap), blocks: seqOf(seq('LogBlock', { name: utf8, device: nm })),
    })),
    /** albatross-ts: what happened to a unikernel, policy, block device or session (logAction). */
    action: explicit(8, seq('LogActionEvent', { name: nm, action: logAction(tap) })),
  });
}

/**
 * albatross-ts events beyond upstream's (tag [8] of LogEvent, never written by upstream):
 *
 * ```asn1
 * LogAction ::= CHOICE {
 *     create         [0] NULL,                  -- unikernel created (before its start)
 *     destroy        [1] NULL,                  -- unikernel destroyed on request
 *     exec           [2] SEQUENCE { pid INTEGER, argv SEQUENCE OF UTF8String,
 *                                   taps SEQUENCE OF SEQUENCE { bridge UTF8String, tap UTF8String } },
 *     policy-add     [3] NULL,                  -- name = the path
 *     policy-remove  [4] NULL,
 *     block-add      [5] INTEGER,               -- size in MB
 *     block-remove   [6] NULL,
 *     login          [7] UTF8String,            -- peer address ("192.0.2.1:4711", "[2001:db8::1]:4711")
 *     logout         [8] UTF8String }
 * ```
 */
function logAction(tap: Codec<{ bridge: string; tap: string }>) {
  return choice('LogAction', {
    create: tagNull(0),
    destroy: tagNull(1),
    exec: explicit(2, seq('LogExec', { pid: int, argv: seqOf(utf8), taps: seqOf(tap) })),
    policy_add: tagNull(3),
    policy_remove: tagNull(4),
    block_add: explicit(5, int),
    block_remove: tagNull(6),
    login: explicit(7, utf8),
    logout: explicit(8, utf8),
  });
}

/** LogEvent with version-5 textual names (what we write and send). */
export const logEvent = makeLogEvent('LogEvent', name);
/** LogEvent as written by upstream in 2021 (names as label lists); same TypeScript shape. */
export const logEventV4 = makeLogEvent('LogEvent (version 4)', nameV4);
export type LogEvent = TypeOf<typeof logEvent>;
export type LogAction = Extract<LogEvent, { kind: 'action' }>['value']['action'];

/** One line of text for an albatross-ts action event (without its name). */
export function describeLogAction(a: LogAction): string {
  switch (a.kind) {
    case 'create':
    case 'destroy':
    case 'policy_add':
    case 'policy_remove':
    case 'block_remove':
      return a.kind.replace('_', ' ');
    case 'exec':
      return `exec pid ${a.value.pid} argv ${JSON.stringify(a.value.argv)}${a.value.taps.map((t) => ` ${t.bridge}=${t.tap}`).join('')}`;
    case 'block_add':
      return `block add ${a.value} MB`;
    case 'login':
    case 'logout':
      return `${a.kind} from ${a.value}`;
    default: {
      const never: never = a;
      return never;
    }
  }
}

/** The name an event is about (for subscriptions), if any. */
export function logEventName(e: LogEvent): Name | undefined {
  switch (e.kind) {
    case 'startup':
    case 'hup':
      return undefined;
    case 'login':
    case 'logout':
    case 'unikernel_start_old0':
    case 'unikernel_stop':
    case 'unikernel_start_old1':
    case 'unikernel_start':
    case 'action':
      return e.value.name;
    default: {
      const never: never = e;
      return never;
    }
  }
}

// ------------------------------------------------------------------ on disk

export interface LogEntry {
  timestamp: Time;
  event: LogEvent;
}
export interface LogRecord {
  /** 3 or 4: 2021 record with label-list names; 5: textual names. */
  version: number;
  entry: LogEntry;
}

/** Accepts any single value; used to peek at a record's version before choosing its grammar. */
const anyValue: Codec<null> = {
  what: 'any value',
  tags: new Set(),
  encode: () => {
    throw new TypeError('anyValue cannot be encoded');
  },
  decode: () => null,
  toJson: () => null,
  fromJson: () => null,
};

const recordHead = seq('LogRecord', { version: int, entry: anyValue });
const diskEntryV4 = seq('LogEntry', { timestamp: utcTime, event: logEventV4 });
const diskEntryV5 = seq('LogEntry', { timestamp: utcTime, event: logEvent });
const recordV4 = seq('LogRecord', { version: int, entry: diskEntryV4 });
const recordV5 = seq('LogRecord', { version: int, entry: diskEntryV5 });
const recordFor = (v: number): typeof recordV5 | undefined => (v === 3 || v === 4 ? recordV4 : v === WIRE_VERSION ? recordV5 : undefined);

/** One on-disk record; the event grammar depends on the record's version. Timestamps are whole seconds (UTCTime). */
export const logRecord: Codec<LogRecord> = {
  what: 'LogRecord',
  tags: recordV5.tags,
  encode: (r) => {
    const c = recordFor(r.version);
    if (c === undefined) throw new RangeError(`unsupported log record version ${r.version}`);
    return c.encode(r);
  },
  decode: (n: Node, at) => {
    const v = recordHead.decode(n, at).version;
    const c = recordFor(v) ?? decodeFail(`${at}.version`, `unsupported log record version ${v}`);
    return c.decode(n, at);
  },
  toJson: (r) => (recordFor(r.version) ?? recordV5).toJson(r),
  fromJson: (j, at) => {
    const v = j !== null && typeof j === 'object' && !Array.isArray(j) ? j.version : undefined;
    const c = (typeof v === 'number' ? recordFor(v) : undefined) ?? decodeFail(`${at}.version`, `unsupported log record version ${String(v)}`);
    return c.fromJson(j, at);
  },
};

/** The DER bytes of one record, to be appended to the log file (version 5 unless given). */
export function encodeLogRecord(entry: LogEntry, version: number = WIRE_VERSION): Uint8Array {
  return encodeDer(logRecord, { version, entry });
}

export interface LogFile {
  records: LogRecord[];
  /** One message per record that was skipped (bad DER, unknown version, ...), with its offset. */
  skipped: string[];
  /** Octets at the end that do not form a complete record (e.g. an interrupted write). */
  truncated: number;
}

/**
 * Reads a log file: records one after the other; a record that does not decode is
 * skipped using its outer length; reading stops at the end or where even the length
 * cannot be read (SEMANTICS.md §10).
 */
export function readLogFile(bytes: Uint8Array): LogFile {
  const records: LogRecord[] = [];
  const skipped: string[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    let size: number;
    try {
      const h = readHeader(bytes, pos, bytes.length);
      size = h.headerLength + h.length;
    } catch {
      break;
    }
    if (pos + size > bytes.length) break;
    const r = decodeDer(logRecord, bytes.subarray(pos, pos + size));
    if (r.ok) records.push(r.value);
    else skipped.push(`record at byte ${pos}: ${r.error}`);
    pos += size;
  }
  return { records, skipped, truncated: bytes.length - pos };
}

// ------------------------------------------------------------------ on the socket

/** LogEntry on the socket: GeneralizedTime (milliseconds) and textual names. */
export const logEntry = seq('LogEntry', { timestamp: generalizedTime, event: logEvent });

export const logCmd = choice('LogCmd', {
  subscribe: explicit(0, sinceCount),
});
export type LogCmd = TypeOf<typeof logCmd>;

export const logSuccess = choice('LogSuccess', {
  empty: tagNull(0),
  string: explicit(1, utf8),
});
export type LogSuccess = TypeOf<typeof logSuccess>;

export const logPayload = choice(
  'LogPayload',
  {
    reply: explicit(1, logSuccess),
    failure: explicit(2, utf8),
    command: explicit(4, logCmd),
    data: explicit(5, logEntry),
  },
  {
    0: 'payload [0] is a version 5 command, not a log message',
    3: 'payload [3] is version 5 data, not a log message',
  },
);
export type LogPayload = TypeOf<typeof logPayload>;

export const logWire = seq('LogWire', { header, payload: logPayload });
export type LogWire = TypeOf<typeof logWire>;

/** Decodes one log message (frame body); like decodeWire, a version other than 5 is refused first. */
export function decodeLogWire(bytes: Uint8Array): Result<LogWire> {
  const v = peekVersion(bytes, 2);
  if (!v.ok) return v;
  return decodeDer(logWire, bytes);
}

export const encodeLogWire = (m: LogWire): Uint8Array => encodeDer(logWire, m);

/** Constructors for the messages of the log protocol. */
export const logMessage = {
  /** vmmd -> log: one event about `h.name`. */
  data: (h: Header, timestamp: Time, event: LogEvent): LogWire => ({ header: h, payload: { kind: 'data', value: { timestamp, event } } }),
  subscribe: (h: Header, since: TypeOf<typeof sinceCount>): LogWire => ({ header: h, payload: { kind: 'command', value: { kind: 'subscribe', value: since } } }),
  replyEmpty: (h: Header): LogWire => ({ header: h, payload: { kind: 'reply', value: { kind: 'empty', value: null } } }),
  failure: (h: Header, msg: string): LogWire => ({ header: h, payload: { kind: 'failure', value: msg } }),
};
