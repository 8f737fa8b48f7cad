/**
 * Test helpers for distribution tests: libp2p hosts on loopback (no mDNS, direct dials), each
 * with a model store and a replicator. Replace `createHost` with node/mesh's host factory once
 * it lands.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import pino from 'pino'
import { meshMuxer } from '../../node/mesh/muxer.ts'
import { meshNoise } from '../../node/mesh/noise-crypto.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import { Replicator, type ReplicatorInit } from '../../node/store/replicator.ts'

/** A host on loopback. */
export async function createHost(): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [meshNoise()],
    streamMuxers: [meshMuxer()],
  })
}

/** One test peer: host, store and replicator in a temp data dir. */
export interface TestPeer {
  name: string
  dataDir: string
  libp2p: Libp2p
  store: ModelStore
  replicator: Replicator
  stop(): Promise<void>
}

export const quietLogger = pino({ level: process.env.LLMESH_TEST_LOG ?? 'silent' })

/** Starts a peer (optionally reusing a data dir, to simulate a restart; `init` adds replicator options). */
export async function startPeer(name: string, dataDir?: string, init: ReplicatorInit = {}): Promise<TestPeer> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), `llmesh-${name}-`)))
  const libp2p = await createHost()
  const store = new ModelStore({ dataDir: dir })
  await store.start()
  const replicator = new Replicator(
    { libp2p, store, logger: quietLogger.child({ peer: name }) },
    { redialMs: 300, ...init },
  )
  await replicator.start()
  let stopped = false
  return {
    name,
    dataDir: dir,
    libp2p,
    store,
    replicator,
    async stop() {
      if (stopped) return
      stopped = true
      await replicator.stop()
      await libp2p.stop()
      await store.stop()
    },
  }
}

/** Dials every pair of peers directly (full mesh). */
export async function connectAll(peers: TestPeer[]): Promise<void> {
  for (let i = 0; i < peers.length; i++) {
    for (let j = i + 1; j < peers.length; j++) {
      await peers[i].libp2p.dial(peers[j].libp2p.getMultiaddrs()[0])
    }
  }
}

/** Stops peers and removes their data dirs. */
export async function cleanup(peers: TestPeer[]): Promise<void> {
  for (const p of peers) await p.stop().catch(() => {})
  for (const p of peers) await rm(p.dataDir, { recursive: true, force: true })
}
