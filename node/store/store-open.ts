/**
 * Opening a node's corestore, and the decision whether to open it at start or on first need.
 * hypercore and corestore (and through them RocksDB's native module, its threads and sodium) are
 * loaded here on first use (loadStoreModules), so a process that never opens a store never loads
 * them: an idle device that holds no release blocks stays ~9 MiB smaller (docs/benchmarks.md,
 * "Idle footprint").
 */
import { mkdir, readdir } from 'node:fs/promises'
import { createRequire } from 'node:module'
import type Corestore from 'corestore'
import type Hypercore from 'hypercore'
import { STORE_BLOB_GC_AGE_CUTOFF, STORE_WRITE_BUFFER } from './constants.ts'

/**
 * Whether the corestore directory `dir` holds anything. A store opened once is never empty again
 * (RocksDB's files), so a device that ever fetched, staged, installed or published opens at start
 * and serves its peers as before; only a device that never held a feed defers.
 */
export async function storeHoldsData(dir: string): Promise<boolean> {
  const entries = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return []
    throw err
  })
  return entries.length > 0
}

/**
 * Loads corestore and hypercore. Both are CommonJS: `require()` loads them with ≈ 95 ms of CPU here
 * against 135–150 ms through `import()` (Node 22's ESM loader; docs/benchmarks.md, "at 20 Mbit/s:
 * eleventh pass"), time a device's first fetch waits for.
 */
function loadStoreModules(): { CorestoreClass: typeof Corestore; Hypercore: typeof Hypercore } {
  const load = createRequire(import.meta.url)
  return {
    CorestoreClass: load('corestore') as typeof Corestore,
    Hypercore: load('hypercore') as typeof Hypercore,
  }
}

/** Creates `dir` if needed and opens the corestore in it (RocksDB, hypercore's storage). */
export async function openCorestore(dir: string): Promise<Corestore> {
  await mkdir(dir, { recursive: true })
  const { CorestoreClass, Hypercore } = loadStoreModules()
  const cs = new CorestoreClass(
    Hypercore.defaultStorage(dir, {
      writeBufferSize: STORE_WRITE_BUFFER,
      blobGarbageCollectionAgeCutOff: STORE_BLOB_GC_AGE_CUTOFF,
    }),
  )
  await cs.ready()
  return cs
}

/**
 * Attaches an opened feed to every replication stream of `corestore` it is not attached to yet.
 * corestore attaches a core to its streams when the core starts downloading, which is before it is
 * open, and a stream added in between skips a core that is not open: that session never carried
 * the feed (seen when a store opened on demand dials its sessions as its first feed opens, and in
 * the replicator's tests as a session started while the seed's lineage opened).
 */
export function attachToStreams(corestore: Corestore, core: Hypercore): void {
  const tracker = (corestore as unknown as { streamTracker?: { attachAll?: (core: unknown) => void } }).streamTracker
  const inner = (core as unknown as { core?: unknown }).core
  if (inner !== undefined && inner !== null) tracker?.attachAll?.(inner)
}

/** How many replication streams `corestore` has (its sessions with peers, whatever feeds they carry). */
export function streamCount(corestore: Corestore): number {
  return (corestore as unknown as { streamTracker?: { records?: unknown[] } }).streamTracker?.records?.length ?? 0
}
