/**
 * One-to-one distribution throughput on loopback: a seed and a device (libp2p TCP + Noise +
 * yamux, hypercore replication inside) next to `curl` fetching the same file from a plain
 * node:http server, in the same run. The device runs in its own process (bench/distribution-device.ts),
 * as curl does. Prints a markdown table.
 *
 * Usage: npx node bench/distribution.ts [--mib 256] [--runs 5] [--inflight 16] [--avg-kib 64,128] [--no-tcp]
 *   [--v1] [--pnet] [--warm] [--baseline <dir>] [--device-flags="--optimize-for-size --no-opt"] [--device-log <dir>] [--baseline-new-lineage]
 *   [--seed-prof <dir>] [--raw-node]
 * (the file is published as a new lineage, so with the store's new-lineage chunk parameters;
 * --baseline: also run the device side of another checkout, e.g. main's tree with a node_modules
 * link, `<dir>/bench/distribution-device.ts`, against the same seed in the same runs: v2 over
 * noise+yamux, its own store and installer code, fetching the same file published in a lineage with
 * the chunker's defaults (16/64/256 KiB, what main published before lineages; with
 * --baseline-new-lineage the new-lineage file this tree's device fetches, so only device code differs);
 * --warm: also this tree's device as a
 * running daemon, the same process having fetched and installed an unrelated 8 MiB release first)
 * (the seed, this process, re-runs itself and the devices run with the Node flags and MALLOC_ARENA_MAX
 * the package's launcher gives a daemon (packaging/constants.ts `launcherSettings`), unless --raw-node;
 * --seed-prof: a V8 CPU profile of the seed (this process) over each device run only (not the file's
 * making and publishing, nor curl's server), written to `<dir>/seed-<variant>-<run>.cpuprofile`;
 * --device-flags: node flags of the device process, instead of the launcher's, e.g. to measure V8
 * settings' CPU cost;
 * --device-log: write each device run's stdout + stderr to `<dir>/<variant>-<run>.log`, e.g. its --trace-gc lines)
 * (--inflight: hypercore's in-flight minimum on the device, 3× it per peer; --avg-kib: also the file
 * in one lineage per FastCDC average chunk size listed, min = avg/4, max = 4 × avg, or per
 * `min/avg/max` listed; --v1: also
 * fetch + install with replication protocol version 1 (hypercore's secret-stream inside libp2p), in
 * the same runs; --pnet: also v2 inside a private network, as every llmesh node runs, in the same
 * runs: the seed has a second host in one; the device variants run in an order rotated per run)
 */
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { type AddressInfo, createServer as createNetServer } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { silentLogger } from '../node/logger.ts'
import type { ChunkingOptions } from '../node/store/chunker.ts'
import { LEGACY_CHUNKING } from '../node/store/lineage-chunking.ts'
import { ModelStore } from '../node/store/model-store.ts'
import { Replicator } from '../node/store/replicator.ts'
import { DEFAULT_POLICY } from '../protocols/rollout/policy-defaults.ts'
import { buildReleaseManifest } from '../seed/manifest.ts'
import { benchHost, benchPsk } from './distribution-host.ts'
import { daemonSettings, runAsDaemon } from './launcher.ts'

const execFileP = promisify(execFile)
const DEVICE = join(import.meta.dirname, 'distribution-device.ts')
const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' },
    runs: { type: 'string', default: '5' },
    inflight: { type: 'string' },
    'avg-kib': { type: 'string' },
    'no-tcp': { type: 'boolean', default: false },
    'device-flags': { type: 'string' },
    'raw-node': { type: 'boolean', default: false },
    v1: { type: 'boolean', default: false },
    pnet: { type: 'boolean', default: false },
    warm: { type: 'boolean', default: false },
    baseline: { type: 'string' },
    'device-log': { type: 'string' },
    'baseline-new-lineage': { type: 'boolean', default: false },
    'seed-prof': { type: 'string' },
  },
})
// the seed (this process) and the devices run as the launcher runs daemons, unless --raw-node
runAsDaemon(import.meta.filename, values['raw-node'])
const DAEMON = values['raw-node'] ? { flags: [], env: {} } : daemonSettings()
const DEVICE_FLAGS =
  values['device-flags'] === undefined ? DAEMON.flags : values['device-flags'].split(/\s+/).filter(Boolean)
const INFLIGHT = values.inflight === undefined ? undefined : Number(values.inflight)
/** `avg` (min avg/4, max 4 × avg) or `min/avg/max`, KiB. */
const CHUNKINGS = (values['avg-kib'] ?? '')
  .split(',')
  .filter(Boolean)
  .map((k) => {
    const n = k.split('/').map((x) => Number(x) * 1024)
    return n.length === 3 ? { min: n[0], avg: n[1], max: n[2] } : { min: n[0] / 4, avg: n[0], max: n[0] * 4 }
  })
