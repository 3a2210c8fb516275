/**
 * The version-5 Wire message (WIRE.md §4): header and payload, the Command, Success and
 * Data CHOICEs over every family, the X.509 extension value, and small constructors.
 *
 * CHOICE values are `{ kind, value }` with the alternative names below; retired and
 * rejected tags make decoding fail with a message saying so (upstream's messages where
 * it has one: "support for log dropped", "support for log was dropped").
 */
import {
  type DecodeLimits, type TypeOf, bool, choice, decodeDer, encodeDer, explicit, octets, seq, seqOf, tagNull, name, utf8,
} from '../asn.js';
import { readHeader } from '../der.js';
import { type Name } from '../name.js';
import { type Result, ok, err } from '../result.js';
import { type Header, WIRE_VERSION, header, version } from './common.js';
import { consoleCmd, consoleData } from './console.js';
import { statsCmd, statsData } from './stats.js';
import { policyCmd, namedPolicyList } from './policy.js';
import { blockCmd, blockData, blockDeviceInfoList, oldBlockDeviceImage } from './block.js';
import { unikernelCmd, namedInfoList, namedInfoV4List, namedInfoV5List } from './unikernel.js';

export { type Header, WIRE_VERSION, header };

// ------------------------------------------------------------------ command

export const wireCommand = choice(
  'Command',
  {
    console: explicit(0, consoleCmd),
    stats: explicit(1, statsCmd),
    unikernel: explicit(3, unikernelCmd),
    policy: explicit(4, policyCmd),
    block: explicit(5, blockCmd),
  },
  { 2: 'support for log dropped' },
);
export type Command = TypeOf<typeof wireCommand>;

// ------------------------------------------------------------------ success

/** Answer to unikernel get [11]: the stored image, compressed (zlib) or not. */
export const unikernelImage = seq('UnikernelImage', {
  compressed: bool,
  image: octets,
});
export type UnikernelImage = TypeOf<typeof unikernelImage>;

export const wireSuccess = choice(
  'Success',
  {
    empty: tagNull(0),
    string: explicit(1, utf8),
    policies: explicit(2, namedPolicyList),
    block_devices: explicit(4, blockDeviceInfoList),
    unikernel_image: explicit(6, unikernelImage),
    old_block_device_image: explicit(7, oldBlockDeviceImage),
    unikernel_info_v4: explicit(9, namedInfoV4List),
    block_device_image: explicit(10, bool),
    unikernel_info_v5: explicit(11, namedInfoV5List),
    consoles: explicit(12, seqOf(name)),
    unikernel_info: explicit(13, namedInfoList),
  },
  {
    3: 'retired Success [3] (old unikernel list) is not supported',
    5: 'retired Success [5] (old unikernel info) is not supported',
    8: 'retired Success [8] (old unikernel info) is not supported',
  },
);
export type Success = TypeOf<typeof wireSuccess>;

// ------------------------------------------------------------------ data

export const wireData = choice(
  'Data',
  {
    statistics: explicit(1, statsData),
    console: explicit(3, consoleData),
    block: explicit(4, blockData),
  },
  {
    0: 'retired Data [0] (console data with UTCTime) is not supported',
    2: 'support for log was dropped',
  },
);
export type DataMsg = TypeOf<typeof wireData>;

// ------------------------------------------------------------------ envelope

export const payload = choice(
  'Payload',
  {
    command: explicit(0, wireCommand),
    reply: explicit(1, wireSuccess),
    failure: explicit(2, utf8),
    data: explicit(3, wireData),
  },
  {
    // albatross-ts log protocol (log.ts); never valid in a version-5 Wire message
    4: 'unknown Payload [4] (a log command, not a Wire message)',
    5: 'unknown Payload [5] (a log event, not a Wire message)',
  },
);
export type Payload = TypeOf<typeof payload>;

export const wire = seq('Wire', { header, payload });
export type Wire = TypeOf<typeof wire>;

// ------------------------------------------------------------------ version peek

function formatVersion(v: bigint): string {
  // OCaml's %X prints a negative (63-bit) int as its unsigned two's complement
  return (v < 0n ? BigInt.asUintN(63, v) : v).toString(16).toUpperCase();
}

/**
 * Reads the version INTEGER at the start of the message before decoding the rest, as
 * upstream does: `depth` = 2 for Wire (SEQUENCE { SEQUENCE { version ...} ...}), 1 for the
 * certificate extension. A version other than 5 fails with upstream's message; when the
 * version cannot even be found the full decoder reports what is wrong, so this succeeds.
 */
export function peekVersion(bytes: Uint8Array, depth: number): Result<void> {
  try {
    let pos = 0;
    let end = bytes.length;
    for (let i = 0; i < depth; i++) {
      const h = readHeader(bytes, pos, end);
      if (h.cls !== 0 || h.tag !== 16 || !h.constructed) return ok(undefined);
      pos += h.headerLength;
      end = Math.min(end, pos + h.length);
    }
    const h = readHeader(bytes, pos, end);
    if (h.cls !== 0 || h.tag !== 2 || h.constructed || h.length < 1 || h.length > 8) return ok(undefined);
    pos += h.headerLength;
    if (pos + h.length > end) return ok(undefined);
    let v = 0n;
    for (let i = 0; i < h.length; i++) v = (v << 8n) | BigInt(bytes[pos + i]);
    if (bytes[pos] & 0x80) v -= 1n << BigInt(8 * h.length);
    return v === BigInt(WIRE_VERSION) ? ok(undefined) : err(`unknown version number 0x${formatVersion(v)}`);
  } catch {
    return ok(undefined);
  }
}

// ------------------------------------------------------------------ boundary

