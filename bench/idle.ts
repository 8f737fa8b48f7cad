/**
 * Idle footprint of a device (issue 17 goal 5): RSS and CPU of a real `llmesh node start` process
 * and its children on loopback (a seed + devices, mDNS off), with no model, with one active model
 * of each test size, and again once no model remains (every release aborted: deactivated).
 *
 * Side by side in one run: any number of devices, each `--device "<name>=<ts|js|bin> [VAR=value ...]
 * [node flags ...]"`: `ts` runs the TypeScript sources (cli/bin.ts, through Node's type stripper),
 * `js` the sources compiled as the package ships them (packaging/compile.ts, into a scratch tree),
 * anything else is the path of a cli/bin.ts to run (another commit: `git archive <c> | tar -x`);
 * the defaults are the package before (`ts`) and after (`js`) it shipped JavaScript, both with what
 * packaging/llmesh gives `node start`. Also measured in the no-model window: the baseline, an
 * inference worker with no model, which every device held before the worker became lazy (spawned
 * by this process). RSS is split into anonymous memory (what the process really costs) and file
 * pages (the node binary's code, shared and reclaimable). CPU is the share of one core over each
 * window (`/proc/<pid>/stat`).
 *
 * Usage: npx node bench/idle.ts [--window-s 60] [--settle-s 10] [--sizes small,medium,large]
 *          [--device "ts=ts MALLOC_ARENA_MAX=2 --heap-growing-percent=200" --device "js=js …" …]
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { initFleet } from '../node/fleet/index.ts'
import { WorkerProcess } from '../node/inference/worker-process.ts'
import { silentLogger } from '../node/logger.ts'
import { writeTinyGguf } from '../node/model/gguf-writer.ts'
import { DAEMON_NODE_FLAGS } from '../packaging/constants.ts'
import { binsOf, deviceArg, parseDevice, REPO } from './idle-devices.ts'
import { childrenOf, cpuPercentOver, memoryOf, mib, type ProcMemory } from './proc-stats.ts'

const SIZES: Record<string, { layers: number; embd: number }> = {
  small: { layers: 2, embd: 64 },
  medium: { layers: 4, embd: 256 },
  large: { layers: 3, embd: 512 },
}
const { values } = parseArgs({
  options: {
    'window-s': { type: 'string', default: '60' },
    'settle-s': { type: 'string', default: '10' },
    sizes: { type: 'string', default: 'small,medium,large' },
    device: { type: 'string', multiple: true },
  },
})
// what packaging/llmesh gives `node start`
const LAUNCHER = `MALLOC_ARENA_MAX=2 ${DAEMON_NODE_FLAGS.join(' ')}`
const DEFAULT_DEVICES = [`ts=ts ${LAUNCHER}`, `js=js ${LAUNCHER}`]
const WINDOW_MS = Number(values['window-s']) * 1000
const SETTLE_MS = Number(values['settle-s']) * 1000
const sizes = values.sizes.split(',').map((s) => s.trim())
for (const s of sizes) if (SIZES[s] === undefined) throw new Error(`unknown size ${s}: ${Object.keys(SIZES)}`)
const deviceSpecs = (values.device ?? DEFAULT_DEVICES).map(parseDevice)
const ONE_STAGE = 'stages:\n  - { name: full, percent: 100, window: 1s }\ngates:\n  min_reports: 0\n'

interface Proc {
  name: string
  child: ChildProcess
  api: string
  multiaddr: string
}

const root = await mkdtemp(join(tmpdir(), 'bench-idle-'))
const binOf = await binsOf(deviceSpecs, root)
const procs: Proc[] = []
process.on('exit', () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL')
})

async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await Promise.resolve(check()).catch(() => false)) return
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`)
}

async function start(
  role: 'seed' | 'node',
  name: string,
  flags: string[],
  extra: string[],
  env: Record<string, string> = {},
  bin = join(REPO, 'cli', 'bin.ts'),
): Promise<Proc> {
  const data = join(root, name)
  const args = [...flags, bin, role, 'start', '--fleet', join(root, 'fleet'), '--data', data]
  const child = spawn(
    process.execPath,
    [...args, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--api', '127.0.0.1:0', ...extra],
    { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, ...env, LLMESH_LOG_LEVEL: 'warn' } },
  )
  const p: Proc = { name, child, api: '', multiaddr: '' }
  procs.push(p)
  const infoFile = join(data, 'node.json')
  await until(async () => (await readFile(infoFile, 'utf8')).length > 0 || child.exitCode !== null, 90_000, name)
  if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode})`)
  const info = JSON.parse(await readFile(infoFile, 'utf8')) as { api: string; multiaddrs: string[] }
  p.api = info.api
  p.multiaddr = info.multiaddrs.find((m) => m.includes('127.0.0.1')) ?? info.multiaddrs[0]
  return p
}

const getJson = async <T>(p: Proc, path: string): Promise<T> => (await (await fetch(`${p.api}${path}`)).json()) as T
type Inference = { state: string; version: string | null }
const inference = async (p: Proc) => (await getJson<{ inference?: Inference }>(p, '/status')).inference

async function post(p: Proc, path: string, body: string | Buffer, headers: Record<string, string>): Promise<void> {
  const res = await fetch(`${p.api}${path}`, { method: 'POST', headers, body })
  if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`)
}

/** One row: the daemon, its inference worker (if any) and their sum, over one window. */
interface Row {
  phase: string
  device: string
  daemon: ProcMemory
  worker: ProcMemory | undefined
  daemonCpu: number
  workerCpu: number | undefined
  load: number
}

