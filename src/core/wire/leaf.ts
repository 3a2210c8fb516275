/**
 * The command of a leaf certificate as albatross-ts reads it (WIRE.md §8.3, CERTS.md §3.3):
 * upstream's Command CHOICE ([0]-[5], [2] rejected) and two alternatives of our own, which
 * only the certificate extension carries, never a Wire message:
 *
 * ```asn1
 * LeafCommand ::= CHOICE {
 *     console  [0] ConsoleCmd,  stats [1] StatsCmd,  unikernel [3] UnikernelCmd,
 *     policy   [4] PolicyCmd,   block [5] BlockCmd,          -- as Command (WIRE.md §4)
 *     status  [16] StatusCmd,   -- vmmd's status query (§8.2): CHOICE { status [0] NULL }
 *     log     [17] LogCmd }     -- vmmd_log subscription (§8.1): CHOICE { subscribe [0] SinceCount }
 * CertExtension ::= SEQUENCE { version INTEGER (5), command LeafCommand }
 * ```
 *
 * Tags [16] and [17] rather than the next free ones: upstream's Command grows from [5]
 * upwards, and a certificate we issued must never mean another command to a later upstream
 * endpoint; any tag upstream v2.7.2 does not know makes it refuse the extension. The
 * inner values are the ones our status and log messages carry, so the endpoint forwards
 * them unchanged. Wire decoding (wire.ts) is untouched: daemons never see these tags.
 */
import { type TypeOf, choice, decodeDer, encodeDer, explicit, seq } from '../asn.js';
import type { Result } from '../result.js';
import { WIRE_VERSION, version } from './common.js';
import { consoleCmd } from './console.js';
import { statsCmd } from './stats.js';
import { policyCmd } from './policy.js';
import { blockCmd } from './block.js';
import { unikernelCmd } from './unikernel.js';
import { statusCmd } from './status.js';
import { logCmd } from './log.js';
import { type Command, describeCommand, peekVersion } from './wire.js';

/** Command alternative tags of the albatross-ts leaf commands (never used by upstream's Command). */
export const LEAF_STATUS_TAG = 16;
export const LEAF_LOG_TAG = 17;

export const leafCommand = choice(
  'Command',
  {
    console: explicit(0, consoleCmd),
    stats: explicit(1, statsCmd),
    unikernel: explicit(3, unikernelCmd),
    policy: explicit(4, policyCmd),
    block: explicit(5, blockCmd),
    status: explicit(LEAF_STATUS_TAG, statusCmd),
    log: explicit(LEAF_LOG_TAG, logCmd),
  },
  { 2: 'support for log dropped' },
);
/** A Command, or one of the leaf-only commands `status` and `log`. */
export type LeafCommand = TypeOf<typeof leafCommand>;
/** The leaf-only commands: what a certificate carries beyond upstream's Command. */
export type OwnLeafCommand = Extract<LeafCommand, { kind: 'status' | 'log' }>;

/** Is it one of upstream's commands (which a Wire message can carry)? */
export const isWireCommand = (c: LeafCommand): c is Command => c.kind !== 'status' && c.kind !== 'log';

/** extnValue of the Albatross extension as our endpoint reads it. */
export const leafExtension = seq('CertExtension', { version, command: leafCommand });
export type LeafExtension = TypeOf<typeof leafExtension>;

/** Decodes an extnValue (upstream's commands and ours); the version is checked first, as decodeCertExtension does. */
export function decodeLeafExtension(bytes: Uint8Array): Result<LeafExtension> {
  const v = peekVersion(bytes, 1);
  if (!v.ok) return v;
  return decodeDer(leafExtension, bytes);
}

/** The extnValue octets for a leaf command (version 5); upstream's commands encode as encodeCertExtension does. */
export const encodeLeafExtension = (cmd: LeafCommand): Uint8Array =>
  encodeDer(leafExtension, { version: WIRE_VERSION, command: cmd });

/** Short name for logs: describeCommand's, `status` or `log subscribe`. */
export function describeLeafCommand(cmd: LeafCommand): string {
  if (cmd.kind === 'status') return 'status';
  if (cmd.kind === 'log') return 'log subscribe';
  return describeCommand(cmd);
}
