/**
 * Console family (WIRE.md §4 ConsoleCmd, SinceCount, Data console [3]).
 */
import { type TypeOf, bigInt, choice, explicit, generalizedTime, int, seq, tagNull, utf8 } from '../asn.js';

/** Which buffered lines a subscriber wants first: those at or after a time, or the last n. */
export const sinceCount = choice('SinceCount', {
  since: explicit(0, generalizedTime),
  count: explicit(1, int),
});
export type SinceCount = TypeOf<typeof sinceCount>;

/**
 * ConsoleCmd. `add` is sent by vmmd only; its value is the number of ring buffers kept
 * for the unikernel's path and goes up to 2^62-1 (the root policy), hence bigint.
 * Tag [1] (the old subscribe with a UTCTime) is retired: upstream's decoder has no
 * alternative for it any more.
 */
export const consoleCmd = choice(
  'ConsoleCmd',
  {
    add: explicit(0, bigInt),
    subscribe: explicit(2, sinceCount),
    list_inactive: tagNull(3),
  },
  { 1: 'retired ConsoleCmd [1] (subscribe with UTCTime) is not supported' },
);
export type ConsoleCmd = TypeOf<typeof consoleCmd>;

/** Data console [3]: one line read from the unikernel's console, without the newline. */
export const consoleData = seq('ConsoleData', {
  timestamp: generalizedTime,
  line: utf8,
});
export type ConsoleData = TypeOf<typeof consoleData>;