async function measure(phase: string, devices: Proc[], extra?: { name: string; pid: number }): Promise<Row[]> {
  const targets = await Promise.all(
    devices.map(async (d) => ({ d, worker: (await childrenOf(d.child.pid!))[0] as number | undefined })),
  )
  const cpu = await Promise.all([
    ...targets.flatMap((t) => [
      cpuPercentOver(t.d.child.pid!, WINDOW_MS),
      t.worker === undefined ? Promise.resolve(Number.NaN) : cpuPercentOver(t.worker, WINDOW_MS),
    ]),
    extra === undefined ? Promise.resolve(Number.NaN) : cpuPercentOver(extra.pid, WINDOW_MS),
  ])
  const load = loadavg()[0]
  const rows: Row[] = []
  for (const [i, t] of targets.entries()) {
    const daemon = (await memoryOf(t.d.child.pid!))!
    const worker = t.worker === undefined ? undefined : await memoryOf(t.worker)
    rows.push({ phase, device: t.d.name, daemon, worker, daemonCpu: cpu[2 * i], workerCpu: cpu[2 * i + 1], load })
  }
  if (extra !== undefined) {
    const m = (await memoryOf(extra.pid))!
    rows.push({ phase, device: extra.name, daemon: m, worker: undefined, daemonCpu: cpu.at(-1)!, workerCpu: 0, load })
  }
  return rows
}

const pct = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(2))
const rows: Row[] = []
const sizeNotes: string[] = []
try {
  await initFleet(join(root, 'fleet'), { fleetId: 'bench-idle', autoEnroll: true })
  const seed = await start('seed', 'seed', [], ['--tags', 'seed'])
  const boot = ['--bootstrap', seed.multiaddr]
  const devices: Proc[] = []
  for (const d of deviceSpecs) devices.push(await start('node', d.name, d.flags, boot, d.env, binOf(d.entry)))
  await until(
    async () =>
      (await getJson<{ devices: Array<{ enrolled: boolean }> }>(seed, '/status')).devices.filter((d) => d.enrolled)
        .length >=
      devices.length + 1,
    120_000,
    'enrollments',
  )
  // the baseline: what every device held before, an inference worker with no model
  const idleWorker = new WorkerProcess({ logger: silentLogger() }, { startTimeoutMs: 120_000 })
  const { pid: idlePid } = await idleWorker.start()
  await new Promise((r) => setTimeout(r, SETTLE_MS))
  rows.push(...(await measure('no model', devices, { name: 'baseline: worker, no model', pid: idlePid })))
  await idleWorker.stop(5000)

  for (const [i, size] of sizes.entries()) {
    const version = `${i + 1}.0.0`
    const file = join(root, `${size}.gguf`)
    const { bytes } = await writeTinyGguf(file, { ...SIZES[size], perturbLayer: i })
    sizeNotes.push(`${size}: ${SIZES[size].layers} layers, embd ${SIZES[size].embd}, ${mib(bytes)} MiB`)
    await post(seed, `/releases?model=tiny&version=${version}`, await readFile(file), {
      'content-type': 'application/octet-stream',
      'x-llmesh-policy': Buffer.from(ONE_STAGE).toString('base64'),
    })
    await until(
      async () =>
        (await Promise.all(devices.map(inference))).every((s) => s?.state === 'ready' && s.version === version),
      300_000,
      `${version} served`,
    )
    await new Promise((r) => setTimeout(r, SETTLE_MS))
    rows.push(...(await measure(`${size} model active`, devices)))
  }

  // every release aborted: nothing to go back to, the model is deactivated and its worker stopped
  for (const i of sizes.keys()) {
    const body = JSON.stringify({ action: 'abort', model: 'tiny', version: `${sizes.length - i}.0.0` })
    await post(seed, '/rollout/commands', body, { 'content-type': 'application/json' })
  }
  await until(
    async () =>
      (await Promise.all(devices.map(async (d) => (await childrenOf(d.child.pid!)).length === 0))).every(Boolean) &&
      (await Promise.all(devices.map(inference))).every((s) => s?.state === 'idle'),
    120_000,
    'every model deactivated',
  )
  await new Promise((r) => setTimeout(r, SETTLE_MS))
  rows.push(...(await measure('deactivated again', devices)))
} finally {
  for (const p of procs.reverse()) if (p.child.exitCode === null) p.child.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 1000))
  await rm(root, { recursive: true, force: true })
}

const deviceArgs = deviceSpecs.map(deviceArg)
console.log(
  `\nCommand: \`npx node bench/idle.ts --window-s ${WINDOW_MS / 1000} --settle-s ${SETTLE_MS / 1000} --sizes ${sizes.join(',')} ${deviceArgs.join(' ')}\``,
)
console.log(`Models: ${sizeNotes.join('; ')}\n`)
console.log(
  '| phase | device | daemon RSS (MiB) | anon / file | worker RSS (MiB) | anon / file | total RSS (MiB) | daemon CPU % | worker CPU % | load avg |',
)
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const r of rows) {
  const w = r.worker
  console.log(
    `| ${r.phase} | ${r.device} | ${mib(r.daemon.rss)} | ${mib(r.daemon.rssAnon)} / ${mib(r.daemon.rssFile)} | ${mib(w?.rss)} | ${w === undefined ? '—' : `${mib(w.rssAnon)} / ${mib(w.rssFile)}`} | ${mib(r.daemon.rss + (w?.rss ?? 0))} | ${pct(r.daemonCpu)} | ${pct(r.workerCpu)} | ${r.load.toFixed(1)} |`,
  )
}
