/**
 * Rollout timings with 16 devices + a seed, each a real `llmesh` process on loopback (mDNS off,
 * every device dials the seed and two earlier devices), each device with its inference worker.
 *
 * 1. v1 (one stage) everywhere, then v2: pilot (1 device) → canary (4) → full. Figure: from the
 *    first adopted promote verdict of a stage (its `decided_at`) to each device of the next
 *    stage logging `release serving` for v2.
 * 2. v3 is broken (a GGUF llama.cpp refuses to load, validly signed), its first stage a canary of
 *    4 devices. Figures: from the first canary device's load failure (`new version failed`) to
 *    the last canary device back on v2 (`rolled back locally`), and to the abort being known on
 *    every node (GET /rollout polled every 250 ms from this process).
 *
 * Usage: npx node bench/rollout-fleet.ts [--devices 16] [--report 2s]
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { initFleet } from '../node/fleet/index.ts'
import { writeTinyGguf } from '../node/model/gguf-writer.ts'
import type { ReleaseRolloutStatus } from '../node/rollout/plan.ts'

const run = promisify(execFile)
const BIN = join(import.meta.dirname, '..', 'cli', 'bin.ts')
const { values } = parseArgs({
  options: { devices: { type: 'string', default: '16' }, report: { type: 'string', default: '2s' } },
})
const N = Number(values.devices)
const REPORT = values.report

type Log = Record<string, unknown> & { msg?: string; time?: number; version?: string }
interface Proc {
  name: string
  child: ChildProcess
  logs: Log[]
  api: string
  multiaddr: string
}

const root = await mkdtemp(join(tmpdir(), 'bench-rollout-'))
const procs: Proc[] = []
const stopAll = () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL')
}
process.on('exit', stopAll)

async function until(check: () => boolean | Promise<boolean>, ms: number, what: string, every = 250): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, every))
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`)
}

async function start(role: 'seed' | 'node', name: string, extra: string[]): Promise<Proc> {
  const data = join(root, name)
  const child = spawn(
    process.execPath,
    [BIN, role, 'start', '--fleet', join(root, 'fleet'), '--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LLMESH_LOG_LEVEL: 'info' } },
  )
  const p: Proc = { name, child, logs: [], api: '', multiaddr: '' }
  let partial = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    for (const l of lines) if (l.startsWith('{')) p.logs.push(JSON.parse(l) as Log)
  })
  procs.push(p)
  await until(() => p.logs.some((l) => l.msg === 'llmesh node started') || child.exitCode !== null, 60_000, name)
  if (child.exitCode !== null) throw new Error(`${name} exited`)
  const info = JSON.parse(await readFile(join(data, 'node.json'), 'utf8')) as { api: string; multiaddrs: string[] }
  p.api = info.api
  p.multiaddr = info.multiaddrs.find((m) => m.includes('127.0.0.1')) ?? info.multiaddrs[0]
  return p
}

const getJson = async <T>(p: Proc, path: string): Promise<T> => (await (await fetch(`${p.api}${path}`)).json()) as T
const rollout = async (p: Proc, v: string) =>
  (await getJson<{ releases: ReleaseRolloutStatus[] }>(p, '/rollout')).releases.find((r) => r.version === v)
const logAt = (p: Proc, msg: string, v: string, after = 0) =>
  p.logs.find((l) => l.msg === msg && l.version === v && (l.time ?? 0) >= after)?.time

async function publish(seed: Proc, version: string, policy: string, broken = false): Promise<void> {
  const file = join(root, `tiny-${version}.gguf`)
  await writeTinyGguf(file, { layers: 2, embd: 64, ...(broken ? { breakTensor: true, perturbLayer: 1 } : {}) })
  const pol = join(root, `policy-${version}.yaml`)
  await writeFile(pol, policy)
  await run(process.execPath, [
    BIN,
    ...['release', 'publish', file, '--model', 'tiny', '--version', version, '--policy', pol, '--json'],
    ...['--api', seed.api],
  ])
}

const serving = (devices: Proc[], v: string) =>
  devices.every((d) => {
    const last = d.logs.filter((l) => l.msg === 'release serving' || l.msg === 'rolled back locally').at(-1)
    return last?.msg === 'release serving' ? last.version === v : last?.active === v
  })

const load: number[] = []
const sampler = setInterval(() => load.push(loadavg()[0]), 5000)
const rows: string[][] = []
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return `median ${s[Math.floor(s.length / 2)]} ms, max ${s.at(-1)} ms (n=${s.length})`
}

try {
  await initFleet(join(root, 'fleet'), { fleetId: 'bench-fleet', autoEnroll: true })
  const t0 = Date.now()
  const seed = await start('seed', 'seed', [
    '--tags',
    'seed',
    '--no-mdns',
    '--api',
    '127.0.0.1:0',
    '--report-interval',
    REPORT,
  ])
  const devices: Proc[] = []
  for (let i = 0; i < N; i++) {
    const peers = [seed, ...devices.slice(-2)].flatMap((p) => ['--bootstrap', p.multiaddr])
    const tags = i === 0 ? ['--tags', 'pilot'] : []
    devices.push(
      await start('node', `d${i}`, [
        '--no-mdns',
        '--api',
        '127.0.0.1:0',
        '--report-interval',
        REPORT,
        ...peers,
        ...tags,
      ]),
    )
  }
  const all = [seed, ...devices]
  await until(
    async () =>
      (await Promise.all(all.map((p) => getJson<{ devices: Array<{ enrolled: boolean }> }>(p, '/status')))).every(
        (s) => s.devices.filter((d) => d.enrolled).length >= all.length,
      ),
    120_000,
    'enrollments everywhere',
  )
  console.error(`# ${N} devices + seed up and enrolled in ${Date.now() - t0} ms`)

  await publish(seed, '1.0.0', 'stages:\n  - { name: full, percent: 100, window: 1s }\ngates:\n  min_reports: 0\n')
  await until(() => serving(devices, '1.0.0'), 180_000, 'v1 everywhere')
  console.error('# v1 everywhere')

  // 1. gate pass → next stage serving
  await publish(
    seed,
    '2.0.0',
    `stages:
  - { name: pilot, tags: [pilot], window: 4s }
  - { name: canary, percent: 0, min_devices: 4, window: 8s }
  - { name: full, percent: 100 }
gates:
  restarts: { max: 3, per: 5m }
  ooms: { max: 0 }
  min_reports: 1
exclude_tags: [seed]
`,
  )
  await until(() => serving(devices, '2.0.0'), 240_000, 'v2 everywhere')
  const st2 = (await rollout(seed, '2.0.0'))!
  const promotes = st2.verdicts.filter((v) => v.adopted && v.outcome === 'promote')
  const opened = [0, 1].map((k) => Math.min(...promotes.filter((v) => v.stage === k).map((v) => v.decided_at)))
  const lagBy: Record<string, number[]> = { canary: [], full: [] }
  const idOf = async (d: Proc) => (await getJson<{ device: { id: string } }>(d, '/status')).device.id
  for (const d of devices) {
    const id = await idOf(d)
    const stageName = Object.entries(st2.cohorts).find(([, ids]) => ids.includes(id))?.[0]
    const k = stageName === 'canary' ? 0 : stageName === 'full' ? 1 : -1
    const at = logAt(d, 'release serving', '2.0.0')
    if (k >= 0 && at !== undefined) lagBy[stageName!].push(at - opened[k])
  }
  rows.push(['gate pass → canary devices serving v2', stats(lagBy.canary)])
  rows.push(['gate pass → full-stage devices serving v2', stats(lagBy.full)])
  console.error('# v2 everywhere')

  // 2. a broken v3 on a 4-device canary
  const v3At = Date.now()
  await publish(
    seed,
    '3.0.0',
    `stages:
  - { name: canary, percent: 0, min_devices: 4, window: 30s }
  - { name: full, percent: 100 }
gates:
  min_reports: 1
exclude_tags: [seed]
`,
    true,
  )
  await until(
    async () => (await Promise.all(all.map((p) => rollout(p, '3.0.0')))).every((r) => r?.state === 'aborted'),
    120_000,
    'v3 aborted everywhere',
  )
  const abortKnown = Date.now()
  await until(() => serving(devices, '2.0.0'), 60_000, 'v2 everywhere again')
  const failures = devices.map((d) => logAt(d, 'new version failed: rolling back locally', '3.0.0', v3At))
  const first = Math.min(...failures.filter((x) => x !== undefined))
  const back = devices
    .filter((_, i) => failures[i] !== undefined)
    .map((d) => d.logs.find((l) => l.msg === 'rolled back locally' && l.version === '3.0.0')?.time ?? 0)
  const activated = devices.filter((d) => logAt(d, 'activating release', '3.0.0', v3At) !== undefined).length
  rows.push([
    `canary load failure → last of ${back.length} canary devices back on v2`,
    `${Math.max(...back) - first} ms`,
  ])
  rows.push(['canary load failure → abort known on all 17 nodes (250 ms polling)', `≤ ${abortKnown - first} ms`])
  rows.push(['devices that ever activated v3', `${activated} of ${N}`])
} finally {
  clearInterval(sampler)
  stopAll()
  await new Promise((r) => setTimeout(r, 500))
  await rm(root, { recursive: true, force: true })
}

console.log(`\nCommand: \`npx node bench/rollout-fleet.ts --devices ${N} --report ${REPORT}\` (loopback, mDNS off)\n`)
console.log('| figure | value |\n|---|---|')
for (const [k, v] of rows) console.log(`| ${k} | ${v} |`)
console.log(
  `\nload average (1 min) during the run: median ${load.sort((a, b) => a - b)[Math.floor(load.length / 2)]?.toFixed(1)}, max ${Math.max(...load).toFixed(1)} on 2 cores`,
)
