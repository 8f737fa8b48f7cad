/**
 * Inference worker: the entry point of the CHILD process that runs node-llama-cpp. llama.cpp
 * may abort() on a bad file or run out of memory; here that only kills this process, and the
 * supervisor in the parent sees it and recovers.
 *
 * States: starting → idle (no model) ⇄ loading → ready (model + context) → idle (unload).
 * One llama.cpp sequence per concurrent request, plus one reserved for probes; each generation
 * starts from a cleared sequence, so requests never see each other's tokens. Embeddings use a
 * separate embedding context, made on the first embedding request after a load (devices nobody
 * asks for embeddings never pay its memory) and used by one request at a time.
 *
 * Never logs prompt or completion text: text only goes back to the parent over IPC.
 * Parts: worker-text.ts (chat history, text batching, token counts), worker-score.ts (quality probes).
 */

import {
  getLlama,
  type Llama,
  LlamaChat,
  LlamaCompletion,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  LlamaLogLevel,
  type LlamaModel,
} from 'node-llama-cpp'
import type { FinishReason, FromWorker, GenerateSpec, LoadSpec, ScoreSpec, ToWorker } from './ipc.ts'
import { scoreProbe } from './worker-score.ts'
import { countTokens, finishReasonOf, TextBatcher, toHistory } from './worker-text.ts'

const OOM_TEXT = /out of memory|insufficient memory|failed to allocate|bad_alloc|cannot allocate/i

type WorkerState = 'starting' | 'idle' | 'loading' | 'ready' | 'unloading'

let state: WorkerState = 'starting'
let llama: Llama | undefined
let model: LlamaModel | undefined
let context: LlamaContext | undefined
/** Free user sequences; the probe sequence is kept apart. */
let freeSequences: LlamaContextSequence[] = []
let probeSequence: LlamaContextSequence | undefined
/** Made on the first embedding request after a load; disposed with the model. */
let embedding: Promise<LlamaEmbeddingContext> | undefined
/** Embedding requests run one after another on the one embedding context. */
let embedTail: Promise<unknown> = Promise.resolve()
let loadedSpec: LoadSpec | undefined
const running = new Map<number, AbortController>()

function send(msg: FromWorker): void {
  process.send?.(msg)
}

async function load(id: number, spec: LoadSpec): Promise<void> {
  if (llama === undefined) throw new Error('runtime not started')
  await unload()
  state = 'loading'
  const t0 = performance.now()
  try {
    model = await llama.loadModel({ modelPath: spec.modelPath })
    context = await model.createContext({
      contextSize: Math.min(spec.contextSize, model.trainContextSize),
      sequences: spec.sequences,
      threads: spec.threads,
      failedCreationRemedy: false,
    })
    const seqs: LlamaContextSequence[] = []
    for (let i = 0; i < spec.sequences; i++) seqs.push(context.getSequence())
    probeSequence = seqs.pop()
    freeSequences = seqs
    loadedSpec = spec
    state = 'ready'
    send({
      type: 'loaded',
      id,
      contextSize: context.contextSize,
      trainContextSize: model.trainContextSize,
      loadMs: performance.now() - t0,
    })
  } catch (err) {
    await unload()
    const message = (err as Error)?.message ?? String(err)
    send({
      type: 'load-error',
      id,
      message,
      oom: OOM_TEXT.test(message) || (err as Error)?.name === 'InsufficientMemoryError',
    })
  }
}

async function unload(): Promise<void> {
  if (model === undefined && context === undefined) {
    state = llama === undefined ? 'starting' : 'idle'
    return
  }
  state = 'unloading'
  for (const c of running.values()) c.abort()
  freeSequences = []
  probeSequence = undefined
  const emb = embedding
  embedding = undefined
  loadedSpec = undefined
  await emb?.then((e) => e.dispose()).catch(() => {})
  await context?.dispose().catch(() => {})
  await model?.dispose().catch(() => {})
  context = undefined
  model = undefined
  state = 'idle'
}

/**
 * Embeds `spec.inputs` in order. Each input is tokenized first and refused (`tooLong`) when it
 * does not fit the context, before any is evaluated. A cancel stops between inputs.
 */
async function embed(id: number, spec: GenerateSpec): Promise<void> {
  const m = model
  const loaded = loadedSpec
  if (m === undefined || loaded === undefined) {
    send({ type: 'gen-error', id, message: 'no model loaded' })
    return
  }
  const abort = new AbortController()
  running.set(id, abort)
  const run = embedTail.then(async () => {
    const inputs = spec.inputs ?? []
    const size = Math.min(loaded.contextSize, m.trainContextSize)
    const counts = inputs.map((t) => m.tokenize(t).length)
    const over = counts.findIndex((n) => n > size)
    if (over >= 0) {
      const message = `input ${over} has ${counts[over]} tokens; this model's context holds ${size}`
      send({ type: 'gen-error', id, message, tooLong: true })
      return
    }
    embedding ??= m.createEmbeddingContext({ contextSize: size, threads: loaded.threads })
    const ctx = await embedding.catch((err: unknown) => {
      embedding = undefined // a failed creation (e.g. no memory) is retried by the next request
      throw err
    })
    const vectors: number[][] = []
    for (const text of inputs) {
      if (abort.signal.aborted) break
      vectors.push([...(await ctx.getEmbeddingFor(text)).vector])
    }
    const tokensIn = counts.reduce((a, b) => a + b, 0)
    const finishReason: FinishReason = abort.signal.aborted ? 'abort' : 'stop'
    send({ type: 'done', id, tokensIn, tokensOut: 0, finishReason, vectors })
  })
  embedTail = run.catch(() => {})
  try {
    await run
  } catch (err) {
    send({ type: 'gen-error', id, message: (err as Error)?.message ?? String(err) })
  } finally {
    running.delete(id)
  }
}

