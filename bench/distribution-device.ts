/**
 * Device side of bench/distribution.ts, in its own process (as curl is): fetches a release from
 * the seed over libp2p or plain TCP, then assembles and verifies it. argv[2] is JSON
 * { mode: 'libp2p' | 'libp2p-v1' | 'tcp', addr, manifestFile, dataDir, inflight?, psk? } (libp2p-v1:
 * replication protocol version 1, hypercore's secret-stream inside libp2p; psk: swarm key, hex); prints one JSON line { fetchS, installS, fetchCpuS, installCpuS, bytesIn, du } (CPU: this process, user + system).
 */
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { Installer } from '../node/install/installer.ts'
import { silentLogger } from '../node/logger.ts'
import { fetchRelease } from '../node/store/fetcher.ts'
import { ModelStore } from '../node/store/model-store.ts'
import { Replicator } from '../node/store/replicator.ts'
import { PROTOCOL_REPLICATE_V1 } from '../protocols/constants.ts'
import type { ReleaseManifest } from '../protocols/schemas/index.ts'
import { benchHost } from './distribution-host.ts'

const a = JSON.parse(process.argv[2]) as {
  mode: 'libp2p' | 'libp2p-v1' | 'tcp'
  addr: string
  psk?: string
  manifestFile: string
  dataDir: string
  inflight?: number
}
const manifest = JSON.parse(await readFile(a.manifestFile, 'utf8')) as ReleaseManifest
const logger = silentLogger()
const store = new ModelStore({
  dataDir: a.dataDir,
  inflight: a.inflight === undefined ? undefined : [a.inflight, Math.max(512, 3 * a.inflight)],
})
await store.start()
let bytesIn = 0
let stop: () => Promise<void>
if (a.mode !== 'tcp') {
  const h = await benchHost(a.psk)
  const protocols = a.mode === 'libp2p-v1' ? [PROTOCOL_REPLICATE_V1] : undefined
  const rep = new Replicator({ libp2p: h, store, logger }, { protocols })
  await rep.start()
  await h.dial(multiaddr(a.addr))
  stop = async () => {
    bytesIn = rep.stats().bytesIn
    await rep.stop()
    await h.stop()
  }
} else {
  const [host, port] = a.addr.split(':')
  const sock = connect(Number(port), host)
  const s = store.store.replicate(true)
  sock.on('data', (d: Buffer) => {
    bytesIn += d.byteLength
  })
  sock.pipe(s).pipe(sock)
  sock.on('error', () => s.destroy())
  s.on('error', () => sock.destroy())
  stop = async () => {
    sock.destroy()
  }
}
const cpu = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}
let c0 = cpu()
let t = performance.now()
await fetchRelease(store, manifest.chunks, { verifyChunks: false }) // as the installer fetches
const fetchS = (performance.now() - t) / 1000
const fetchCpuS = cpu() - c0
await stop()
const inst = new Installer({ store, logger }, { dataDir: a.dataDir })
await inst.start()
c0 = cpu()
t = performance.now()
await inst.prestage(manifest)
const installS = (performance.now() - t) / 1000
const installCpuS = cpu() - c0
await store.stop()
// everything the device holds for the release: store, install tree, indexes (du: allocated blocks)
const du = Number(execFileSync('du', ['-sk', a.dataDir]).toString().split('\t')[0]) * 1024
process.stdout.write(`${JSON.stringify({ fetchS, installS, fetchCpuS, installCpuS, bytesIn, du })}\n`)
process.exit(0)
