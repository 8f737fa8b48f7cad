/**
 * Fan-out in the LAN test bed: a seed and 8 devices, each in its own network namespace, every link
 * shaped to 100 Mbit/s in both directions (tbf on the host's egress and on the bridge side of its
 * veth). Checks the shaped rate with iperf3 between two namespaces first, then measures
 *   1. the swarm: time from `llmesh release publish` returning (the release is announced) until
 *      every device logged `release staged` (fetched from any peer, verified against the signed
 *      sha256, file assembled); run with the daemons as shipped (`stock`) and with
 *      node/mesh/pnet-cipher-fix.ts preloaded (`fixed`, see there: the stock pnet cipher crashes under
 *      bulk transfer), each with fresh data directories;
 *   2. a central HTTP server (node:http in the seed's namespace) serving the same file to the same
 *      8 namespaces at once (`curl` then `sha256sum` in each), with the daemons stopped;
 * next to the Kumar & Ross (2006) lower bound of swarm distribution
 * max(F/u_s, F/d_min, N·F/(u_s+Σu_i)) and the client-server bound max(N·F/u_s, F/d_min).
 * Prints a markdown table. Needs root, iproute2, iperf3, curl.
 *
 * Usage: npx node bench/fanout.ts [--layers 3] [--embd 512] [--rate 100] [--swarm both|stock|fixed] [--timeout 90]
 */
import { createHash } from 'node:crypto'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { writeTinyGguf } from '../test/fixtures/gguf-writer.ts'
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

const { values } = parseArgs({
  options: {
    layers: { type: 'string', default: '3' },
    embd: { type: 'string', default: '512' },
    rate: { type: 'string', default: '100' },
    swarm: { type: 'string', default: 'both' },
    timeout: { type: 'string', default: '90' },
  },
})
const MODES = values.swarm === 'both' ? (['stock', 'fixed'] as const) : [values.swarm as 'stock' | 'fixed']
const TIMEOUT_S = Number(values.timeout)
const FIX = join(import.meta.dirname, '../node/mesh/pnet-cipher-fix.ts')

/** One swarm run. */
interface SwarmResult {
  mode: 'stock' | 'fixed'
  finished: boolean
  staged: number
  lastMs: number
  firstMs: number
  seedOut: number
  uncaught: number
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
  for (const mode of MODES) {
    const env = mode === 'fixed' ? { NODE_OPTIONS: `--import=${FIX}` } : {}
    const node = (h: Host, role: 'seed' | 'node') =>
      startNode(bed, h, {
        role,
        fleetDir: fleet.dir,
        dataDir: join(work, `${mode}-data-${h.index}`),
        name: `${mode}-${role}-${h.index}`,
        extra: ['--tags', role === 'seed' ? 'seed' : DEVICE_TAG],
        env,
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
    await new Promise((r) => setTimeout(r, 3000)) // let the inference workers finish starting
    const version = `1.0.${swarms.length}`
    const pub = await publishRelease(bed, seed, file, { model: 'fan', version, policy: HOLD_POLICY })
    chunks = pub.manifest.chunks.chunks.length
    const t0 = Date.now()
    const stagedAt = (d: LanNode) =>
      d.proc.logs.find((l) => l.msg === 'release staged' && l.model === 'fan' && l.version === version)?.time
    const finished = await until(
      () => devices.every((d) => stagedAt(d) !== undefined),
      TIMEOUT_S * 1000,
      'every device staged the release',
    ).then(
      () => true,
      () => false,
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
    const seedOut = await httpStatus(bed, seed).then(
      (st) => (st.replication?.bytesOut ?? 0) / bytes,
      () => Number.NaN,
    )
    const crashed = [seed, ...devices].filter((p) =>
      p.proc.logs.some((l) => l.msg === 'uncaught exception' || l.signal === 'uncaughtException'),
    )
    swarms.push({
      mode,
      finished,
      staged: times.length,
      lastMs: finished ? Math.max(...times) - t0 : TIMEOUT_S * 1000,
      firstMs: times.length > 0 ? Math.min(...times) - t0 : Number.NaN,
      seedOut,
      uncaught: crashed.length,
    })
    console.log(`# swarm (${mode}): ${JSON.stringify(swarms.at(-1))}`)
    for (const p of [...devices, seed]) await bed.terminate(p.proc)
    for (const p of [...devices, seed]) await rm(p.dataDir, { recursive: true, force: true })
  }

  // 3. a central HTTP server in the seed's namespace, the 8 devices fetching at once
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
  await bed.terminate(server)

  // 4. bounds, with the nominal link rate (bits/s) and the iperf3-measured one
  const F = bytes * 8
  const bounds = (u: number) => ({
    swarm: Math.max(F / u, F / u, (N * F) / (u + N * u)) * 1000,
    server: Math.max((N * F) / u, F / u) * 1000,
  })
  const nominal = bounds(RATE_MBIT * 1e6)
  const measured = bounds(measuredMbit * 1e6)
  console.log(
    `\n\`npx node bench/fanout.ts --layers ${values.layers} --embd ${values.embd} --rate ${values.rate} --swarm ${values.swarm}\`: ` +
      `${N} devices, F = ${(bytes / 1048576).toFixed(1)} MiB, every link ${RATE_MBIT} Mbit/s each way ` +
      `(iperf3: ${measuredMbit.toFixed(1)} Mbit/s), ${chunks} chunks\n`,
  )
  console.log(
    '| distribution | time until all 8 hold the verified file | bound (nominal / iperf3 rate) | time / bound |',
  )
  console.log('|---|---|---|---|')
  const kr = `Kumar & Ross max(F/u_s, F/d_min, N·F/(u_s+Σu_i)) = ${sec(nominal.swarm)} / ${sec(measured.swarm)} s`
  for (const w of swarms) {
    const what =
      w.mode === 'fixed'
        ? 'llmesh swarm, pnet cipher fed ≤ 64 KiB at a time (fix of libp2p#3585 preloaded)'
        : 'llmesh swarm as shipped (@libp2p/pnet 3.0.27, xsalsa20 1.2.0)'
    const time = w.finished
      ? `${sec(w.lastMs)} s (first device ${sec(w.firstMs)} s; seed uploaded ${w.seedOut.toFixed(2)}×F)`
      : `not done after ${TIMEOUT_S} s: ${w.staged}/8 staged, ${w.uncaught} daemons logged uncaught exceptions`
    const ratio = w.finished ? (w.lastMs / nominal.swarm).toFixed(2) : `> ${(w.lastMs / nominal.swarm).toFixed(0)}`
    console.log(`| ${what} | ${time} | ${kr} | ${ratio} |`)
  }
  console.log(
    `| central HTTP server (node:http, 8 × curl + sha256sum) | ${sec(httpMs)} s | ` +
      `client-server max(N·F/u_s, F/d_min) = ${sec(nominal.server)} / ${sec(measured.server)} s | ${(httpMs / nominal.server).toFixed(2)} |`,
  )
  const best = swarms.filter((w) => w.finished).map((w) => w.lastMs)
  if (best.length > 0) console.log(`\nfastest swarm / HTTP = ${(Math.min(...best) / httpMs).toFixed(2)}`)
} finally {
  await bed.destroy()
}