async function generate(id: number, spec: GenerateSpec): Promise<void> {
  if (state !== 'ready' || model === undefined) {
    send({ type: 'gen-error', id, message: 'no model loaded' })
    return
  }
  if (spec.mode === 'embed') return embed(id, spec)
  const sequence = spec.probe === true ? probeSequence : freeSequences.pop()
  if (sequence === undefined) {
    send({ type: 'gen-error', id, message: 'no free sequence' })
    return
  }
  if (spec.probe === true) probeSequence = undefined
  const abort = new AbortController()
  running.set(id, abort)
  const meter = sequence.tokenMeter
  const in0 = meter.usedInputTokens
  const out0 = meter.usedOutputTokens
  const out = new TextBatcher((text) => send({ type: 'text', id, text }))
  const options = {
    maxTokens: spec.maxTokens,
    temperature: spec.temperature,
    topP: spec.topP,
    seed: spec.seed,
    signal: abort.signal,
    stopOnAbortSignal: true,
    customStopTriggers: spec.stop,
    onTextChunk: (text: string) => out.push(text),
  }
  try {
    await sequence.clearHistory()
    let stopReason: string
    if (spec.mode === 'chat') {
      const chat = new LlamaChat({ contextSequence: sequence, autoDisposeSequence: false })
      try {
        stopReason = (await chat.generateResponse(toHistory(spec), options)).metadata.stopReason
      } finally {
        chat.dispose({ disposeSequence: false })
      }
    } else {
      const completion = new LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false })
      try {
        stopReason = (await completion.generateCompletionWithMeta(spec.prompt ?? '', options)).metadata.stopReason
      } finally {
        completion.dispose({ disposeSequence: false })
      }
    }
    out.flush()
    const finishReason = finishReasonOf(stopReason)
    send({
      type: 'done',
      id,
      ...countTokens(meter.usedInputTokens - in0, meter.usedOutputTokens - out0, finishReason, spec.maxTokens),
      finishReason,
    })
  } catch (err) {
    out.flush()
    send({ type: 'gen-error', id, message: (err as Error)?.message ?? String(err) })
  } finally {
    running.delete(id)
    if (state === 'ready' && !sequence.disposed) {
      if (spec.probe === true) probeSequence = sequence
      else freeSequences.push(sequence)
    }
  }
}

/** A quality probe on the probe sequence (worker-score.ts); cancellable like a generation. */
async function score(id: number, spec: ScoreSpec): Promise<void> {
  const sequence = probeSequence
  if (state !== 'ready' || model === undefined || sequence === undefined) {
    send({ type: 'score-error', id, message: model === undefined ? 'no model loaded' : 'probe sequence busy' })
    return
  }
  probeSequence = undefined
  const abort = new AbortController()
  running.set(id, abort)
  try {
    send({ type: 'scored', id, result: await scoreProbe(model, sequence, spec, abort.signal) })
  } catch (err) {
    send({ type: 'score-error', id, message: (err as Error)?.message ?? String(err) })
  } finally {
    running.delete(id)
    if (state === 'ready' && !sequence.disposed) probeSequence = sequence
  }
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'load':
      return load(msg.id, msg.spec)
    case 'unload':
      await unload()
      send({ type: 'unloaded', id: msg.id })
      return
    case 'generate':
      return generate(msg.id, msg.spec)
    case 'score':
      return score(msg.id, msg.spec)
    case 'cancel':
      running.get(msg.id)?.abort()
      return
    case 'health':
      send({
        type: 'health',
        id: msg.id,
        health: {
          pid: process.pid,
          rssBytes: process.memoryUsage.rss(),
          modelLoaded: state === 'ready',
          active: running.size,
        },
      })
      return
    case 'shutdown':
      await unload()
      await llama?.dispose().catch(() => {})
      process.exit(0)
  }
}

async function main(): Promise<void> {
  // The parent going away (crash, SIGKILL) must not leave an orphan holding the model in RAM.
  process.on('disconnect', () => process.exit(0))
  const queue: ToWorker[] = []
  let started = false
  process.on('message', (msg: ToWorker) => {
    if (!started) queue.push(msg)
    else void handle(msg)
  })
  llama = await getLlama({
    gpu: false,
    build: 'never',
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => {
      if (level === LlamaLogLevel.warn || level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) {
        send({ type: 'log', level, message: message.trim() })
      }
    },
  })
  state = 'idle'
  started = true
  send({ type: 'ready', pid: process.pid, cpuMathCores: llama.cpuMathCores })
  for (const msg of queue.splice(0)) void handle(msg)
}

main().catch((err) => {
  process.stderr.write(`inference worker failed to start: ${(err as Error)?.message ?? String(err)}\n`)
  process.exit(70)
})
