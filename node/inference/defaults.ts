/**
 * Default threads and context size for a model on this device (pure: the caller passes cores,
 * free RAM and header numbers).
 */
import * as C from './constants.ts'
import { KV_CACHE_RAM_FRACTION, MAX_DEFAULT_CONTEXT, MIN_CONTEXT, TINY_MODEL_BYTES } from './constants.ts'
import type { InferenceSupervisorInit } from './types.ts'

/** Threads for llama.cpp: 1 for tiny models (thread sync dominates), else all cores but one. */
export function defaultThreads(o: { cores: number; modelBytes: number }): number {
  if (o.modelBytes < TINY_MODEL_BYTES || o.cores <= 1) return 1
  return o.cores <= 2 ? o.cores : o.cores - 1
}

/** Inputs of the default context size. */
export interface ContextSizeInput {
  /** Trained context length from the GGUF header (undefined → MAX_DEFAULT_CONTEXT). */
  trainContextLength: number | undefined
  nLayer: number
  nEmbd: number
  nHead: number
  /** Defaults to nHead (no grouped-query attention). */
  nHeadKv?: number
  /** Free (available) RAM in bytes. */
  freeBytes: number
  /** Model file size; it will take about this much RAM too. */
  modelBytes: number
  /** llama.cpp sequences: each gets the full context size. */
  sequences: number
}

/**
 * Context size per sequence: the trained length, capped by MAX_DEFAULT_CONTEXT and by what an
 * F16 KV cache may take from free RAM (KV_CACHE_RAM_FRACTION of what the model leaves), rounded
 * down to a multiple of 256 and never below MIN_CONTEXT.
 */
export function defaultContextSize(i: ContextSizeInput): number {
  const train = i.trainContextLength ?? MAX_DEFAULT_CONTEXT
  const nHeadKv = i.nHeadKv ?? i.nHead
  const kvEmbd = (i.nEmbd * nHeadKv) / Math.max(1, i.nHead)
  const bytesPerToken = 2 /* K and V */ * i.nLayer * kvEmbd * 2 /* F16 */
  const budget = Math.max(0, i.freeBytes - i.modelBytes) * KV_CACHE_RAM_FRACTION
  const byRam = Math.floor(budget / Math.max(1, bytesPerToken * Math.max(1, i.sequences)))
  const size = Math.min(train, MAX_DEFAULT_CONTEXT, byRam)
  const rounded = size >= MIN_CONTEXT ? Math.floor(size / 256) * 256 : size
  return Math.max(Math.min(MIN_CONTEXT, train), rounded)
}

/** Supervisor options with defaults applied (threads/contextSize stay per-model when unset). */
export type ResolvedSupervisorInit = Required<
  Omit<InferenceSupervisorInit, 'threads' | 'contextSize' | 'workerMemoryLimitBytes'>
> &
  Pick<InferenceSupervisorInit, 'threads' | 'contextSize' | 'workerMemoryLimitBytes'>

/** Applies the defaults of constants.ts. */
export function resolveSupervisorInit(init: InferenceSupervisorInit): ResolvedSupervisorInit {
  return {
    threads: init.threads,
    contextSize: init.contextSize,
    maxConcurrent: init.maxConcurrent ?? C.DEFAULT_MAX_CONCURRENT,
    maxQueue: init.maxQueue ?? C.DEFAULT_MAX_QUEUE,
    queueTimeoutMs: init.queueTimeoutMs ?? C.DEFAULT_QUEUE_TIMEOUT_MS,
    unavailableWaitMs: init.unavailableWaitMs ?? C.DEFAULT_UNAVAILABLE_WAIT_MS,
    retryAfterSeconds: init.retryAfterSeconds ?? C.DEFAULT_RETRY_AFTER_S,
    probePrompt: init.probePrompt ?? C.DEFAULT_PROBE_PROMPT,
    probeMaxTokens: init.probeMaxTokens ?? C.DEFAULT_PROBE_MAX_TOKENS,
    startTimeoutMs: init.startTimeoutMs ?? C.DEFAULT_START_TIMEOUT_MS,
    loadTimeoutMs: init.loadTimeoutMs ?? C.DEFAULT_LOAD_TIMEOUT_MS,
    probeTimeoutMs: init.probeTimeoutMs ?? C.DEFAULT_PROBE_TIMEOUT_MS,
    requestTimeoutMs: init.requestTimeoutMs ?? C.DEFAULT_REQUEST_TIMEOUT_MS,
    cancelGraceMs: init.cancelGraceMs ?? C.DEFAULT_CANCEL_GRACE_MS,
    drainTimeoutMs: init.drainTimeoutMs ?? C.DEFAULT_DRAIN_TIMEOUT_MS,
    healthIntervalMs: init.healthIntervalMs ?? C.DEFAULT_HEALTH_INTERVAL_MS,
    healthTimeoutMs: init.healthTimeoutMs ?? C.DEFAULT_HEALTH_TIMEOUT_MS,
    stopTimeoutMs: init.stopTimeoutMs ?? C.DEFAULT_STOP_TIMEOUT_MS,
    restartBackoffMs: init.restartBackoffMs ?? C.DEFAULT_RESTART_BACKOFF_MS,
    maxRestartBackoffMs: init.maxRestartBackoffMs ?? C.DEFAULT_MAX_RESTART_BACKOFF_MS,
    maxTokensLimit: init.maxTokensLimit ?? C.DEFAULT_MAX_TOKENS_LIMIT,
    spawnOnStart: init.spawnOnStart ?? C.DEFAULT_SPAWN_ON_START,
    workerMemoryLimitBytes: init.workerMemoryLimitBytes,
  }
}