/**
 * Decodes one frame body. Never throws; the error says what and where. `lim` bounds the
 * DER walk (default: limits.ts; pass a larger maxBytes with a larger frame limit).
 */
export function decodeWire(bytes: Uint8Array, lim?: DecodeLimits): Result<Wire> {
  const v = peekVersion(bytes, 2);
  if (!v.ok) return v;
  return decodeDer(wire, bytes, lim);
}

/** DER encoding of a message (a frame body). Throws only on values outside the types. */
export const encodeWire = (w: Wire): Uint8Array => encodeDer(wire, w);

// ------------------------------------------------------------------ certificate extension

/** OID of the Albatross X.509 extension (CERTS.md §2). */
export const ALBATROSS_OID = '1.3.6.1.4.1.49836.42';

/** extnValue of the Albatross extension: SEQUENCE { version 5, command }. */
export const certExtension = seq('CertExtension', { version, command: wireCommand });
export type CertExtension = TypeOf<typeof certExtension>;

export function decodeCertExtension(bytes: Uint8Array): Result<CertExtension> {
  const v = peekVersion(bytes, 1);
  if (!v.ok) return v;
  return decodeDer(certExtension, bytes);
}

/** The extnValue octets for a command (always version 5). */
export const encodeCertExtension = (cmd: Command): Uint8Array =>
  encodeDer(certExtension, { version: WIRE_VERSION, command: cmd });

// ------------------------------------------------------------------ constructors

export const makeHeader = (n: Name, sequence: bigint = 0n): Header => ({ version: WIRE_VERSION, sequence, name: n });

/** A command message as a client sends it (sequence 0 unless given). */
export const command = (n: Name, cmd: Command, sequence: bigint = 0n): Wire => ({
  header: makeHeader(n, sequence),
  payload: { kind: 'command', value: cmd },
});
/** A reply echoing the request's (decoded) header. */
export const reply = (h: Header, s: Success): Wire => ({ header: h, payload: { kind: 'reply', value: s } });
export const replyEmpty = (h: Header): Wire => reply(h, { kind: 'empty', value: null });
export const replyString = (h: Header, s: string): Wire => reply(h, { kind: 'string', value: s });
export const failure = (h: Header, msg: string): Wire => ({ header: h, payload: { kind: 'failure', value: msg } });
export const data = (h: Header, d: DataMsg): Wire => ({ header: h, payload: { kind: 'data', value: d } });

// ------------------------------------------------------------------ describing

type UnikernelKind = TypeOf<typeof unikernelCmd>['kind'];
const UNIKERNEL_NAMES: Record<UnikernelKind, string> = {
  destroy: 'unikernel destroy',
  create_v3: 'unikernel create (v3)',
  force_create_v3: 'unikernel force create (v3)',
  get: 'unikernel get',
  restart: 'unikernel restart',
  info_v4: 'old unikernel info4',
  create_v4: 'unikernel create (v4)',
  force_create_v4: 'unikernel force create (v4)',
  info_v5: 'old unikernel info5',
  info: 'unikernel info',
  create: 'unikernel create',
  force_create: 'unikernel force create',
};
const CONSOLE_NAMES: Record<TypeOf<typeof consoleCmd>['kind'], string> = {
  add: 'console add',
  subscribe: 'console subscribe',
  list_inactive: 'console list inactive',
};
const STATS_NAMES: Record<TypeOf<typeof statsCmd>['kind'], string> = {
  add: 'stats add',
  remove: 'stats remove',
  subscribe: 'stats subscribe',
  initial: 'stats initial',
};
const POLICY_NAMES: Record<TypeOf<typeof policyCmd>['kind'], string> = {
  info: 'policy info',
  add: 'policy add',
  remove: 'policy remove',
};
const BLOCK_NAMES: Record<TypeOf<typeof blockCmd>['kind'], string> = {
  info: 'block info',
  add: 'block add',
  remove: 'block remove',
  add_old: 'old block add',
  set_old: 'old block set',
  dump_old: 'old block dump',
  dump: 'block dump',
  set: 'block set',
};

/** Upstream-style short name of a command, for logs ("unikernel create", "console subscribe"). */
export function describeCommand(cmd: Command): string {
  switch (cmd.kind) {
    case 'console':
      return CONSOLE_NAMES[cmd.value.kind];
    case 'stats':
      return STATS_NAMES[cmd.value.kind];
    case 'unikernel':
      return UNIKERNEL_NAMES[cmd.value.kind];
    case 'policy':
      return POLICY_NAMES[cmd.value.kind];
    case 'block':
      return BLOCK_NAMES[cmd.value.kind];
    default: {
      const never: never = cmd;
      return never;
    }
  }
}

export type Daemon = 'vmmd' | 'console' | 'stats';
/** single: one answer; read: answer then an unbounded stream; dump: answer, data, end marker. */
export type Mode = 'single' | 'read' | 'dump';

/** Which daemon handles a command and how many answers follow (WIRE.md §2 table). */
export function commandEndpoint(cmd: Command): { daemon: Daemon; mode: Mode } {
  switch (cmd.kind) {
    case 'unikernel':
    case 'policy':
      return { daemon: 'vmmd', mode: 'single' };
    case 'block':
      return { daemon: 'vmmd', mode: cmd.value.kind === 'dump' ? 'dump' : 'single' };
    case 'console':
      return { daemon: 'console', mode: cmd.value.kind === 'subscribe' ? 'read' : 'single' };
    case 'stats':
      if (cmd.value.kind === 'initial') return { daemon: 'vmmd', mode: 'single' };
      return { daemon: 'stats', mode: cmd.value.kind === 'subscribe' ? 'read' : 'single' };
    default: {
      const never: never = cmd;
      return never;
    }
  }
}
