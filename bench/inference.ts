/**
 * Inference overhead: tokens/s and time to first token through the OpenAI-compatible route
 * (openai client → fastify on 127.0.0.1 → supervisor → worker child process → node-llama-cpp)
 * against node-llama-cpp called directly in this process, in the same run, same model, same
 * threads. Also: idle RSS/CPU of a supervisor with its worker up but no model, and (optional)
 * direct tokens/s per thread count. Prints markdown tables.
 *
 * Usage: npx node bench/inference.ts [--embd 256] [--layers 4] [--tokens 128] [--runs 5] [--idle-s 10] [--threads-sweep]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import { getLlama, LlamaCompletion, type LlamaContextSequence, LlamaLogLevel } from 'node-llama-cpp'
import OpenAI from 'openai'
import { InferenceSupervisor } from '../node/inference/inference-supervisor.ts'
import { openaiRoutes } from '../node/inference/openai-routes.ts'
import { silentLogger } from '../node/logger.ts'
import { writeTinyGguf } from '../node/model/gguf-writer.ts'

const { values } = parseArgs({
  options: {
    embd: { type: 'string', default: '256' },
    layers: { type: 'string', default: '4' },
    tokens: { type: 'string', default: '128' },
    runs: { type: 'string', default: '5' },
    'idle-s': { type: 'string', default: '10' },
    'threads-sweep': { type: 'boolean', default: false },
  },
})
const TOKENS = Number(values.tokens)
const RUNS = Number(values.runs)
const IDLE_S = Number(values['idle-s'])
const THREADS = 1
const CONTEXT = 512
const PROMPT = 'The quick brown fox jumps over the lazy dog.'

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}
const f = (n: number, d = 1): string => n.toFixed(d)

interface Run {
  tokS: number
  ttftMs: number
}

const root = await mkdtemp(join(tmpdir(), 'bench-inference-'))
try {
  const { path: model, bytes } = await writeTinyGguf(join(root, 'bench.gguf'), {
    embd: Number(values.embd),
    layers: Number(values.layers),
    ctx: CONTEXT,
  })

  // ── idle supervisor: worker up, no model ──
  // the worker spawned at start (a device spawns it with its first model): what an idle worker costs
  const sup = new InferenceSupervisor(
    { logger: silentLogger() },
    { threads: THREADS, contextSize: CONTEXT, maxTokensLimit: 4096, spawnOnStart: true },
  )
  await sup.start()
  const pid = sup.status().workerPid!
  await new Promise((r) => setTimeout(r, 3000)) // settle after start-up
  const cpu0 = await procCpuTicks(pid)
  const self0 = process.cpuUsage()
  const t0 = performance.now()
  await new Promise((r) => setTimeout(r, IDLE_S * 1000))
  const wallS = (performance.now() - t0) / 1000
  const workerCpuPct = (((await procCpuTicks(pid)) - cpu0) / 100 / wallS) * 100 // CLK_TCK = 100
  const selfUsage = process.cpuUsage(self0)
  const parentCpuPct = ((selfUsage.user + selfUsage.system) / 1e6 / wallS) * 100
  const workerRss = await procRss(pid)

  // ── direct: node-llama-cpp in this process ──
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error })
  const lm = await llama.loadModel({ modelPath: model })
  // one context per thread count, reused with a cleared history per run (as the worker does)
  const sequences = new Map<number, LlamaContextSequence>()
  async function direct(threads: number): Promise<Run> {
    let seq = sequences.get(threads)
    if (seq === undefined) {
      seq = (await lm.createContext({ contextSize: CONTEXT, threads })).getSequence()
      sequences.set(threads, seq)
    }
    await seq.clearHistory()
    const comp = new LlamaCompletion({ contextSequence: seq, autoDisposeSequence: false })
    const t0 = performance.now()
    let first: number | undefined
    const out0 = seq.tokenMeter.usedOutputTokens
    await comp.generateCompletion(PROMPT, {
      maxTokens: TOKENS,
      temperature: 0,
      seed: 42,
      onTextChunk: () => {
        first ??= performance.now()
      },
    })
    const dt = (performance.now() - t0) / 1000
    const tokens = Math.min(TOKENS, seq.tokenMeter.usedOutputTokens - out0)
    comp.dispose({ disposeSequence: false })
    return { tokS: tokens / dt, ttftMs: (first ?? performance.now()) - t0 }
  }
  const sweep: Array<[number, number]> = []
  if (values['threads-sweep']) {
    for (let t = 1; t <= availableParallelism(); t++) {
      const runs: number[] = []
      for (let i = 0; i < 3; i++) runs.push((await direct(t)).tokS)
      sweep.push([t, median(runs)])
    }
  }

  // ── through the OpenAI route ──
  await sup.loadModel(model, { name: 'bench' })
  const app = Fastify({ logger: false })
  await app.register(openaiRoutes, { supervisor: sup })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const client = new OpenAI({
    baseURL: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1`,
    apiKey: 'x',
    maxRetries: 0,
  })
  async function routeStream(): Promise<Run> {
    const t0 = performance.now()
    let first: number | undefined
    let tokens = 0
    const s = await client.completions.create({
      model: 'bench',
      prompt: PROMPT,
      max_tokens: TOKENS,
      temperature: 0,
      seed: 42,
      stream: true,
      stream_options: { include_usage: true },
    })
    for await (const c of s) {
      if ((c.choices[0]?.text ?? '') !== '') first ??= performance.now()
      if (c.usage) tokens = c.usage.completion_tokens
    }
    const dt = (performance.now() - t0) / 1000
    return { tokS: tokens / dt, ttftMs: (first ?? performance.now()) - t0 }
  }
  async function routeWhole(): Promise<Run> {
    const t0 = performance.now()
    const r = await client.completions.create({
      model: 'bench',
      prompt: PROMPT,
      max_tokens: TOKENS,
      temperature: 0,
      seed: 42,
    })
    const dt = (performance.now() - t0) / 1000
    return { tokS: (r.usage?.completion_tokens ?? 0) / dt, ttftMs: Number.NaN }
  }
  // interleaved, so load from anything else on the machine hits all paths alike
  const directRuns: Run[] = []
  const streamRuns: Run[] = []
  const wholeRuns: Run[] = []
  await direct(THREADS) // warm-up
  await routeStream()
  for (let i = 0; i < RUNS; i++) {
    directRuns.push(await direct(THREADS))
    streamRuns.push(await routeStream())
    wholeRuns.push(await routeWhole())
  }
  await app.close()
  await sup.stop()
  await lm.dispose()
  await llama.dispose()

  const d = median(directRuns.map((r) => r.tokS))
  const s = median(streamRuns.map((r) => r.tokS))
  const w = median(wholeRuns.map((r) => r.tokS))
  const out: string[] = []
  out.push(
    `Model: tiny llama F32, embd ${values.embd}, ${values.layers} layers, ${(bytes / 1e6).toFixed(1)} MB; ` +
      `${TOKENS} tokens greedy, threads ${THREADS}, context ${CONTEXT}; median of ${RUNS} runs; ${availableParallelism()} cores.`,
    '',
    '| path | tokens/s | vs direct | time to first token (ms) |',
    '|---|---:|---:|---:|',
    `| node-llama-cpp direct (in process) | ${f(d)} | 1.00 | ${f(median(directRuns.map((r) => r.ttftMs)))} |`,
    `| OpenAI route, stream (SSE) | ${f(s)} | ${f(s / d, 2)} | ${f(median(streamRuns.map((r) => r.ttftMs)))} |`,
    `| OpenAI route, not streamed | ${f(w)} | ${f(w / d, 2)} | — |`,
    '',
    `Idle supervisor (worker up, no model), over ${IDLE_S} s:`,
    '',
    '| worker RSS (MB) | worker CPU (% of one core) | supervisor (parent) CPU (% of one core) |',
    '|---:|---:|---:|',
    `| ${f(workerRss / 1e6)} | ${f(workerCpuPct, 2)} | ${f(parentCpuPct, 2)} |`,
  )
  if (sweep.length > 0) {
    out.push('', '| threads | direct tokens/s |', '|---:|---:|', ...sweep.map(([t, v]) => `| ${t} | ${f(v)} |`))
  }
  process.stdout.write(`${out.join('\n')}\n`)
} finally {
  await rm(root, { recursive: true, force: true })
}

/** utime + stime of a process, in clock ticks (Linux /proc). */
async function procCpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12])
}

/** Resident set size of a process in bytes (Linux /proc). */
async function procRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024
}
