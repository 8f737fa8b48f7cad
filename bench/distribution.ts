/**
 * One-to-one distribution throughput on loopback: a seed and a device (libp2p TCP + Noise +
 * yamux, hypercore replication inside) next to `curl` fetching the same file from a plain
 * node:http server, in the same run. The device runs in its own process (bench/distribution-device.ts),
 * as curl does. Prints a markdown table.
 *
 * Usage: npx node bench/distribution.ts [--mib 256] [--runs 5] [--inflight 16] [--avg-kib 64] [--no-tcp]
 *          [--device-flags="--optimize-for-size --no-opt"]
 * (--device-flags: node flags of the device process, e.g. to measure V8 settings' CPU cost)
 * (--inflight: hypercore's in-flight minimum on the device, 3× it per peer; --avg-kib: FastCDC
 * average chunk size, min = avg/4, max = 4 × avg; both default to the store's constants)
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { type AddressInfo, createServer as createNetServer } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { silentLogger } from '../node/logger.ts'
import { ModelStore } from '../node/store/model-store.ts'
import { Replicator } from '../node/store/replicator.ts'
import { DEFAULT_POLICY } from '../protocols/rollout/policy-defaults.ts'
import { buildReleaseManifest } from '../seed/manifest.ts'

const execFileP = promisify(execFile)
const DEVICE = join(import.meta.dirname, 'distribution-device.ts')
const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' },
    runs: { type: 'string', default: '5' },
    inflight: { type: 'string' },
    'avg-kib': { type: 'string' },
    'no-tcp': { type: 'boolean', default: false },
    'device-flags': { type: 'string', default: '' },
  },
})
const DEVICE_FLAGS = values['device-flags'].split(/\s+/).filter(Boolean)
const INFLIGHT = values.inflight === undefined ? undefined : Number(values.inflight)
const AVG = values['avg-kib'] === undefined ? undefined : Number(values['avg-kib']) * 1024
const CHUNKING = AVG === undefined ? undefined : { min: AVG / 4, avg: AVG, max: AVG * 4 }
const MIB = Number(values.mib)
const RUNS = Number(values.runs)
const logger = silentLogger()

async function host() {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  })
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

const root = await mkdtemp(join(tmpdir(), 'bench-dist-'))
try {
  const file = join(root, 'model.bin')
  // random bytes: no chunk repeats, the worst case for dedupe and the plain case for throughput
  const parts: Buffer[] = []
  for (let i = 0; i < MIB; i++) parts.push(randomBytes(1024 * 1024))
  await writeFile(file, Buffer.concat(parts))
  const size = (await stat(file)).size

  // seed
  const seedDir = join(root, 'seed')
  const seedStore = new ModelStore({ dataDir: seedDir })
  await seedStore.start()
  const t = performance.now()
  const append = await seedStore.appendFile('bench', file, { chunking: CHUNKING })
  const ingestS = (performance.now() - t) / 1000
  const manifest = buildReleaseManifest({
    fleet: 'bench-fleet',
    model: 'bench',
    version: '1.0.0',
    seq: 1,
    append,
    gguf: { quantization: 'F32', architecture: 'llama' },
    policy: DEFAULT_POLICY,
    minRamMb: 1,
    now: Date.now(),
  })
  const seedHost = await host()
  const seedRep = new Replicator({ libp2p: seedHost, store: seedStore, logger })
  await seedRep.start()

  const manifestFile = join(root, 'manifest.json')
  await writeFile(manifestFile, JSON.stringify(manifest))
  const tcpServer = createNetServer((sock) => {
    const s = seedStore.store.replicate(false)
    sock.pipe(s).pipe(sock)
    sock.on('error', () => s.destroy())
    s.on('error', () => sock.destroy())
  })
  await new Promise<void>((r) => tcpServer.listen(0, '127.0.0.1', r))
  const device = async (mode: 'libp2p' | 'tcp', r: number) => {
    const dataDir = join(root, `${mode}${r}`)
    const addr =
      mode === 'libp2p'
        ? seedHost.getMultiaddrs()[0].toString()
        : `127.0.0.1:${(tcpServer.address() as AddressInfo).port}`
    const { stdout } = await execFileP(
      process.execPath,
      [...DEVICE_FLAGS, DEVICE, JSON.stringify({ mode, addr, manifestFile, dataDir, inflight: INFLIGHT })],
      {
        maxBuffer: 1 << 20,
      },
    )
    await rm(dataDir, { recursive: true, force: true })
    return JSON.parse(stdout.trim().split('\n').pop() as string) as {
      fetchS: number
      installS: number
      fetchCpuS: number
      installCpuS: number
      bytesIn: number
      du: number
    }
  }
  const fetchS: number[] = []
  const installS: number[] = []
  const fetchCpu: number[] = []
  const installCpu: number[] = []
  const wireRatio: number[] = []
  const diskRatio: number[] = []
  const tcpS: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const d = await device('libp2p', r)
    fetchS.push(d.fetchS)
    installS.push(d.installS)
    fetchCpu.push(d.fetchCpuS)
    installCpu.push(d.installCpuS)
    wireRatio.push(d.bytesIn / size)
    diskRatio.push(d.du / size)
    if (!values['no-tcp']) tcpS.push((await device('tcp', r)).fetchS)
  }
  tcpServer.close()

  // plain HTTP + curl
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' })
    createReadStream(file).pipe(res)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  const curlS: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const out = join(root, `curl${r}.bin`)
    const { stdout } = await execFileP('curl', [
      '-s',
      '-o',
      out,
      '-w',
      '%{time_total}',
      `http://127.0.0.1:${port}/model.bin`,
    ])
    const t0 = performance.now()
    await execFileP('sha256sum', [out])
    curlS.push(Number(stdout) + (performance.now() - t0) / 1000)
    await rm(out, { force: true })
  }
  server.close()
  await seedRep.stop()
  await seedHost.stop()
  await seedStore.stop()

  const mbps = (s: number) => (size / 1048576 / s).toFixed(1)
  const f = median(fetchS)
  const c = median(curlS)
  const i = median(installS)
  const c0 = append.chunks.chunking
  const kib = (n: number) => n / 1024
  console.log(
    `File: ${MIB} MiB of random bytes, ${append.chunks.chunks.length} chunks (FastCDC ${kib(c0.min)}/${kib(c0.avg)}/${kib(c0.max)} KiB)${INFLIGHT === undefined ? '' : `, in-flight ${INFLIGHT}`}${DEVICE_FLAGS.length === 0 ? '' : `, device node flags ${DEVICE_FLAGS.join(' ')}`}; ${RUNS} runs, medians; loopback, ${process.arch}, Node ${process.version}\n`,
  )
  console.log('| path | time (s) | MiB/s | throughput vs curl |')
  console.log('|---|---:|---:|---:|')
  console.log(`| seed: chunk + append to feed | ${ingestS.toFixed(2)} | ${mbps(ingestS)} | |`)
  console.log(`| curl ← node:http (plain TCP) + sha256sum | ${c.toFixed(2)} | ${mbps(c)} | 1.00 |`)
  console.log(
    `| device ← seed: hypercore over libp2p (noise+yamux), all blocks | ${f.toFixed(2)} | ${mbps(f)} | ${(c / f).toFixed(2)} |`,
  )
  const p = median(tcpS)
  if (tcpS.length > 0)
    console.log(
      `| (reference) hypercore over plain TCP, no libp2p | ${p.toFixed(2)} | ${mbps(p)} | ${(c / p).toFixed(2)} |`,
    )
  console.log(`| device: assemble + fsync + sha256 verify | ${i.toFixed(2)} | ${mbps(i)} | |`)
  console.log(
    `| device: fetch + install total | ${(f + i).toFixed(2)} | ${mbps(f + i)} | ${(c / (f + i)).toFixed(2)} |`,
  )
  console.log(
    `\nDevice process CPU (user + system, median): fetch ${median(fetchCpu).toFixed(2)} s, install ${median(installCpu).toFixed(2)} s`,
  )
  console.log(
    `Load average at the end: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  )
  console.log(`\nWire bytes received / file size: ${median(wireRatio).toFixed(3)}`)
  console.log(
    `Device data directory after install (du, store + install + indexes) / file size: ${median(diskRatio).toFixed(3)} (goal ≤ 1.2)`,
  )
} finally {
  await rm(root, { recursive: true, force: true })
}
