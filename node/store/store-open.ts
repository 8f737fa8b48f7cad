/**
 * Opening a node's corestore, and the decision whether to open it at start or on first need.
 * hypercore and corestore (and through them RocksDB's native module, its threads and sodium) are
 * imported here with `import()`, so a process that never opens a store never loads them: an idle
 * device that holds no release blocks stays ~9 MiB smaller (docs/benchmarks.md, "Idle footprint").
 */
import { mkdir, readdir } from 'node:fs/promises'
import type Corestore from 'corestore'
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

/** Creates `dir` if needed and opens the corestore in it (RocksDB, hypercore's storage). */
export async function openCorestore(dir: string): Promise<Corestore> {
  await mkdir(dir, { recursive: true })
  const [{ default: CorestoreClass }, { default: Hypercore }] = await Promise.all([
    import('corestore'),
    import('hypercore'),
  ])
  const cs = new CorestoreClass(
    Hypercore.defaultStorage(dir, {
      writeBufferSize: STORE_WRITE_BUFFER,
      blobGarbageCollectionAgeCutOff: STORE_BLOB_GC_AGE_CUTOFF,
    }),
  )
  await cs.ready()
  return cs
}
