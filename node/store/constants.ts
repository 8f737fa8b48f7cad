/** Defaults of the artifact store (chunking, corestore layout, replication). */

/**
 * FastCDC chunk sizes (bytes), as casync/desync use them: the chunker's defaults, and the parameters
 * of every lineage whose feed was started before lineages recorded theirs (lineage-chunking.ts).
 */
export const CHUNK_MIN = 16 * 1024
export const CHUNK_AVG = 64 * 1024
export const CHUNK_MAX = 256 * 1024
/**
 * FastCDC chunk sizes (bytes) of a NEW lineage (its feed holds no block yet); a lineage keeps the
 * parameters of its first release for good, so that its releases share chunks (delta reuse). Half as
 * many blocks as 16/64/256 KiB: the device's fetch CPU −10–15 %, for +62 KB on the wire per small
 * edit and +19 % for a 1 MiB change. The maximum stays 256 KiB: blocks above it made the device's V8
 * run a mark-compact every ≈ 100 ms (22–34 per 256 MiB fetch instead of 2) and cost more CPU than
 * 64 KiB blocks, whatever the average (docs/benchmarks.md, "larger blocks for new lineages").
 */
export const NEW_LINEAGE_CHUNK_MIN = 32 * 1024
export const NEW_LINEAGE_CHUNK_AVG = 128 * 1024
export const NEW_LINEAGE_CHUNK_MAX = 256 * 1024
/** Key of a lineage feed's local user data (hypercore) holding its chunk parameters, JSON. */
export const LINEAGE_CHUNKING_KEY = 'llmesh/chunking'
/** Normalization level of FastCDC's normalized chunking (mask bits added/removed around the average). */
export const CHUNK_NORMALIZATION = 2
/** Read size when streaming a file through the chunker. */
export const CHUNK_READ_SIZE = 1024 * 1024

/** Corestore directory under the node's data directory. */
export const STORE_DIR = 'store'
/**
 * A device's corestore is opened only when first needed (a feed to fetch, serve or publish) unless
 * it already holds data: an idle device that never fetched anything loads neither RocksDB nor
 * hypercore (~9 MiB RSS; docs/benchmarks.md, "Idle footprint", fifth pass). See store-open.ts.
 */
export const STORE_OPEN_ON_DEMAND = true
/** Corestore name of a model lineage's writable feed (seed side). */
export function lineageName(model: string): string {
  return `model/${model}`
}

/** Range requests (contiguous runs of missing blocks, random order; see fetcher.ts) a fetch keeps open. */
export const FETCH_PARALLEL = 16
/**
 * Largest message of a framed replication stream (framed-stream.ts), bytes: as hyperswarm's
 * secret-stream (a u24 length), so any session hypercore can hold over secret-stream fits.
 */
export const REPLICATE_FRAME_MAX = 16 * 1024 * 1024 - 1
/** Bytes per read when a staging file is hashed whole (staging-file.ts `digest`; two such buffers, reused). */
export const STAGING_HASH_READ_BYTES = 1024 * 1024
/** Messages a framed replication stream gathers into one write to the libp2p stream, bytes. */
export const REPLICATE_WRITE_BATCH = 256 * 1024
/** Re-dial a connected peer's replication stream after a failure, ms. */
export const REPLICATE_REDIAL_MS = 2000
/**
 * hypercore's in-flight request range per peer, [min, max]. On streams that are not UDX (every
 * libp2p stream) hypercore keeps min(max, 3 × min) block requests open per peer; its default
 * [16, 512] gives 48.
 */
export const FETCH_INFLIGHT: readonly [number, number] = [16, 512]
/** Hypercore hotswap (duplicate requests of in-flight blocks to idle peers); see ModelStoreInit.hotswap. */
export const FETCH_HOTSWAP = false
/**
 * RocksDB memtable size of the corestore (hypercore-storage's default is 64 MiB). Blocks sit in the
 * write-ahead log, preallocated at ~1.1× this, until a memtable flush: at 64 MiB an empty device
 * store took 76 MB of disk and 1.8× a 128 MiB download while it ran; at 8 MiB 13 MB and 1.1×, for the
 * same download rate (docs/benchmarks.md). Smaller memtables also lower the daemon's RSS.
 */
export const STORE_WRITE_BUFFER = 8 * 1024 * 1024
/**
 * RocksDB blob garbage collection age cutoff of the corestore (hypercore-storage's default 0.25:
 * compactions rewrite the live blobs of the oldest quarter of blob files). Blocks are written once
 * and deleted only in whole releases (strip after install, GC of a version), after which their
 * blob files hold no live blob and are deleted without GC; rewriting them during a download was
 * ≈ 5 % of a device's CPU (docs/benchmarks.md). 0: no blob is rewritten.
 */
