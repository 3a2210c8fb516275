/**
 * vmmd's status query, for our own clients on the host (WIRE.md §8.2, SEMANTICS.md §5.6):
 * every unikernel vmmd supervises with its state, the running ones with pid and start time,
 * those waiting out a restart back-off with their failures and when the next start is due.
 *
 * Upstream's `info` reply lists running unikernels only and has no room for a state; it stays
 * as it is. The query is a message of its own, framed and headed as Wire, whose payload tags
 * are used neither by version-5 Wire ([0]-[3]) nor by the log protocol ([4], [5]):
 *
 * ```asn1
 * StatusWire ::= SEQUENCE { header Header, payload StatusPayload }
 * StatusPayload ::= CHOICE {
 *     failure  [2] UTF8String,                    -- same as Wire's failure
 *     command  [6] StatusCmd,
 *     reply    [7] SEQUENCE OF UnikernelStatus }
 * StatusCmd ::= CHOICE { status [0] NULL }        -- the unikernels at or below the header name
 * UnikernelStatus ::= SEQUENCE {
 *     name   Name,
 *     state  CHOICE {
 *         running    [0] SEQUENCE { pid INTEGER, started GeneralizedTime, failures INTEGER },
 *         restarting [1] SEQUENCE { failures INTEGER, due GeneralizedTime } } }
 * ```
 *
 * A version-5 peer (and our own decodeWire) refuses these messages, so an upstream vmmd
 * closes the connection without an answer, and nothing upstream sends is read as one.
 */
import { type TypeOf, choice, decodeDer, encodeDer, explicit, generalizedTime, int, name, seq, seqOf, tagNull, utf8 } from '../asn.js';
import type { Result } from '../result.js';
import { header } from './common.js';
import { peekVersion } from './wire.js';

export const unikernelStatus = seq('UnikernelStatus', {
  name,
  state: choice('UnikernelState', {
    running: explicit(0, seq('Running', { pid: int, started: generalizedTime, failures: int })),
    restarting: explicit(1, seq('Restarting', { failures: int, due: generalizedTime })),
  }),
});
export type UnikernelStatus = TypeOf<typeof unikernelStatus>;

/** StatusCmd ::= CHOICE { status [0] NULL } (also the certificate's `[16] status`, leaf.ts). */
export const statusCmd = choice('StatusCmd', { status: tagNull(0) });
export type StatusCmd = TypeOf<typeof statusCmd>;

export const statusPayload = choice(
  'StatusPayload',
  {
    failure: explicit(2, utf8),
    command: explicit(6, statusCmd),
    reply: explicit(7, seqOf(unikernelStatus)),
  },
  {
    0: 'payload [0] is a version 5 command, not a status message',
    1: 'payload [1] is a version 5 reply, not a status message',
    3: 'payload [3] is version 5 data, not a status message',
  },
);

export const statusWire = seq('StatusWire', { header, payload: statusPayload });
export type StatusWire = TypeOf<typeof statusWire>;

/** Decodes one status message (frame body); a version other than 5 is refused first. */
export function decodeStatusWire(bytes: Uint8Array): Result<StatusWire> {
  const v = peekVersion(bytes, 2);
  if (!v.ok) return v;
  return decodeDer(statusWire, bytes);
}

export const encodeStatusWire = (m: StatusWire): Uint8Array => encodeDer(statusWire, m);
