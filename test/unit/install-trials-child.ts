/**
 * Child process of install-kill-trials.test.ts. argv[2] is JSON { dataDir, seedAddr, manifest,
 * killOn? }. Fetches the release from the seed, stages it, then flips `active` between it and the
 * version active before (activate / rollback) until killed. The installer's log goes to stdout as
 * JSON lines (`download N%`, `release staged`, `activated`, `rolled back`); also prints
 * `start-have <n>`. With `killOn`, the child sends itself SIGKILL `delayMs` after it logs the line
 * `msg` (at once, inside the log call, for 0): a kill timed from inside, where a kill from the test
 * would come a pipe and a scheduler slice later, after a small download or assembly has ended.
 */
import { multiaddr } from '@multiformats/multiaddr'
import pino from 'pino'
import { Installer } from '../../node/install/installer.ts'
import { blockInventory, releaseBlocks } from '../../node/store/fetcher.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import { Replicator } from '../../node/store/replicator.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { createHost } from '../mesh/distribution-helpers.ts'

const args = JSON.parse(process.argv[2]) as {
  dataDir: string
  seedAddr: string
  manifest: ReleaseManifest
  killOn?: { msg: string; delayMs: number }
}
const out = pino.destination({ fd: 1, sync: true })
const killOn = args.killOn
const kill = () => process.kill(process.pid, 'SIGKILL')
const logger = pino(
  { level: 'info' },
  {
    write(line: string) {
      out.write(line)
      if (killOn === undefined || !line.includes(`"msg":"${killOn.msg}"`)) return
      if (killOn.delayMs <= 0) kill()
      else setTimeout(kill, killOn.delayMs)
    },
  },
)
const store = new ModelStore({ dataDir: args.dataDir })
const installer = new Installer({ store, logger }, { dataDir: args.dataDir })
await installer.start()
const m = args.manifest
const libp2p = await createHost()
const replicator = new Replicator({ libp2p, store, logger: pino({ level: 'silent' }) })
await replicator.start()
const { have } = await blockInventory(await store.feed(m.chunks.feed), releaseBlocks(m.chunks))
process.stdout.write(`start-have ${have.length}\n`)
await libp2p.dial(multiaddr(args.seedAddr))
await installer.prestage(m)
for (;;) {
  await installer.activate(m.model, m.version)
  await installer.rollback(m.model)
}