export const STORE_BLOB_GC_AGE_CUTOFF = 0
/** Least time between two restarts of every replication session after a stalled download, ms (replicator.ts). */
export const REPLICATE_RECYCLE_MIN_MS = 30_000
/**
 * Peer choice while holders (peers with part of a feed) are connected (peer-choice.ts): requests in
 * flight to an origin (a peer with the whole feed, e.g. the seed), which is asked only for blocks no
 * holder has, so the seed uploads each block about once and devices spread it. 2: with 8 devices at
 * 20 Mbit/s, 128 KiB blocks, the seed's queue (8 × 2 blocks, 0.9 s of its uplink) still keeps it busy,
 * and each block it sends reaches the swarm sooner: all 8 held the file in 16.98 s (median of 11
 * runs) against 17.39 s with 4 (13 runs; 3 and 1 no better), docs/benchmarks.md "tenth pass".
 * Earlier, 4 against 16 (21.6-22.5 s) and 32 (the seed uploaded 1.20×F): "at 20 Mbit/s".
 */
export const PEER_CHOICE_ORIGIN_INFLIGHT = 2
/**
 * For this long after a download starts, while this node has more replication sessions than the
 * feed has peers, an origin is capped at `PEER_CHOICE_ORIGIN_INFLIGHT` even with no holder
 * connected, ms. Why: a device whose store opens first sees only the seed on the feed (the other
 * devices' sessions wait for their stores, replicator.ts), counted as a lone device, and asked the
 * seed for hypercore's 48 blocks: the seed wrote 0.36×F into its streams in the first second,
 * uploaded 1.29×F in all, and the fan-out took 1.40× its bound (docs/benchmarks.md, "at 20 Mbit/s",
 * 5 December). Bounded in time because sessions to peers that never fetch this feed (devices
 * outside a canary stage) would otherwise cap a lone device for good; one to one (one session) is
 * never capped.
 */
export const PEER_CHOICE_START_GRACE_MS = 2000
/** A holder with requests in flight and no block for this long no longer keeps requests off an origin, ms. */
export const PEER_CHOICE_HOLDER_STALL_MS = 5000
/** Period of the peer-update nudge while a download runs (a holder stalled or left), ms. */
export const PEER_CHOICE_NUDGE_MS = 500
/**
 * The seed declines, once per peer and block, a request for a block it already uploaded to another
 * connected peer; the requester then asks origins for that block again only after this long (by
 * then the first recipient has it and announced it), ms.
 */
export const PEER_CHOICE_DECLINED_MS = 3000
/**
 * Requests in flight to a holder while other holders are connected (peer-choice.ts), at first and at
 * least. A holder's uplink serves every other device, so each request queued there waits behind the
 * others' (and every hop of a block through the swarm pays that wait). 2: at 20 Mbit/s, 8 devices, a
 * request to a holder took 0.45 s (median; p90 0.8 s) instead of 0.76-0.91 s (p90 2.0-2.6 s) with
 * hypercore's own limit, and all 8 held the file in 15.7-16.3 s instead of 17.1-18.9 s (1: no
 * better); docs/benchmarks.md, "at 20 Mbit/s: third pass". A lone holder keeps hypercore's limit.
 */
export const PEER_CHOICE_HOLDER_INFLIGHT = 2
/**
 * A holder's in-flight cap grows by one per block that arrived within this (smoothed) after its
 * request, and shrinks by one per slower block, down to `PEER_CHOICE_HOLDER_INFLIGHT`, ms: where the
 * link is fast (loopback, a LAN at its CPU's rate) 2 requests would leave it idle.
 */
export const PEER_CHOICE_HOLDER_LATENCY_MS = 300
/** Weight of a new sample in a holder's smoothed request-to-block latency (peer-choice.ts). */
export const PEER_CHOICE_LATENCY_GAIN = 0.25
/**
 * Most tree nodes (present or absent) a feed's tree memo holds while it downloads (tree-memo.ts);
 * past it the memo starts over. A 256 MiB release in 128 KiB blocks has ≈ 3,600 tree nodes.
 */
export const TREE_MEMO_MAX_NODES = 1 << 16
/**
 * Ancestors of a tree node that a missed `hasTreeNode` lookup reads in the same RocksDB read batch
 * (tree-memo.ts): hypercore's `missingNodes` walks up one level per read batch.
 */
export const TREE_MEMO_PREFETCH_LEVELS = 8
/** Bytes of each buffer the tree memo copies the hashes of written nodes into (tree-memo.ts). */
export const TREE_MEMO_SLAB_BYTES = 32 * 1024