const MIB = Number(values.mib)
const RUNS = Number(values.runs)
const logger = silentLogger()
const PSK = values.pnet ? benchPsk() : undefined
/** A device variant: libp2p mode of bench/distribution-device.ts, and whether inside the private network. */
interface Variant {
  key: string
  mode: 'libp2p' | 'libp2p-v1'
  pnet: boolean
  label: string
  /** The device script (default this tree's). */
  script?: string
  /** The lineage the variant fetches: chunk parameters (default: the store's for a new lineage). */
  chunking?: ChunkingOptions
  /** Install an unrelated small release first, in the same device process (a running daemon). */
  warm?: boolean
}
const ALL_VARIANTS: (Variant & { on: boolean })[] = [
  { key: 'v2', mode: 'libp2p', pnet: false, label: 'v2 (framed, no secret-stream), noise+yamux', on: true },
  {
    key: 'v1',
    mode: 'libp2p-v1',
    pnet: false,
    label: 'v1 (hypercore secret-stream inside), noise+yamux',
    on: values.v1,
  },
  { key: 'v2-pnet', mode: 'libp2p', pnet: true, label: 'v2, pnet+noise+yamux (as llmesh nodes)', on: values.pnet },
  {
    key: 'baseline',
    mode: 'libp2p',
    pnet: false,
    label: `v2, noise+yamux, BASELINE device code (${values.baseline})`,
    script: values.baseline === undefined ? undefined : join(values.baseline, 'bench/distribution-device.ts'),
    chunking: values['baseline-new-lineage'] ? undefined : LEGACY_CHUNKING,
    on: values.baseline !== undefined,
  },
  {
    key: 'v2-warm',
    mode: 'libp2p',
    pnet: false,
    label: 'v2, noise+yamux, WARM device (an 8 MiB release installed first)',
    warm: true,
    on: values.warm,
  },
  ...CHUNKINGS.map((c) => ({
    key: `v2-${c.min / 1024}-${c.avg / 1024}-${c.max / 1024}`,
    mode: 'libp2p' as const,
    pnet: false,
    label: `v2, noise+yamux, chunks ${c.min / 1024}/${c.avg / 1024}/${c.max / 1024} KiB`,
    chunking: c,
    on: true,
  })),
]
const VARIANTS: Variant[] = ALL_VARIANTS.filter((v) => v.on)

