/** Defaults of the artifact store (chunking, corestore layout, replication). */

/** FastCDC chunk sizes (bytes), as casync/desync use them. */
export const CHUNK_MIN = 16 * 1024
export const CHUNK_AVG = 64 * 1024
export const CHUNK_MAX = 256 * 1024
/** Normalization level of FastCDC's normalized chunking (mask bits added/removed around the average). */
export const CHUNK_NORMALIZATION = 2
/** Read size when streaming a file through the chunker. */
export const CHUNK_READ_SIZE = 1024 * 1024

/** Corestore directory under the node's data directory. */
export const STORE_DIR = 'store'
/** Corestore name of a model lineage's writable feed (seed side). */
export function lineageName(model: string): string {
  return `model/${model}`
}

/** Range requests (contiguous runs of missing blocks, random order; see fetcher.ts) a fetch keeps open. */
export const FETCH_PARALLEL = 16
/** Re-dial a connected peer's replication stream after a failure, ms. */
export const REPLICATE_REDIAL_MS = 2000
/** Hypercore hotswap (duplicate requests of in-flight blocks to idle peers); see ModelStoreInit.hotswap. */
export const FETCH_HOTSWAP = false
