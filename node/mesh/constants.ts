/** Defaults of the mesh's verification and ingest (see docs/protocol.md, "Ingest"). */

/** Pending rotations signed by a key of the current root kept at once (only key holders make them). */
export const ROTATION_MAX_AUTHORIZED_POOLS = 8
/** Pending rotations signed only by the candidate root's own keys kept at once, all peers together. */
export const ROTATION_MAX_UNAUTHORIZED_POOLS = 16
/** Pending rotations signed only by the candidate's own keys that one peer may open. */
export const ROTATION_MAX_POOLS_PER_PEER = 2

/*
 * Anti-entropy budgets, per peer and interval (docs/protocol.md, "Anti-entropy"). An honest round
 * sends at most ANTI_ENTROPY_MAX_MESSAGES messages and 64 MiB each way, and a peer runs about two
 * rounds a minute with this node (its own and this node's).
 */

/** The interval budgets are counted over. */
export const AE_BUDGET_INTERVAL_MS = 60_000
/** Frames one peer may send this node per interval (both directions of every round). */
export const AE_BUDGET_FRAMES = 6_000
/** Bytes one peer may send this node per interval. */
export const AE_BUDGET_BYTES = 160 * 1024 * 1024
/** CPU time (ms) of the main thread this node may spend on one peer's frames per interval (decoding and verifying; process.threadCpuUsage, so GC helpers and other threads are not charged to the peer). */
export const AE_BUDGET_CPU_MS = 10_000
/** Invalid frames (undecodable control frames, messages refused for good) before the peer is disconnected and penalised. */
export const AE_INVALID_FRAMES_MAX = 16
/** Gossipsub behaviour penalty a peer gets when disconnected for invalid frames (score −10 × penalty²). */
export const AE_SCORE_PENALTY = 10
/** Inbound anti-entropy streams one connection may hold at once. */
export const AE_MAX_INBOUND_STREAMS = 2
/** Peers whose budgets are tracked at once (the least recently seen is forgotten first). */
export const AE_BUDGET_PEERS = 4096

/*
 * Gossip ingest budgets, per propagation peer and interval (docs/protocol.md, "Ingest"). Checked
 * before a message is parsed or verified. An honest peer forwards only what it accepted: a fleet of
 * 1,000 devices reporting once a minute is ≈ 170 messages and a few MiB per interval, far under.
 */

/** The interval gossip budgets are counted over. */
export const GOSSIP_BUDGET_INTERVAL_MS = 10_000
/** Messages one peer may deliver to this node's validators per interval. */
export const GOSSIP_BUDGET_MESSAGES = 1_000
/** Message bytes one peer may deliver per interval. */
export const GOSSIP_BUDGET_BYTES = 16 * 1024 * 1024
/** CPU time (ms) of the main thread this node may spend hashing, parsing and verifying one peer's messages per interval (process.threadCpuUsage). */
export const GOSSIP_BUDGET_CPU_MS = 2_000
/** Gossipsub behaviour penalty per message dropped for a budget (score −10 × penalty², decays ×0.2 a second). */
export const GOSSIP_BUDGET_PENALTY = 1
/**
 * Behaviour penalty per message a peer sends signed by its own unenrolled key (ERR_NOT_ENROLLED).
 * It decays ×0.2 a second: one report a second (a device whose enrollment is on its way) holds
 * the score near −16, while a flood of 7 a second passes −700 and the peer is banned.
 */
export const NOT_ENROLLED_PENALTY = 1
/**
 * Behaviour penalty per message a peer sends signed by itself past its quota (ERR_QUOTA; gossip
 * Ignores those, see gossip-service.ts `refusalVerdict`). Decays ×0.2 a second like the others: an
 * honest device never reaches its quota, a flooder refused a few times a second is banned.
 */
export const QUOTA_PENALTY = 1
/** gossipsub's graylist threshold (its default): below it a peer's RPCs are discarded unread. */
export const PEER_BAN_SCORE = -80
/** How often connected peers' gossip scores are checked for a ban. */
export const PEER_BAN_CHECK_MS = 5_000
/** A first ban's length; each later ban of the same peer doubles it, up to PEER_BAN_MAX_MS. */
export const PEER_BAN_MS = 5 * 60_000
/** The longest ban. */
export const PEER_BAN_MAX_MS = 60 * 60_000
/** Banned peers remembered at most (the oldest ban is forgotten first). */
export const PEER_BAN_MAX_PEERS = 4_096

/*
 * WAN links between sites (docs/protocol.md, "Sites linked over a WAN"): WebSockets for sites
 * behind HTTP-only firewalls, circuit relay v2 for nodes behind NAT (off unless --relay-server).
 */

/** Reservations a relay server (`--relay-server`) holds at once (one per node behind NAT that listens on it). */
export const RELAY_MAX_RESERVATIONS = 32
/** How long a reservation lasts before the node behind NAT must renew it, ms. */
export const RELAY_RESERVATION_TTL_MS = 60 * 60_000
/** Relayed connections (HOP streams in, STOP streams out) a relay server carries at once. */
export const RELAY_MAX_CIRCUITS = 64
/** Bytes one relayed connection may carry (both directions) before the relay resets it; the nodes redial. */
export const RELAY_DATA_LIMIT_BYTES = 1024n * 1024n * 1024n
/** How long one relayed connection may last before the relay resets it, ms; the nodes redial. */
export const RELAY_DURATION_LIMIT_MS = 60 * 60_000
/** Relayed connections a node accepts at once through the relays it listens on. */
export const RELAY_MAX_INBOUND_CIRCUITS = 32
/** Largest burst of a `--wan-rate` token bucket, bytes (also the slice a chunk is cut into). */
export const WAN_BURST_BYTES = 64 * 1024
/** Lowest `--wan-rate`, bytes/s (below it a model would take days: a typo, refused). */
export const WAN_RATE_MIN = 1024

/**
 * Resolution of the event-loop delay monitor behind `nodejs_eventloop_lag_*` (prom-client's
 * default is 10 ms): its timer woke an idle daemon 100 times a second, about half the daemon's idle
 * CPU (0.62 % of a core at 10 ms, 0.35 % at 100 ms, 0.33 % at 1 s; docs/benchmarks.md). Stalls
 * longer than this are always seen; shorter ones only when a tick falls inside them.
 */
export const EVENT_LOOP_MONITOR_RESOLUTION_MS = 100

/**
 * yamux's initial receive window per stream, bytes (its default 256 KiB). yamux doubles a stream's
 * window only when the window is used up within 4 round trips of its ping, measured once when the
 * connection opens, idle (~1 ms on a LAN): under load a window update waits in the receiver's
 * uplink behind its own uploads, so the window never grew and each stream carried at most 256 KiB
 * per round trip of those queues. A replication session needs more (two 128 KiB blocks from a
 * holder, the seed's blocks), so it starts at 1 MiB; a peer still cannot make a stream buffer more
 * than yamux's read-buffer limit. One to one, 256 MiB: fetch + install −6 % (docs/benchmarks.md,
 * "Distribution: one to one, yamux's stream window"). A receiver grants window back once it has
 * taken half of it (yamux-window-fix.ts), so a sender always holds at least half of this.
 */
export const YAMUX_STREAM_WINDOW = 1024 * 1024
