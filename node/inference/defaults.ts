/**
 * Default threads and context size for a model on this device (pure: the caller passes cores,
 * free RAM and header numbers).
 */
import { KV_CACHE_RAM_FRACTION, MAX_DEFAULT_CONTEXT, MIN_CONTEXT, TINY_MODEL_BYTES } from './constants.ts'

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
