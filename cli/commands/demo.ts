/**
 * `llmesh demo`: a local demo fleet on loopback — a seed and N devices as real `llmesh` processes
 * (mDNS off: they dial the seed directly, nothing is sent beyond 127.0.0.1), a tiny GGUF model made
 * on the spot, a first release that activates everywhere, a chat completion through a device's
 * OpenAI-compatible API, then a second release that goes pilot → canary → full under the
 * collective canary. It keeps the fleet running until Ctrl-C (or exits with `--once`).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Command } from 'commander'
import { envValue, optionSpec } from '../../node/config/options.ts'
import { siblingModule } from '../../node/module-path.ts'
import { ApiClient } from '../api-client.ts'
import { action, CliError, UsageError } from '../output.ts'

const BIN = siblingModule(import.meta.url, '../bin')

interface DemoOptions {
  dir: string
  devices: string
  basePort: string
  once?: boolean
  fresh?: boolean
}

interface Proc {
  name: string
  child: ChildProcess
  api: string
  data: string
}

const ONE_STAGE = `stages:\n  - { name: all, percent: 100, window: 1s }\ngates:\n  min_reports: 0\n`
const CANARY = `stages:
  - { name: pilot, tags: [pilot], window: 4s }
  - { name: canary, percent: 34, min_devices: 1, window: 4s }
  - { name: full, percent: 100 }
gates:
  latency_p95_ms: { max: 5000, max_regression_pct: 400 }
  error_rate: { max: 0.2 }
  restarts: { max: 3, per: 5m }
  ooms: { max: 0 }
  min_reports: 1
`

function say(line: string): void {
  process.stdout.write(`${line}\n`)
}

/** The demo's second release was aborted by the fleet: the demo fails at once, saying why. */
class DemoAbortedError extends CliError {
  constructor(message: string) {
    super(message, 'ERR_DEMO_ABORTED')
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined) return v
    } catch (err) {
      // not up yet (the client's own errors included); a release aborted ends the wait
      if (err instanceof DemoAbortedError) throw err
    }
    if (Date.now() > end) throw new CliError(`demo: timed out waiting for ${what}`, 'ERR_DEMO_TIMEOUT')
    await sleep(300)
  }
}

/** The typed client of a demo daemon (no token: the demo's daemons listen on loopback). */
function client(api: string): ApiClient {
  return new ApiClient(api, { token: '' })
}

/** Runs the CLI itself as a child and waits for it (for `release publish`). */
function runCli(args: string[]): Promise<string> {
  return new Promise((ok, ko) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stderr.on('data', (d) => {
      err += d
    })
    child.on('exit', (code) => (code === 0 ? ok(out) : ko(new CliError(`llmesh ${args[0]} ${args[1]}: ${err.trim()}`))))
  })
}

async function startProc(name: string, args: string[], dir: string, api: string): Promise<Proc> {
  const data = join(dir, name)
  await mkdir(join(dir, 'logs'), { recursive: true })
  const log = createWriteStream(join(dir, 'logs', `${name}.log`))
  const child = spawn(process.execPath, [BIN, ...args, '--data', data, '--api', api], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, [optionSpec('log_level').env]: envValue('log_level') ?? 'info' },
  })
  child.stdout?.pipe(log)
  child.stderr?.pipe(log)
  return { name, child, api: `http://${api}`, data }
}

async function activeEverywhere(devices: Proc[], model: string, version: string): Promise<boolean | undefined> {
  for (const d of devices) {
    const s = await client(d.api).status()
    if (s.models[model]?.active !== version) return undefined
  }
  return true
}

