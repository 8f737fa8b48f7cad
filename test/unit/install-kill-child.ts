/**
 * Child process for the kill -9 tests. argv[2] is JSON:
 *   { mode: 'activate', dataDir }                       flip active between the staged versions forever
 *   { mode: 'download', dataDir, seedAddr, manifest }   fetch from the seed, stage, activate, exit
 * Prints one line per event on stdout: `ready`, `have <n>/<total>`, `start-have <n>`, `done`.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { Installer } from '../../node/install/installer.ts'
import { silentLogger } from '../../node/logger.ts'
import { blockInventory, releaseBlocks } from '../../node/store/fetcher.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import { Replicator } from '../../node/store/replicator.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { createHost } from '../mesh/distribution-helpers.ts'

const args = JSON.parse(process.argv[2]) as {
  mode: 'activate' | 'download'
  dataDir: string
  seedAddr?: string
  manifest?: ReleaseManifest
}
const logger = silentLogger()
const store = new ModelStore({ dataDir: args.dataDir })
await store.start()
const installer = new Installer({ store, logger }, { dataDir: args.dataDir })
await installer.start()

if (args.mode === 'activate') {
  const versions = (await installer.status()).tiny.staged
  process.stdout.write('ready\n')
  for (let i = 0; ; i++) {
    await installer.activate('tiny', versions[i % versions.length])
    if (i % 3 === 2) await installer.rollback('tiny').catch(() => {})
  }
} else {
  const m = args.manifest as ReleaseManifest
  const libp2p = await createHost()
  const replicator = new Replicator({ libp2p, store, logger })
  await replicator.start()
  const core = await store.feed(m.chunks.feed)
  const { have } = await blockInventory(core, releaseBlocks(m.chunks))
  process.stdout.write(`start-have ${have.length}\n`)
  await libp2p.dial(multiaddr(args.seedAddr as string))
  const timer = setInterval(async () => {
    const d = (await installer.status())[m.model]?.downloading
    if (d) process.stdout.write(`have ${d.blocks_have}/${d.blocks_total}\n`)
  }, 20)
  await installer.prestage(m)
  clearInterval(timer)
  await installer.activate(m.model, m.version)
  process.stdout.write('done\n')
  await replicator.stop()
  await libp2p.stop()
  await store.stop()
  process.exit(0)
}
