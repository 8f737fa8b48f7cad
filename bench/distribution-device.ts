/**
 * Device side of bench/distribution.ts, in its own process (as curl is): installs a release from
 * the seed over libp2p or plain TCP through the installer (`prestage`: blocks fetched straight into
 * the staging file, then verified and renamed); the fetch phase ends at the installer's
 * "release fetched" log line. argv[2] is JSON
 * { mode: 'libp2p' | 'libp2p-v1' | 'tcp', addr, manifestFile, dataDir, inflight?, psk?, warmManifestFile? }
 * (libp2p-v1: replication protocol version 1, hypercore's secret-stream inside libp2p; psk: swarm key,
 * hex; warmManifestFile: an unrelated release installed first, untimed, as a running daemon would have); prints one JSON line { fetchS, installS, fetchCpuS, installCpuS, bytesIn, du, maxRssMib, readBatches } (CPU: this process, user + system).
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import pino from 'pino'
import { Installer } from '../node/install/installer.ts'
import { silentLogger } from '../node/logger.ts'
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
  warmManifestFile?: string
}
const manifest = JSON.parse(await readFile(a.manifestFile, 'utf8')) as ReleaseManifest
const logger = silentLogger()
const store = new ModelStore({
  dataDir: a.dataDir,
  inflight: a.inflight === undefined ? undefined : [a.inflight, Math.max(512, 3 * a.inflight)],
})
await store.start()
function du(): number {
  return Number(execFileSync('du', ['-sk', a.dataDir]).toString().split('\t')[0]) * 1024
}
const cpu = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}
let fetched: { t: number; cpu: number } | null = null
// the installer's "release fetched" line ends the fetch phase
const phases = pino(
  { level: 'debug' },
  {
    write(line: string) {
      if (fetched === null && line.includes('"msg":"release fetched"')) fetched = { t: performance.now(), cpu: cpu() }
    },
  },
)
const inst = new Installer({ store, logger: phases }, { dataDir: a.dataDir })
await inst.start()
let bytesIn = 0
let bytesNow = () => bytesIn
/**
 * This process's peak RSS (VmHWM), MiB. Not `process.resourceUsage().maxRSS`: Linux carries a
 * process's maxrss across fork + exec, so a child reports its parent's (the seed's 350+ MiB here).
 */
function peakRssMib(): number {
  const kib = /VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
  return kib === undefined ? Number.NaN : Number(kib) / 1024
}

let stop: () => Promise<void>
if (a.mode !== 'tcp') {
  const h = await benchHost(a.psk)
  const protocols = a.mode === 'libp2p-v1' ? [PROTOCOL_REPLICATE_V1] : undefined
  const rep = new Replicator({ libp2p: h, store, logger }, { protocols })
  await rep.start()
  await h.dial(multiaddr(a.addr))
  bytesNow = () => rep.stats().bytesIn
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
if (a.warmManifestFile !== undefined) {
  // a running daemon: this process has fetched and installed a release before (JIT warm, caches filled)
  await inst.prestage(JSON.parse(await readFile(a.warmManifestFile, 'utf8')) as ReleaseManifest)
  fetched = null
}
// the warm release's bytes on the wire and on disk are not the timed release's
const bytes0 = bytesNow()
const du0 = a.warmManifestFile === undefined ? 0 : du()
/** RocksDB read batches of the device's corestore so far (rocksdb-native's count). */
const readBatches = () =>
  (store.store as unknown as { storage: { db: { _state: { stats: { readBatches: number } } } } }).storage.db._state
    .stats.readBatches
const rb0 = readBatches()
const c0 = cpu()
const t = performance.now()
await inst.prestage(manifest)
const rb = readBatches() - rb0
const done = { t: performance.now(), cpu: cpu() }
const f = fetched ?? done
const fetchS = (f.t - t) / 1000
const fetchCpuS = f.cpu - c0
const installS = (done.t - f.t) / 1000
const installCpuS = done.cpu - f.cpu
await stop()
await inst.stop()
await store.stop()
// everything the device holds for the release: store, install tree, indexes (du: allocated blocks)
process.stdout.write(
  `${JSON.stringify({ fetchS, installS, fetchCpuS, installCpuS, bytesIn: bytesIn - bytes0, du: du() - du0, maxRssMib: peakRssMib(), readBatches: rb })}\n`,
)
process.exit(0)