async function runDemo(opts: DemoOptions): Promise<void> {
  const dir = resolve(opts.dir)
  const n = Number(opts.devices)
  const base = Number(opts.basePort)
  if (!Number.isInteger(n) || n < 1 || n > 16) throw new UsageError('--devices must be 1..16', 'ERR_INVALID_INPUT')
  if (opts.fresh === true) await rm(dir, { recursive: true, force: true })
  const fleetDir = join(dir, 'fleet')
  const exists = await stat(join(fleetDir, 'trust-root.json')).then(
    () => true,
    () => false,
  )
  if (!exists) {
    await mkdir(dir, { recursive: true })
    const { initFleet } = await import('../../node/fleet/index.ts')
    await initFleet(fleetDir, { fleetId: 'demo-fleet' })
  }
  say(`fleet: ${fleetDir}`)
  const v1 = join(dir, 'tiny-v1.gguf')
  const v2 = join(dir, 'tiny-v2.gguf')
  const { writeTinyGguf } = await import('../../node/model/gguf-writer.ts')
  await writeTinyGguf(v1, { layers: 2, embd: 64, seed: 1 })
  await writeTinyGguf(v2, { layers: 2, embd: 64, seed: 1, perturbLayer: 1 })

  const procs: Proc[] = []
  let stopping = false
  const stopAll = async () => {
    if (stopping) return
    stopping = true
    for (const p of procs.reverse()) p.child.kill('SIGTERM')
    await Promise.all(
      procs.map((p) => new Promise((ok) => (p.child.exitCode === null ? p.child.on('exit', ok) : ok(0)))),
    )
  }
  process.once('SIGINT', () => void stopAll().then(() => process.exit(0)))
  process.once('SIGTERM', () => void stopAll().then(() => process.exit(0)))
  try {
    const common = ['--fleet', fleetDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--report-interval', '2s']
    const seed = await startProc('seed', ['seed', 'start', ...common], dir, `127.0.0.1:${base}`)
    procs.push(seed)
    const seedInfo = await waitFor(
      'the seed to start',
      async () => JSON.parse(await readFile(join(seed.data, 'node.json'), 'utf8')),
      60_000,
    )
    say(`seed:     ${seed.api}  (${seedInfo.peerId})`)
    say(`dashboard: ${seed.api}/dashboard  (open it in a browser: devices, rollouts, operator buttons)`)
    const devices: Proc[] = []
    const { loadFleet } = await import('../../node/fleet/index.ts')
    const { createInvite } = await import('../../protocols/membership/index.ts')
    const operator = (await loadFleet(fleetDir)).operatorSigner
    for (let i = 1; i <= n; i++) {
      const tags = i === 1 ? 'pilot,demo' : 'demo'
      // each device joins with its own single-use invite (what `llmesh device invite` writes)
      const invite = join(dir, `device-${i}.invite`)
      if (operator !== undefined) {
        const { file } = await createInvite(
          { fleet: 'demo-fleet', tags: tags.split(','), name: `device-${i}`, ttlMs: 3_600_000, now: Date.now() },
          operator,
        )
        await writeFile(invite, JSON.stringify(file), { mode: 0o600 })
      }
      const p = await startProc(
        `device-${i}`,
        ['node', 'start', ...common, '--tags', tags, '--invite', invite, '--bootstrap', seedInfo.multiaddrs[0]],
        dir,
        `127.0.0.1:${base + i}`,
      )
      procs.push(p)
      devices.push(p)
    }
    for (const d of devices) {
      await waitFor(
        `${d.name} to be enrolled`,
        async () => ((await client(d.api).status()).device.enrolled ? true : undefined),
        90_000,
      )
      say(`${d.name}: ${d.api}  enrolled`)
    }

    await writeFile(join(dir, 'policy-all.yaml'), ONE_STAGE)
    await writeFile(join(dir, 'policy-canary.yaml'), CANARY)
    say('\npublishing tiny@1.0.0+gguf-f32 (one stage: everywhere at once)…')
    await runCli([
      'release',
      'publish',
      v1,
      '--model',
      'tiny',
      '--version',
      '1.0.0+gguf-f32',
      '--policy',
      join(dir, 'policy-all.yaml'),
      '--api',
      seed.api,
      '--json',
    ])
    await waitFor('v1 active on every device', () => activeEverywhere(devices, 'tiny', '1.0.0+gguf-f32'), 180_000)
    say('tiny@1.0.0+gguf-f32 is active on every device')

    const chat = await waitFor(
      'a chat completion',
      async () => {
        const res = await fetch(`${devices[0].api}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 }),
        })
        return res.ok ? ((await res.json()) as { choices?: Array<{ message?: { content?: string } }> }) : undefined
      },
      60_000,
    )
    say(
      `chat completion from ${devices[0].name}: ${JSON.stringify(chat.choices?.[0]?.message?.content ?? '')} (random weights: gibberish is expected)`,
    )

    say("\npublishing tiny@1.1.0+gguf-f32 (pilot → canary → full, gated on the fleet's health reports)…")
    await runCli([
      'release',
      'publish',
      v2,
      '--model',
      'tiny',
      '--version',
      '1.1.0+gguf-f32',
      '--policy',
      join(dir, 'policy-canary.yaml'),
      '--api',
      seed.api,
      '--json',
    ])
    let last = ''
    await waitFor(
      'v2 promoted',
      async () => {
        // keep traffic flowing on every device: the gates compare the new version's latency with
        // devices still on the previous one over the same window, so both sides need data
        await Promise.all(
          devices.map((d) =>
            fetch(`${d.api}/v1/completions`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ model: 'tiny', prompt: 'ping', max_tokens: 4 }),
            }).catch(() => undefined),
          ),
        )
        const r = await client(seed.api).rollout()
        const rel = r.releases.find((x) => x.version === '1.1.0+gguf-f32')
        const state = rel?.state ?? 'unknown'
        if (state !== last) {
          say(`  rollout state: ${state}`)
          last = state
        }
        if (state === 'aborted') {
          // say why at once, rather than waiting out the deadline for a promotion that will not come
          const why = rel?.gate?.reasons.join('; ') || 'no gate reason recorded'
          const by = rel?.abortedBy === undefined ? '' : ` by ${rel.abortedBy}`
          throw new DemoAbortedError(`demo: the fleet aborted tiny@1.1.0+gguf-f32${by}: ${why}`)
        }
        return (await activeEverywhere(devices, 'tiny', '1.1.0+gguf-f32')) ? true : undefined
      },
      300_000,
    )
    say('tiny@1.1.0+gguf-f32 is active on every device\n')
    say(await runCli(['status', '--api', devices[0].api]))
    if (opts.once === true) {
      await stopAll()
      say('demo finished: every process stopped cleanly')
      return
    }
    say(`the fleet keeps running; logs in ${join(dir, 'logs')}. Try:`)
    say(`  open ${seed.api}/dashboard in a browser`)
    say(`  npx llmesh rollout status --api ${seed.api}`)
    say(`  curl -s ${devices[0].api}/v1/models`)
    say('Ctrl-C stops every process.')
    await new Promise(() => {})
  } catch (err) {
    await stopAll()
    throw err
  }
}

/** Registers `llmesh demo`. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run a local demo fleet on loopback: seed + devices, a release, a canary rollout')
    .option('--dir <dir>', 'where the demo keeps its fleet, data and logs', 'demo-fleet')
    .option('--devices <n>', 'number of devices', '3')
    .option('--base-port <port>', 'API port of the seed; devices take the next ones', '7470')
    .option('--once', 'stop the fleet and exit once the rollout completed')
    .option('--fresh', 'delete the demo directory first')
    .action(action((opts: DemoOptions) => runDemo(opts)))
}
