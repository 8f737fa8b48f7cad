/**
 * Defaults of the device daemon. Every service resolves its options as `init.x ?? DEFAULT`.
 */

/** libp2p listen address when none is given: every interface, a free port. */
export const DEFAULT_LISTEN = '/ip4/0.0.0.0/tcp/0'
/** Device type a node declares in its capabilities when none is configured. */
export const DEFAULT_DEVICE_TYPE = 'generic'
/** Local HTTP API address when none is given. */
export const DEFAULT_API = '127.0.0.1:7420'
/** Name of the identity file (libp2p protobuf-encoded Ed25519 private key, mode 0600) in the data dir. */
export const IDENTITY_FILE = 'identity.key'
/** File the daemon writes once started: peer id, multiaddrs, API url. */
export const NODE_INFO_FILE = 'node.json'
/** Append-only log of verified wire messages in the data dir. */
export const MESSAGES_FILE = 'messages.jsonl'

/** Anti-entropy round with every connected peer at this interval. */
export const ANTI_ENTROPY_INTERVAL_MS = 30_000
/** A failed on-connect anti-entropy round is retried after this (× attempt, with jitter)… */
export const ANTI_ENTROPY_RETRY_MS = 3_000
/** …at most this many times (the interval rounds go on anyway). */
export const ANTI_ENTROPY_RETRIES = 3
/** Anti-entropy exchange timeout (whole request/response). */
export const ANTI_ENTROPY_TIMEOUT_MS = 20_000
/**
 * How long a node keeps a just-revoked peer's connections open for one anti-entropy round that
 * hands the peer its own revocation (so the device knows and says so), before it cuts them.
 */
export const REVOCATION_NOTICE_MS = 3_000
/**
 * Most peers' hellos (declared tags and capabilities) a node keeps: the one thing a pending
 * device (join secret, no enrollment) can make a node hold. Past it, the oldest hello is dropped;
 * a peer's hello counts once per anti-entropy round, so a pending device cannot flood it faster.
 */
export const ANTI_ENTROPY_MAX_HELLOS = 4096
/** Most bytes sent in one anti-entropy response (frames are also bounded by MAX_WIRE_SIZE each). */
export const ANTI_ENTROPY_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
/** Health reports older than this (by window end) are not kept. */
export const HEALTH_RETENTION_MS = 24 * 60 * 60 * 1000
/**
 * Anti-entropy exchanges only health reports newer than this, so the digest lists stay bounded
 * (100 devices reporting every minute: 6,000 digests); older ones stay local for the rollout logic.
 */
export const ANTI_ENTROPY_HEALTH_WINDOW_MS = 60 * 60 * 1000

/** Stale health reports are dropped from memory at this interval. */
export const PRUNE_INTERVAL_MS = 10 * 60 * 1000

/**
 * First interval between mDNS queries (node/discovery/mdns-discovery.ts), and the interval while the
 * node has no peer connected or its own addresses just changed, ms.
 */
export const MDNS_INTERVAL_MS = 5_000
/**
 * Longest interval between mDNS queries, ms: the intervals double from `MDNS_INTERVAL_MS` up to this
 * (RFC 6762 §5.2). Every node answers every query by multicast, so each node hears N·(N−1) answers
 * per interval: at a fixed 5 s, 1,980 a second on a LAN of 100 devices. A newcomer is heard at once
 * whatever the others' intervals: its own first queries draw everyone's answers, its own included.
 */
export const MDNS_MAX_INTERVAL_MS = 60_000
/**
 * An mDNS answer for a peer already known with the same addresses is handed to libp2p's peer store
 * again only after this long, ms (the peer store drops addresses not refreshed for an hour).
 */
export const MDNS_REFRESH_MS = 10 * 60_000
/** Peers the mDNS discovery remembers (their addresses and when they were last handed on); oldest forgotten first. */
export const MDNS_PEERS_MAX = 4096
/**
 * Discoveries (new peers, changed addresses, refreshes) handed to libp2p per `MDNS_FORWARD_WINDOW_MS`;
 * past it answers are dropped and counted (a host flooding forged answers would otherwise fill the
 * peer store and the dial queue). A peer dropped is heard again at the next query.
 */
export const MDNS_FORWARDS_PER_WINDOW = 200
/** Window of `MDNS_FORWARDS_PER_WINDOW`, ms. */
export const MDNS_FORWARD_WINDOW_MS = 10_000
/** Addresses of one peer taken from an mDNS answer; the rest are ignored. */
export const MDNS_MAX_ADDRS = 16
/** Interval of the health-report timer handed to report providers (the CLI's --report-interval). */
export const DEFAULT_REPORT_INTERVAL_MS = 60_000
/** Redial bootstrap peers that dropped at this interval. */
export const BOOTSTRAP_REDIAL_MS = 10_000

/** bonjour / DNS-SD service type advertised for people and tools (`_llmesh._tcp`). */
export const BONJOUR_SERVICE_TYPE = 'llmesh'

/**
 * Peers found by discovery (mDNS, identify) are dialed only while the node has fewer connections
 * than this: a small LAN becomes a full mesh, a large one a well-connected random graph.
 */
export const DIAL_TARGET_PEERS = 24

/** Max connections the connection manager keeps. */
export const MAX_CONNECTIONS = 200

/** Shortest time a connection-monitor ping may take before the connection is judged dead, ms. */
export const PING_TIMEOUT_MIN_MS = 30_000

/** Known-but-disconnected peers redialed per redial round (every BOOTSTRAP_REDIAL_MS). */
export const REDIAL_KNOWN_PER_ROUND = 8

/**
 * How long the daemon waits for one service's `stop()` before it logs that service as stuck and
 * stops the others (the CLI exits 15 s after SIGTERM regardless; this names what held it).
 */
export const SERVICE_STOP_TIMEOUT_MS = 10_000
