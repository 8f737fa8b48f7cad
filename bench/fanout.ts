/**
 * Fan-out in the LAN test bed: a seed and 8 devices, each in its own network namespace, every link
 * shaped to 100 Mbit/s in both directions (tbf on the host's egress and on the bridge side of its
 * veth). Checks the shaped rate with iperf3 between two namespaces first, then measures
 *   1. the swarm: time from `llmesh release publish` returning (the release is announced) until
 *      every device logged `release staged` (fetched from any peer, verified against the signed
 *      sha256, file assembled), `--runs` times with fresh data directories; with the bytes the seed
 *      and the devices uploaded and the machine's CPU use (/proc/stat) during the transfer;
 *   2. a central HTTP server (node:http in the seed's namespace) serving the same file to the same
 *      8 namespaces at once (`curl` then `sha256sum` in each), with the daemons stopped;
 * next to the Kumar & Ross (2006) lower bound of swarm distribution
 * max(F/u_s, F/d_min, N·F/(u_s+Σu_i)) and the client-server bound max(N·F/u_s, F/d_min).
 * Prints a markdown table, and per run how busy every link was (bench/link-usage.ts). Needs root,
 * iproute2, iperf3, curl.
 *
 * Usage: npx node bench/fanout.ts [--layers 3] [--embd 512] [--rate 100] [--runs 1] [--http true|false] [--timeout 90] [--prior true|false] [--notsent-lowat BYTES]
 * FANOUT_DEBUG=1 runs the daemons at log level debug and prints their replicator logs (sessions
 * dialed, failed, ended) after each run; FANOUT_PRELOAD=<module> preloads a module into every daemon
 * (`--import`, for experiments such as patching a libp2p setting).
 */
import { createHash } from 'node:crypto'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { writeTinyGguf } from '../node/model/gguf-writer.ts'
import {
  DEVICE_TAG,
  HOLD_POLICY,
  httpStatus,
  installedFile,
  publishRelease,
  shapeIngress,
  startNode,
} from '../test/lan/distribution-bed.ts'
import { type LanNode, makeFleetDir } from '../test/lan/helpers.ts'
import { canRunBed, type Host, TestBed, until } from '../test/lan/netns.ts'
import { LinkSampler, linkReport } from './link-usage.ts'

const { values } = parseArgs({
  options: {
    layers: { type: 'string', default: '3' },
    embd: { type: 'string', default: '512' },
    rate: { type: 'string', default: '100' },
    runs: { type: 'string', default: '1' },
    http: { type: 'string', default: 'true' },
    timeout: { type: 'string', default: '90' },
    // devices that already hold an earlier release (of another model) when the timed one is
    // published, as a running fleet's do: their stores are open (a fresh device opens its store
    // when its first release arrives)
    prior: { type: 'string', default: 'false' },
    // net.ipv4.tcp_notsent_lowat in every host's namespace, bytes (unset: Linux's default, unlimited):
    // a short kernel send queue per connection, for experiments on the order of bytes on the wire
    // (docs/benchmarks.md, "at 20 Mbit/s: thirteenth pass")
    'notsent-lowat': { type: 'string' },
  },
})
const NOTSENT_LOWAT = values['notsent-lowat']
const PRIOR = values.prior === 'true'
const RUNS = Number(values.runs)
const TIMEOUT_S = Number(values.timeout)

/** One swarm run. */
interface SwarmResult {
  run: number
  finished: boolean
  staged: number
  lastMs: number
  firstMs: number
  seedOut: number
  devicesOut: number
  /** Least and most one device uploaded, ×F. */
  deviceOutRange: [number, number]
  /** /proc/loadavg's 1-minute figure before the run and after it. */
  load: [number, number]
  /** Share of both cores busy during the transfer (0..1). */
  cpu: number
  uncaught: number
  /** Per device, ms after publish returned: fetch started, 10 %, 50 %, 90 %, 100 % of the blocks, staged. */
  timeline: Timeline[]
}
/** One device's milestones, ms after `release publish` returned (NaN: not logged). */
interface Timeline {
  fetch: number
  p10: number
  p50: number
  p90: number
  p100: number
  staged: number
}
const N = 8
const RATE_MBIT = Number(values.rate)

