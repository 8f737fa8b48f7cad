/**
 * Messages between the supervisor (parent) and the inference worker (child process).
 * Requests carry an `id`; the worker answers with the same id. Token text travels only over
 * this channel: it is never logged on either side.
 */

/** How the worker should load a model. */
export interface LoadSpec {
  modelPath: string
  contextSize: number
  threads: number
  /** llama.cpp sequences = concurrent generations (+1 reserved for probes). */
  sequences: number
}

/** What to generate. `prompt` for completions, `messages` for chat, `inputs` for embeddings. */
export interface GenerateSpec {
  mode: 'completion' | 'chat' | 'embed'
  prompt?: string
  /** Texts to embed (mode `embed`): one vector each, in order. */
  inputs?: string[]
  messages?: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>
  maxTokens: number
  /** 0 = greedy. */
  temperature: number
  topP?: number
  seed?: number
  stop?: string[]
  /** Use the sequence reserved for probes. */
  probe?: boolean
}

/** Parent → worker. */
export type ToWorker =
  | { type: 'load'; id: number; spec: LoadSpec }
  | { type: 'unload'; id: number }
  | { type: 'generate'; id: number; spec: GenerateSpec }
  | { type: 'cancel'; id: number }
  | { type: 'health'; id: number }
  | { type: 'shutdown' }

/** Why a generation stopped. */
export type FinishReason = 'stop' | 'length' | 'abort'

/** Worker health snapshot. */
export interface WorkerHealth {
  pid: number
  rssBytes: number
  modelLoaded: boolean
  active: number
}

/** Worker → parent. */
export type FromWorker =
  | { type: 'ready'; pid: number; cpuMathCores: number }
  | { type: 'loaded'; id: number; contextSize: number; trainContextSize: number; loadMs: number }
  | { type: 'load-error'; id: number; message: string; oom: boolean }
  | { type: 'unloaded'; id: number }
  | { type: 'text'; id: number; text: string }
  | {
      type: 'done'
      id: number
      tokensIn: number
      tokensOut: number
      finishReason: FinishReason
      /** Mode `embed`: one vector per input. */
      vectors?: number[][]
    }
  /** `tooLong`: an input does not fit the context (the caller's fault, not the runtime's). */
  | { type: 'gen-error'; id: number; message: string; tooLong?: boolean }
  | { type: 'health'; id: number; health: WorkerHealth }
  | { type: 'log'; level: 'warn' | 'error' | 'fatal'; message: string }
