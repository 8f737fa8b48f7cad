/**
 * The post-load probe and the generation spec of a request: a short deterministic generation
 * (greedy, fixed seed) on the reserved sequence, whose output digest identifies the model.
 * A failed probe emits `probe-failure` (and `timeout` when it timed out) and throws ProbeFailedError.
 */
import { createHash } from 'node:crypto'
import * as C from './constants.ts'
import type { ResolvedSupervisorInit } from './defaults.ts'
import { type InferenceError, ProbeFailedError } from './errors.ts'
import type { Inflight } from './inflight.ts'
import type { GenerateSpec, ScoreResult, ScoreSpec } from './ipc.ts'
import type * as T from './types.ts'
import type { WorkerProcess } from './worker-process.ts'

/** Where probe incidents go. */
export interface ProbeHooks {
  now(): number
  onTimeout(): void
  onFailure(e: { at: number; path: string; message: string }): void
}

/** Runs the probe on `w` (the model at `path` loaded). */
export async function runProbe(
  inflight: Inflight,
  w: WorkerProcess,
  path: string,
  cfg: ResolvedSupervisorInit,
  hooks: ProbeHooks,
): Promise<T.ProbeResult> {
  const t0 = performance.now()
  const spec: GenerateSpec = {
    mode: 'completion',
    prompt: cfg.probePrompt,
    maxTokens: cfg.probeMaxTokens,
    temperature: 0,
    seed: C.PROBE_SEED,
    probe: true,
  }
  let timedOut = false
  try {
    const out = await inflight
      .run(w, spec, {}, () => {}, t0, cfg.probeTimeoutMs)
      .catch((e) => {
        timedOut = (e as InferenceError).code === 'ERR_INFERENCE_TIMEOUT'
        throw e
      })
    const outputSha256 = createHash('sha256').update(out.text).digest('hex')
    return { tokensOut: out.tokensOut, durationMs: performance.now() - t0, outputSha256 }
  } catch (err) {
    if (timedOut) hooks.onTimeout()
    const message = `probe failed: ${(err as Error).message}`
    hooks.onFailure({ at: hooks.now(), path, message })
    throw new ProbeFailedError(message, { cause: err })
  }
}

/** The worker's generation spec of a request (max_tokens capped by the configured limit). */
export function generateSpec(input: T.GenerateInput, maxTokensLimit: number): GenerateSpec {
  return {
    mode: input.mode,
    prompt: input.prompt,
    messages: input.messages,
    inputs: input.inputs,
    maxTokens: Math.max(1, Math.min(input.maxTokens, maxTokensLimit)),
    temperature: input.temperature ?? 0,
    topP: input.topP,
    seed: input.seed,
    stop: input.stop,
  }
}

let lastScoreId = 0

/**
 * Runs a quality probe on `w` (worker-score.ts) and returns its score. Ids are negative, so they
 * never meet a request's. `signal` cancels it (the worker stops within one evaluation chunk).
 * Throws on a worker error, a timeout or a cancel: a quality probe is no health probe, and its
 * failure is no load failure.
 */
export async function scoreOn(
  w: WorkerProcess,
  spec: ScoreSpec,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ScoreResult> {
  const id = --lastScoreId
  if (signal?.aborted) throw new Error('probe preempted')
  if (!w.send({ type: 'score', id, spec })) throw new Error('inference worker is gone')
  const cancel = () => w.send({ type: 'cancel', id })
  signal?.addEventListener('abort', cancel, { once: true })
  try {
    const m = await w.waitFor(
      (x) => (x.type === 'scored' || x.type === 'score-error') && x.id === id,
      timeoutMs,
      'quality probe',
    )
    if (m.type === 'score-error') throw new Error(m.message)
    if (m.type !== 'scored') throw new Error('unexpected answer')
    return m.result
  } catch (err) {
    cancel()
    throw err
  } finally {
    signal?.removeEventListener('abort', cancel)
  }
}
