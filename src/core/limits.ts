/**
 * Every limit on an attacker-growable resource, in one place. Each has a test that hits it.
 */
export const limits = {
  /** Largest frame body accepted from a peer (unikernel images travel in one frame). */
  maxFrameBytes: 256 * 1024 * 1024,
  /** DER nesting depth accepted by the strict checker. */
  maxDerDepth: 32,
  /** DER elements in one message (an info reply for 10,000 unikernels has ~250,000). */
  maxDerElements: 2_000_000,
  /** Console: bytes per line before truncation, lines per ring. */
  consoleLineBytes: 512,
  consoleRingLines: 1024,
  /** Certificate chain length: 10 or more is refused. */
  maxChainLength: 10,
  /** vmmd: connections served at once; more are closed on accept. */
  vmmdConnections: 256,
  /** vmmd: a connection that sends no complete frame for this long is closed. */
  vmmdIdleMs: 120_000,
} as const;
