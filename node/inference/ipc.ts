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

/**
 * A quality probe (node/quality/): the prompt, then the reference output scored token by token
 * (teacher forced, greedy). Without a reference, the model's own greedy output is returned
 * instead (how a publisher makes references by running the reference version).
 */
export interface ScoreSpec {
  prompt: string
  reference?: string
  referenceTokens?: number[]
  maxTokens: number
}

/** What a scored probe gave. */
export interface ScoreResult {
  /** Reference tokens scored. */
  tokens: number
  /** Of those, the model's most likely next token. */
  agreed: number
  /** Σ −ln p(reference token), nats (each term capped). */
  nll: number
  /** Without a reference: the greedy output tokens and their text. */
  greedy?: number[]
  text?: string
}

/** Parent → worker. */
export type ToWorker =
  | { type: 'load'; id: number; spec: LoadSpec }
  | { type: 'unload'; id: number }
  | { type: 'generate'; id: number; spec: GenerateSpec }
  | { type: 'cancel'; id: number }
  | { type: 'score'; id: number; spec: ScoreSpec }
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
  | { type: 'scored'; id: number; result: ScoreResult }
  | { type: 'score-error'; id: number; message: string }
  | { type: 'health'; id: number; health: WorkerHealth }
  | { type: 'log'; level: 'warn' | 'error' | 'fatal'; message: string }