/** The plain HTTP server curl fetches from: `node -e` it with the file's path; prints its port. */
const HTTP_SERVER = `
  const { createServer } = require('node:http'); const { createReadStream, statSync } = require('node:fs')
  const file = process.argv[1]
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-length': statSync(file).size, 'content-type': 'application/octet-stream' })
    createReadStream(file).pipe(res)
  }).listen(0, '127.0.0.1', () => console.log(server.address().port))`

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
  // one lineage (and manifest file) per chunk parameters the variants fetch
  const publish = async (model: string, path: string, chunking?: ChunkingOptions) => {
    const t = performance.now()
    const append = await seedStore.appendFile(model, path, { chunking })
    const ingestS = (performance.now() - t) / 1000
    const manifest = buildReleaseManifest({
      fleet: 'bench-fleet',
      model,
      version: '1.0.0',
      seq: 1,
      append,
      gguf: { quantization: 'F32', architecture: 'llama' },
      policy: DEFAULT_POLICY,
      minRamMb: 1,
      now: Date.now(),
    })
    const manifestFile = join(root, `${model}.manifest.json`)
    await writeFile(manifestFile, JSON.stringify(manifest))
    return { append, ingestS, manifestFile }
  }
  const lineageOf = (c?: ChunkingOptions) => (c === undefined ? 'bench' : `bench-${c.min}-${c.avg}-${c.max}`)
  const lineages = new Map<string, Awaited<ReturnType<typeof publish>>>()
  for (const v of [{ chunking: undefined }, ...VARIANTS]) {
    const name = lineageOf(v.chunking)
    if (!lineages.has(name)) lineages.set(name, await publish(name, file, v.chunking))
  }
  const { append, ingestS } = lineages.get('bench') as Awaited<ReturnType<typeof publish>>
  let warmManifestFile: string | undefined
  if (values.warm) {
    const warmFile = join(root, 'warm.bin')
    await writeFile(warmFile, randomBytes(8 * 1024 * 1024))
    warmManifestFile = (await publish('warm', warmFile)).manifestFile
  }
  const seedHost = await benchHost()
  const seedRep = new Replicator({ libp2p: seedHost, store: seedStore, logger })
  await seedRep.start()
  // the same store behind a second host inside the private network (replicators only name peers differently)
  const pnetHost = PSK === undefined ? undefined : await benchHost(PSK)
  const pnetRep = pnetHost === undefined ? undefined : new Replicator({ libp2p: pnetHost, store: seedStore, logger })
  await pnetRep?.start()

  const tcpServer = createNetServer((sock) => {
    const s = seedStore.store.replicate(false)
    sock.pipe(s).pipe(sock)
    sock.on('error', () => s.destroy())
    s.on('error', () => sock.destroy())
  })
  await new Promise<void>((r) => tcpServer.listen(0, '127.0.0.1', r))
  const device = async (
    mode: 'libp2p' | 'libp2p-v1' | 'tcp',
    r: number,
    pnet = false,
    script = DEVICE,
    v: Pick<Variant, 'chunking' | 'warm' | 'key'> = { key: mode },
  ) => {
    const dataDir = join(root, `${v.key}${mode}${pnet ? '-pnet' : ''}${script === DEVICE ? '' : '-base'}${r}`)
    const { manifestFile } = lineages.get(lineageOf(v.chunking)) as Awaited<ReturnType<typeof publish>>
    const warm = v.warm ? warmManifestFile : undefined
    const host = pnet ? pnetHost : seedHost
    const addr =
      mode !== 'tcp' ? host?.getMultiaddrs()[0].toString() : `127.0.0.1:${(tcpServer.address() as AddressInfo).port}`
    const psk = pnet ? PSK : undefined
    const seedCpu0 = process.cpuUsage()
    const { stdout, stderr } = await execFileP(
      process.execPath,
      [
        ...DEVICE_FLAGS,
        script,
        JSON.stringify({ mode, addr, manifestFile, dataDir, inflight: INFLIGHT, psk, warmManifestFile: warm }),
      ],
      { maxBuffer: values['device-log'] === undefined ? 1 << 20 : 1 << 28, env: { ...process.env, ...DAEMON.env } },
    )
    // --device-log: each device run's output (e.g. its --trace-gc lines) kept for reading
    if (values['device-log'] !== undefined) {
      await writeFile(join(values['device-log'], `${v.key}-${r}.log`), stdout + stderr)
    }
    // the seed (this process) serving the device, user + system, over the device's whole run
    const seedCpu = process.cpuUsage(seedCpu0)
    await rm(dataDir, { recursive: true, force: true })
    const d = JSON.parse(stdout.trim().split('\n').pop() as string) as {
      fetchS: number
      installS: number
      fetchCpuS: number
      installCpuS: number
      bytesIn: number
      du: number
      /** The device process's peak RSS (absent from a baseline tree's device), MiB. */
      maxRssMib?: number
      /** RocksDB read batches of the device's store during the timed fetch + install (absent from older trees' devices). */
      readBatches?: number
    }
    return { ...d, seedCpuS: (seedCpu.user + seedCpu.system) / 1e6 }
  }
  // plain HTTP + curl, interleaved with the device runs so that both see the same machine load; the
  // server is a plain Node process of its own (Node's default flags and environment), not the seed
  const plainEnv = { ...process.env }
  delete plainEnv.MALLOC_ARENA_MAX
  delete plainEnv.LLMESH_BENCH_AS_DAEMON
  const server = spawn(process.execPath, ['-e', HTTP_SERVER, file], {
    env: plainEnv,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  process.once('exit', () => server.kill())
  const port = await new Promise<number>((resolve, reject) => {
    server.stdout.setEncoding('utf8').once('data', (line: string) => resolve(Number(line.trim())))
    server.once('exit', (code) => reject(new Error(`the HTTP server exited (${code})`)))
  })
  const curl = async (r: number): Promise<number> => {
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
    const s = Number(stdout) + (performance.now() - t0) / 1000
    await rm(out, { force: true })
    return s
  }
  type Run = Awaited<ReturnType<typeof device>>
  const runs = new Map<Variant, Run[]>(VARIANTS.map((v) => [v, []]))
  const curlS: number[] = []
  const tcpS: number[] = []
  const load0 = loadavg()
  // --seed-prof: the profiler is started and stopped around each device run; the profiles are kept
  // per variant and written at the end, one file per run
  const prof = values['seed-prof'] === undefined ? undefined : new Session()
  const profiles = new Map<string, unknown[]>()
  if (prof !== undefined) {
    prof.connect()
    await prof.post('Profiler.enable')
    await prof.post('Profiler.setSamplingInterval', { interval: 200 })
  }
  const profiled = async <T>(key: string, run: () => Promise<T>): Promise<T> => {
    if (prof === undefined) return run()
    await prof.post('Profiler.start')
    try {
      return await run()
    } finally {
      const { profile } = await prof.post('Profiler.stop')
      profiles.set(key, [...(profiles.get(key) ?? []), profile])
    }
  }
  for (let r = 0; r < RUNS; r++) {
    curlS.push(await curl(r))
    // rotate which variant goes first, so none always runs on a warmer machine
    for (let k = 0; k < VARIANTS.length; k++) {
      const v = VARIANTS[(r + k) % VARIANTS.length]
      runs.get(v)?.push(await profiled(v.key, () => device(v.mode, r, v.pnet, v.script, v)))
    }
    if (!values['no-tcp']) tcpS.push((await device('tcp', r)).fetchS)
  }
  for (const [key, ps] of profiles) {
    for (const [i, p] of ps.entries()) {
      await writeFile(join(values['seed-prof'] as string, `seed-${key}-${i}.cpuprofile`), JSON.stringify(p))
    }
  }
  prof?.disconnect()
  tcpServer.close()
  server.kill()
  await seedRep.stop()
  await seedHost.stop()
  await pnetRep?.stop()
  await pnetHost?.stop()
  await seedStore.stop()

  const mbps = (s: number) => (size / 1048576 / s).toFixed(1)
  const c = median(curlS)
  const c0 = append.chunks.chunking
  const kib = (n: number) => n / 1024
  console.log(
    `File: ${MIB} MiB of random bytes, ${append.chunks.chunks.length} chunks (FastCDC ${kib(c0.min)}/${kib(c0.avg)}/${kib(c0.max)} KiB)${INFLIGHT === undefined ? '' : `, in-flight ${INFLIGHT}`}, seed node flags ${process.execArgv.join(' ') || 'none'}, device node flags ${DEVICE_FLAGS.join(' ') || 'none'}, MALLOC_ARENA_MAX ${process.env.MALLOC_ARENA_MAX ?? 'unset'}; ${RUNS} runs, medians; loopback, ${process.arch}, Node ${process.version}\n`,
  )
  console.log('| path | time (s) | MiB/s | throughput vs curl |')
  console.log('|---|---:|---:|---:|')
  console.log(`| seed: chunk + append to feed | ${ingestS.toFixed(2)} | ${mbps(ingestS)} | |`)
  for (const [name, l] of lineages) {
    if (name === 'bench') continue
    const p = l.append.chunks.chunking
    console.log(
      `| seed: chunk + append, lineage ${kib(p.min)}/${kib(p.avg)}/${kib(p.max)} KiB (${l.append.chunks.chunks.length} chunks) | ${l.ingestS.toFixed(2)} | ${mbps(l.ingestS)} | |`,
    )
  }
  console.log(`| curl ← node:http (plain TCP) + sha256sum | ${c.toFixed(2)} | ${mbps(c)} | 1.00 |`)
  const row = (label: string, t: number) => `| ${label} | ${t.toFixed(2)} | ${mbps(t)} | ${(c / t).toFixed(2)} |`
  const p = median(tcpS)
  if (tcpS.length > 0) console.log(row('(reference) hypercore over plain TCP, no libp2p, fetch only', p))
  const cpu: string[] = []
  for (const [{ label: v }, rs] of runs) {
    const f = median(rs.map((d) => d.fetchS))
    const i = median(rs.map((d) => d.installS))
    console.log(row(`device ← seed over libp2p, replication ${v}: fetch`, f))
    console.log(`| device, ${v}: assemble + fsync + sha256 verify | ${i.toFixed(2)} | ${mbps(i)} | |`)
    console.log(row(`**device, ${v}: fetch + install**`, median(rs.map((d) => d.fetchS + d.installS))))
    cpu.push(
      `${v}: fetch ${median(rs.map((d) => d.fetchCpuS)).toFixed(2)} s, install ${median(rs.map((d) => d.installCpuS)).toFixed(2)} s (seed serving it: ${median(rs.map((d) => d.seedCpuS)).toFixed(2)} s); wire bytes / file ${median(rs.map((d) => d.bytesIn / size)).toFixed(3)}; data directory / file ${median(rs.map((d) => d.du / size)).toFixed(3)}; peak RSS ${median(rs.map((d) => d.maxRssMib ?? Number.NaN)).toFixed(0)} MiB; RocksDB read batches ${median(rs.map((d) => d.readBatches ?? Number.NaN)).toFixed(0)}`,
    )
  }
  console.log(`\nDevice process CPU (user + system, medians):\n${cpu.map((l) => `- ${l}`).join('\n')}`)
  const la = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ')
  console.log(`Load average at the start: ${la(load0)}; at the end: ${la(loadavg())}`)
} finally {
  await rm(root, { recursive: true, force: true })
}
