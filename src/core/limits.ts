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
  /** Console: rings kept for unikernels that stopped, over all paths (oldest dropped first). */
  consoleMaxInactiveRings: 256,
  /** Console: rings in total, active or not; a `console add` beyond is refused. */
  consoleMaxRings: 10_000,
  /** Console: default subscribers per unikernel (`--max-subscribers`). */
  consoleMaxSubscribers: 5,
  /** Octets queued for one slow subscriber (console, log, stats) before it is dropped. */
  subscriberBufferBytes: 1024 * 1024,
  /** How long one subscriber that stopped reading may hold up a console FIFO before it is dropped. */
  subscriberStallMs: 1000,
  /** Log: entries kept in memory for the history of new subscribers (older ones stay on disk). */
  logHistoryEntries: 4096,
  /** Log: octets of those entries' records held at most (an exec event carries a command line of up to a frame). */
  logHistoryBytes: 16 * 1024 * 1024,
  /** Stats: unikernels known at once (vmmd's are bounded by policies; clients may add too). */
  statsMaxUnikernels: 100_000,
  /** Influx: bytes of line protocol queued per sink while the target is away (oldest dropped). */
  influxQueueBytes: 4 * 1024 * 1024,
  /** Influx: unikernels whose latest sample is kept for /metrics, and how long a sample stays. */
  influxMaxUnikernels: 10_000,
  influxSampleMaxAgeMs: 10 * 60 * 1000,
  /** Largest request frame the companion daemons (console, log, stats) accept from a client. */
  daemonMaxRequestBytes: 1024 * 1024,
  /** Connections one companion daemon (console, log, stats) serves at once; more are closed. */
  daemonMaxConnections: 1024,
  /** Certificate chain length: 10 or more is refused. */
  maxChainLength: 10,
  /** vmmd: connections served at once; more are closed on accept. */
  vmmdConnections: 256,
  /**
   * vmmd: a connection that sends no complete frame for this long is closed; an image (or
   * block data) message must arrive whole within this time of its first octets.
   */
  vmmdIdleMs: 120_000,
  /** vmmd: a new connection must send its first command (or the first octets of an image) within this time. */
  vmmdFirstFrameMs: 5_000,
  /**
   * vmmd: largest message that carries no image or block data (every command but create and
   * the legacy inline block add/set); a longer length is refused at the frame header.
   */
  vmmdCommandBytes: 64 * 1024,
  /**
   * vmmd: octets of frames being received over all connections, counted at the announced
   * length. A frame (message or block upload chunk) longer than vmmdCommandBytes that would
   * exceed it is refused; shorter ones are always admitted (at most vmmdConnections x
   * vmmdCommandBytes beyond it), so that small commands are served while it is full.
   */
  vmmdBufferBytes: 512 * 1024 * 1024,
  /**
   * vmmd: policies installed strictly below a path that has a policy of its own (a tenant's
   * sub-delegations, at any depth); a new one beyond is refused. Below the root, which has
   * no policy above it, the operator's policies are not counted.
   */
  maxPoliciesBelowPolicy: 64,
  /**
   * TLS handler deadlines (ms): handshake (counted from accept; bytes trickled in do not
   * renew it), first command / upload, silence while relaying, whole connection.
   */
  handshakeTimeoutMs: 5_000,
  commandTimeoutMs: 30_000,
  idleTimeoutMs: 300_000,
  totalTimeoutMs: 3_600_000,
  /** vmmd_tls (and vmmd_tls_inetd --wait): connections past the TLS handshake served at once; more are closed after it. */
  maxTlsConnections: 64,
  /** vmmd_tls (and --wait): connections still in the TLS handshake, in all and from one address (IPv4, IPv6 /64). */
  maxTlsHandshakes: 128,
  maxTlsHandshakesPerAddress: 16,
  /**
   * Image uploaded after the handshake (CERTS.md §5 step 2): it travels on to vmmd in one
   * frame. It is also refused beyond the memory of its unikernel and of the chain's policies.
   */
  maxUploadBytes: 256 * 1024 * 1024 - 64 * 1024,
  /** vmmd_web: largest request body (an image, or block device data); refused by Content-Length before it is read. */
  webMaxUploadBytes: 256 * 1024 * 1024 - 64 * 1024,
  /** vmmd_web: largest JSON or form body without a file. */
  webMaxJsonBytes: 64 * 1024,
  /** vmmd_web: longest password accepted (scrypt hashes all of it). */
  webMaxPasswordBytes: 1024,
  /** vmmd_web: users, and API tokens per user. */
  webMaxUsers: 10_000,
  webMaxTokensPerUser: 100,
  /** vmmd_web: live streams (server-sent events) at once, per user and in total. */
  webMaxStreamsPerUser: 8,
  webMaxStreams: 256,
  /** vmmd_web: octets queued for one slow event-stream client before its stream is closed. */
  webStreamBufferBytes: 256 * 1024,
  /** vmmd_web: UI sessions at once (oldest dropped), and how long one lasts. */
  webMaxSessions: 10_000,
  webSessionMs: 8 * 3600 * 1000,
  /** vmmd_web: failed logins per client address per window before further attempts are refused. */
  webLoginFailures: 5,
  webLoginWindowMs: 60_000,
  /** vmmd_web: client addresses whose failed logins are remembered (oldest dropped). */
  webLoginTracked: 10_000,
  /** Octets all image uploads in progress of one process hold (in unlinked temporary files) at once. */
  uploadsHeldBytes: 1024 * 1024 * 1024,
} as const;
