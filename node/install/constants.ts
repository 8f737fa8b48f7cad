/** Defaults of the model installer. */

/** Install root under the node's data directory: `<data>/models/<model>/<version>/model.gguf`. */
export const MODELS_DIR = 'models'
export const MODEL_FILE = 'model.gguf'
export const PARTIAL_FILE = 'model.gguf.partial'
export const MANIFEST_FILE = 'manifest.json'
/**
 * A release being downloaded is built in place in this file (node/store/staging-file.ts): verified
 * blocks are written at their offsets as they arrive, and it is renamed to `model.gguf` once its
 * sha256 matches. Unlike a partial it is kept across restarts: it holds the download's bytes.
 */
export const STAGING_FILE = 'model.gguf.download'
/** The signed manifest of the release being downloaded, beside its staging file (to serve and resume it after a restart). */
export const STAGING_MANIFEST = 'download.json'
export const ACTIVE_LINK = 'active'
export const PREVIOUS_LINK = 'previous'
/** Prefix of temporary symlinks renamed over `active`/`previous`. */
export const TMP_LINK_PREFIX = '.tmp-'
/** Versions kept per model by garbage collection (active and previous always kept). */
export const KEEP_VERSIONS = 3
/** Free space kept in reserve on top of what a download needs, bytes. */
export const DISK_RESERVE_BYTES = 64 * 1024 * 1024
/**
 * What a download adds to the corestore per block besides the bytes (they go to the staging file):
 * Merkle tree nodes, bitfield pages and RocksDB's overhead on them, bytes (a generous bound).
 */
export const STAGING_INDEX_BYTES_PER_BLOCK = 256
/** Refusals remembered per model for /status. */
export const MAX_REFUSALS = 16
/**
 * Marker file in a version directory: the version's blocks were stripped from the corestore and are
 * read from its `model.gguf` (see node/store/file-blocks.ts). Absent after a crash before the strip:
 * the installer strips again at start.
 */
export const BLOCKS_IN_FILE_MARK = 'blocks-in-file'
/** A download with no block for this long is logged (once) as stalled, ms. */
export const PROGRESS_STALL_MS = 10_000
/** While a download stays stalled, the stall is signalled again every this many stall periods. */
export const PROGRESS_STALL_REPEAT = 3
/** Window of the download rate shown in /status, ms. */
export const PROGRESS_RATE_WINDOW_MS = 5_000
/** Period of the progress tick (stall check), ms. */
export const PROGRESS_TICK_MS = 1_000
/** Where a bundle import stages its chunks (under the data directory; deleted after each import). */
export const IMPORT_STAGING_DIR = 'import-staging'
/** Block reads kept in flight while assembling a file (overlaps storage reads with hashing and writing). */
export const ASSEMBLE_READ_AHEAD = 8
/** Bytes of blocks gathered into one write while assembling a file. */
export const ASSEMBLE_WRITE_BYTES = 4 * 1024 * 1024