if (!canRunBed()) {
  console.error('bench/fanout.ts needs root and ip netns')
  process.exit(1)
}

const sec = (ms: number) => (ms / 1000).toFixed(2)

const bed = await TestBed.create({ hosts: N + 1, shaping: { rate: `${RATE_MBIT}mbit` } })
try {
  for (const h of bed.hosts) await shapeIngress(bed, h, `${RATE_MBIT}mbit`, '64kb')
  if (NOTSENT_LOWAT !== undefined) {
    for (const h of bed.hosts)
      await bed.exec(h, 'sysctl', ['-qw', `net.ipv4.tcp_notsent_lowat=${Number(NOTSENT_LOWAT)}`])
    console.log(`# net.ipv4.tcp_notsent_lowat=${Number(NOTSENT_LOWAT)} in every host's namespace`)
  }
  const [seedHost, ...deviceHosts] = bed.hosts
  const work = bed.logDir

  // 1. the shaped rate, measured
  const iperfServer = bed.spawn(deviceHosts[0], 'iperf3-server', 'iperf3', ['-s', '-1', '-B', deviceHosts[0].ip])
  await new Promise((r) => setTimeout(r, 500))
  const iperf = JSON.parse(
    (await bed.exec(deviceHosts[1], 'iperf3', ['-c', deviceHosts[0].ip, '-t', '3', '-J'], 20_000)).stdout,
  ) as { end: { sum_received: { bits_per_second: number } } }
  await iperfServer.exited
  const measuredMbit = iperf.end.sum_received.bits_per_second / 1e6
  console.log(
    `# iperf3 ${deviceHosts[1].ip} → ${deviceHosts[0].ip}: ${measuredMbit.toFixed(1)} Mbit/s (shaped ${RATE_MBIT})`,
  )

  // the file
  const file = join(work, 'model.gguf')
  const { bytes } = await writeTinyGguf(file, { layers: Number(values.layers), embd: Number(values.embd), seed: 5 })
  const sha = createHash('sha256')
    .update(await readFile(file))
    .digest('hex')

  // 2. the swarm, with the stock pnet cipher and with the windowing fix preloaded
  const fleet = await makeFleetDir(work)
  const swarms: SwarmResult[] = []
  let chunks = 0
  for (let run = 0; run < RUNS; run++) {
    const mode = `run${run}`
    const node = (h: Host, role: 'seed' | 'node') =>
      startNode(bed, h, {
        role,
        fleetDir: fleet.dir,
        dataDir: join(work, `${mode}-data-${h.index}`),
        name: `${mode}-${role}-${h.index}`,
        extra: ['--tags', role === 'seed' ? 'seed' : DEVICE_TAG],
        env: {
          ...(process.env.FANOUT_DEBUG ? { LLMESH_LOG_LEVEL: 'debug' } : {}),
          ...(process.env.FANOUT_PRELOAD ? { NODE_OPTIONS: `--import=${process.env.FANOUT_PRELOAD}` } : {}),
        },
      })
    const seed = await node(seedHost, 'seed')
    const devices: LanNode[] = []
    for (let b = 0; b < N; b += 3) {
      devices.push(...(await Promise.all(deviceHosts.slice(b, b + 3).map((h) => node(h, 'node')))))
    }
    await until(
      async () => (await Promise.all(devices.map((d) => httpStatus(bed, d)))).every((s) => s.peers.length >= N),
      60_000,
      'every device connected to the 8 others',
    )
    const outBytes = (n: LanNode) => httpStatus(bed, n).then((st) => st.replication?.bytesOut ?? 0)
    if (PRIOR) {
      const priorFile = join(work, 'prior.gguf')
      await writeTinyGguf(priorFile, { layers: 1, embd: 64, seed: 3 + run })
      const priorVersion = `0.0.${run}`
      await publishRelease(bed, seed, priorFile, { model: 'prior', version: priorVersion, policy: HOLD_POLICY })
      const priorStaged = (d: LanNode) =>
        d.proc.logs.some((l) => l.msg === 'release staged' && l.model === 'prior' && l.version === priorVersion)
      await until(() => devices.every(priorStaged), 60_000, 'every device staged the prior release')
    }
    // uploads before the timed release (the prior one's), subtracted from the figures below
    const out0 = new Map<LanNode, number>()
    for (const n of [seed, ...devices]) out0.set(n, await outBytes(n).catch(() => 0))
    await new Promise((r) => setTimeout(r, 3000)) // let the daemons settle (no inference worker starts: the devices only prestage)
    const version = `1.0.${swarms.length}`
    const pub = await publishRelease(bed, seed, file, { model: 'fan', version, policy: HOLD_POLICY })
    chunks = pub.manifest.chunks.chunks.length
    const t0 = Date.now()
    const links = new LinkSampler(bed, N + 1, t0)
    const cpu0 = await cpuTimes()
    const load0 = await loadAvg()
    const stagedAt = (d: LanNode) =>
      d.proc.logs.find((l) => l.msg === 'release staged' && l.model === 'fan' && l.version === version)?.time
    // the seed's upload over time (one /status a second): when did it send ½F, 0.9F, F?
    const seedSamples: Array<[number, number]> = []
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        const st = await httpStatus(bed, seed).catch(() => null)
        if (st !== null)
          seedSamples.push([Date.now() - t0, ((st.replication?.bytesOut ?? 0) - (out0.get(seed) ?? 0)) / bytes])
        await new Promise((r) => setTimeout(r, 1000))
      }
    })()
    const finished = await until(
      () => devices.every((d) => stagedAt(d) !== undefined),
      TIMEOUT_S * 1000,
      'every device staged the release',
    ).then(
      () => true,
      () => false,
    )
    const cpu1 = await cpuTimes()
    sampling = false
    await sampler
    const linkSamples = await links.stop()
    const seedAt = (x: number) => seedSamples.find(([, out]) => out >= x)?.[0] ?? Number.NaN
    console.log(
      `# ${mode} seed uploaded 0.25×F by ${sec(seedAt(0.25))} s, 0.5×F ${sec(seedAt(0.5))} s, 0.9×F ${sec(seedAt(0.9))} s, 0.99×F ${sec(seedAt(0.99))} s (sampled every ~1 s)`,
    )
    console.log(`# ${mode} seed upload, s:×F ${seedSamples.map(([t, x]) => `${sec(t)}:${x.toFixed(2)}`).join(' ')}`)
    for (const d of devices.filter((x) => stagedAt(x) === undefined)) {
      const st = await httpStatus(bed, d).catch(() => null)
      const peers = Object.values(st?.replication?.peers ?? {}).map((p) => [p.bytesIn, p.bytesOut, p.state])
      const logs = d.proc.logs.slice(-4).map((l) => l.msg)
      console.log(`# not staged: ${d.proc.name} in=${st?.replication?.bytesIn} peers=${JSON.stringify(peers)} ${logs}`)
    }
    const at = (d: LanNode, msg: string) =>
      (d.proc.logs.find((l) => l.msg === msg && l.model === 'fan' && l.version === version)?.time ?? Number.NaN) - t0
    const timeline = devices.map((d) => ({
      fetch: at(d, 'fetching release'),
      p10: at(d, 'download 10%'),
      p50: at(d, 'download 50%'),
      p90: at(d, 'download 90%'),
      p100: at(d, 'download 100%'),
      staged: at(d, 'release staged'),
    }))
    for (const [k, tl] of timeline.entries())
      console.log(
        `# ${devices[k].proc.name}: fetch ${sec(tl.fetch)} s, 10% ${sec(tl.p10)}, 50% ${sec(tl.p50)}, 90% ${sec(tl.p90)}, 100% ${sec(tl.p100)}, staged ${sec(tl.staged)}`,
      )
    const times = devices.map(stagedAt).filter((t): t is number => t !== undefined)
    for (const d of devices) {
      if (stagedAt(d) === undefined) continue
      const got = createHash('sha256')
        .update(await readFile(installedFile(d, 'fan', version)))
        .digest('hex')
      if (got !== sha || got !== pub.manifest.file.sha256) throw new Error(`${d.proc.name} holds a different file`)
    }
    // the seed may have died (stock cipher): NaN then
    const sessions: string[] = []
    const outOf = (n: LanNode) =>
      httpStatus(bed, n).then(
        (st) => {
          const active = Object.values(st.replication?.peers ?? {}).filter((p) => p.state === 'active').length
          sessions.push(`${active}/${st.peers.length}`)
          return ((st.replication?.bytesOut ?? 0) - (out0.get(n) ?? 0)) / bytes
        },
        () => Number.NaN,
      )
    const seedOut = await outOf(seed)
    const perDevice = await Promise.all(devices.map(outOf))
    const devicesOut = perDevice.reduce((a, b) => a + b, 0)
    console.log(`# replication sessions / libp2p peers per node (seed first): ${sessions.join(' ')}`)
    if (process.env.FANOUT_DEBUG) {
      for (const p of [seed, ...devices]) {
        for (const l of p.proc.logs.filter((x) => x.svc === 'replicator')) {
          console.log(
            `# ${p.proc.name} ${(l.time ?? t0) - t0} ${l.msg} ${l.peer ?? ''} ${l.err ?? ''} ${l.initiator ?? ''}`,
          )
        }
      }
    }
    const crashed = [seed, ...devices].filter((p) =>
      p.proc.logs.some((l) => l.msg === 'uncaught exception' || l.signal === 'uncaughtException'),
    )
    swarms.push({
      run,
      finished,
      staged: times.length,
      lastMs: finished ? Math.max(...times) - t0 : TIMEOUT_S * 1000,
      firstMs: times.length > 0 ? Math.min(...times) - t0 : Number.NaN,
      seedOut,
      devicesOut,
      deviceOutRange: [Math.min(...perDevice), Math.max(...perDevice)],
      load: [load0, await loadAvg()],
      cpu: (cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total),
      uncaught: crashed.length,
      timeline,
    })
    const { timeline: _, ...summary } = swarms.at(-1) as SwarmResult
    console.log(`# swarm (${mode}): ${JSON.stringify(summary)}`)
    console.log(`# ${mode} milestones, median (min–max) over devices: ${milestones(timeline)}`)
    console.log(linkReport(mode, linkSamples, timeline, RATE_MBIT))
    for (const p of [...devices, seed]) await bed.terminate(p.proc)
    for (const p of [...devices, seed]) await rm(p.dataDir, { recursive: true, force: true })
  }

  // 3. a central HTTP server in the seed's namespace, the 8 devices fetching at once
  let httpCpu = Number.NaN
  const httpMs = values.http === 'false' ? Number.NaN : await centralHttp()
  async function centralHttp(): Promise<number> {
    const serve = `
      const { createServer } = require('node:http'); const { createReadStream, statSync } = require('node:fs')
      const [file, host] = process.argv.slice(1)
      createServer((req, res) => {
        res.writeHead(200, { 'content-length': statSync(file).size, 'content-type': 'application/octet-stream' })
        createReadStream(file).pipe(res)
      }).listen(8080, host, () => console.log('listening'))`
    const server = bed.spawn(seedHost, 'http-server', process.execPath, ['-e', serve, file, seedHost.ip])
    await until(() => server.stdout.includes('listening'), 10_000, 'http server')
    const h0 = Date.now()
    const c0 = await cpuTimes()
    const httpDone = await Promise.all(
      deviceHosts.map(async (h) => {
        const out = join(work, `curl-${h.index}.gguf`)
        const { stdout } = await bed.exec(
          h,
          'sh',
          ['-c', 'curl -sf -o "$1" "$2" && sha256sum "$1"', 'sh', out, `http://${seedHost.ip}:8080/model.gguf`],
          600_000,
        )
        if (!stdout.startsWith(sha)) throw new Error(`curl in ${h.ns} got a different file`)
        const at = Date.now() - h0
        await rm(out, { force: true })
        return at
      }),
    )
    const httpMs = Math.max(...httpDone)
    const c1 = await cpuTimes()
    httpCpu = (c1.busy - c0.busy) / (c1.total - c0.total)
    await bed.terminate(server)
    return httpMs
  }

  // 4. bounds, with the nominal link rate (bits/s) and the iperf3-measured one
  const F = bytes * 8
  const bounds = (u: number) => ({
    swarm: Math.max(F / u, F / u, (N * F) / (u + N * u)) * 1000,
    server: Math.max((N * F) / u, F / u) * 1000,
  })
  const nominal = bounds(RATE_MBIT * 1e6)
  const measured = bounds(measuredMbit * 1e6)
  console.log(
    `\n\`npx node bench/fanout.ts --layers ${values.layers} --embd ${values.embd} --rate ${values.rate} --runs ${values.runs}${NOTSENT_LOWAT === undefined ? '' : ` --notsent-lowat ${NOTSENT_LOWAT}`}\`: ` +
      `${N} devices, F = ${(bytes / 1048576).toFixed(1)} MiB, every link ${RATE_MBIT} Mbit/s each way ` +
      `(iperf3: ${measuredMbit.toFixed(1)} Mbit/s), ${chunks} chunks\n`,
  )
  console.log(
    '| distribution | time until all 8 hold the verified file | bound (nominal / iperf3 rate) | time / bound |',
  )
  console.log('|---|---|---|---|')
  const kr = `Kumar & Ross max(F/u_s, F/d_min, N·F/(u_s+Σu_i)) = ${sec(nominal.swarm)} / ${sec(measured.swarm)} s`
  for (const w of swarms) {
    const what = `llmesh swarm, run ${w.run + 1} (CPU ${(w.cpu * 100).toFixed(0)}% of 2 cores, load ${w.load.join(' → ')})`
    const time = w.finished
      ? `${sec(w.lastMs)} s (first device ${sec(w.firstMs)} s; seed uploaded ${w.seedOut.toFixed(2)}×F, devices ${w.devicesOut.toFixed(2)}×F, ${w.deviceOutRange.map((x) => x.toFixed(2)).join('–')}×F each)`
      : `not done after ${TIMEOUT_S} s: ${w.staged}/8 staged, ${w.uncaught} daemons logged uncaught exceptions`
    const ratio = w.finished ? (w.lastMs / nominal.swarm).toFixed(2) : `> ${(w.lastMs / nominal.swarm).toFixed(0)}`
    console.log(`| ${what} | ${time} | ${kr} | ${ratio} |`)
  }
  if (values.http !== 'false') {
    console.log(
      `| central HTTP server (node:http, 8 × curl + sha256sum; CPU ${(httpCpu * 100).toFixed(0)}%) | ${sec(httpMs)} s | ` +
        `client-server max(N·F/u_s, F/d_min) = ${sec(nominal.server)} / ${sec(measured.server)} s | ${(httpMs / nominal.server).toFixed(2)} |`,
    )
  }
  const best = swarms.filter((w) => w.finished).map((w) => w.lastMs)
  if (best.length > 0 && !Number.isNaN(httpMs))
    console.log(
      `\nfastest swarm / HTTP = ${(Math.min(...best) / httpMs).toFixed(2)} (HTTP ${(httpMs / Math.min(...best)).toFixed(2)}× slower)`,
    )
} finally {
  await bed.destroy()
}

/** Median (min–max) over devices of each milestone, seconds. */
function milestones(tl: Timeline[]): string {
  const keys = ['fetch', 'p10', 'p50', 'p90', 'p100', 'staged'] as const
  return keys
    .map((k) => {
      const v = tl
        .map((t) => t[k])
        .filter((x) => !Number.isNaN(x))
        .sort((a, b) => a - b)
      if (v.length === 0) return `${k} –`
      return `${k} ${sec(v[Math.floor((v.length - 1) / 2)])} (${sec(v[0])}–${sec(v[v.length - 1])})`
    })
    .join(', ')
}

/** The 1-minute load average (/proc/loadavg). */
async function loadAvg(): Promise<number> {
  return Number((await readFile('/proc/loadavg', 'utf8')).split(' ')[0])
}

/** Busy and total jiffies of all CPUs (/proc/stat). */
async function cpuTimes(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  const total = f.reduce((a, b) => a + b, 0)
  const idle = f[3] + (f[4] ?? 0)
  return { busy: total - idle, total }
}
