/** Public types of the inference supervisor: options, events, requests, results. */

import type { Logger } from '../logger.ts'
import type { LoadFailureReason } from './errors.ts'
import type { FinishReason } from './ipc.ts'
import type { OomDetector, OomMethod } from './oom-detector.ts'
import type { WorkerExitKind } from './worker-process.ts'

/**
 * Supervisor states.
 * - stopped: no worker. starting: spawning the worker (with spawnOnStart). idle: no model wanted,
 *   no worker (unless spawnOnStart made one).
 * - loading: validating, loading and probing a model (spawning the worker first if none).
 *   draining: waiting for in-flight requests before a swap. ready: serving. restarting: the worker
 *   died while serving; coming back.
 * - failed: a model is wanted but could not be loaded; its worker is stopped. stopping: shutting down.
 */
export type SupervisorState =
  | 'stopped'
  | 'starting'
  | 'idle'
  | 'loading'
  | 'draining'
  | 'ready'
  | 'restarting'
  | 'failed'
  | 'stopping'

/** Options of the supervisor. Every field has a default in constants.ts or defaults.ts. */
export interface InferenceSupervisorInit {
  /** llama.cpp threads. Default: defaultThreads(cores, model size) — 1 for tiny models. */
  threads?: number
  /** Context size per sequence. Default: defaultContextSize(header, free RAM). */
  contextSize?: number
  /** Concurrent generations. */
  maxConcurrent?: number
  /** Requests waiting for a slot before OverloadedError. */
  maxQueue?: number
  /** Max wait for a slot while serving (→ OverloadedError). */
  queueTimeoutMs?: number
  /** Max wait while no model serves, e.g. during a swap (→ ModelUnavailableError). */
  unavailableWaitMs?: number
  /** Retry-After seconds suggested to clients. */
  retryAfterSeconds?: number
  /** Prompt of the post-load probe (greedy, fixed seed). */
  probePrompt?: string
  probeMaxTokens?: number
  startTimeoutMs?: number
  loadTimeoutMs?: number
  probeTimeoutMs?: number
  requestTimeoutMs?: number
  cancelGraceMs?: number
  drainTimeoutMs?: number
  healthIntervalMs?: number
  healthTimeoutMs?: number
  stopTimeoutMs?: number
  restartBackoffMs?: number
  maxRestartBackoffMs?: number
  /** Largest max_tokens accepted. */
  maxTokensLimit?: number
  /**
   * Spawn the worker in start() (true: the first load skips the ~1–2 s runtime start). Default
   * DEFAULT_SPAWN_ON_START (false): the worker is spawned by the first load, so a device with no
   * model holds no worker (~100–117 MB RSS each); it is stopped again whenever no model remains.
   */
  spawnOnStart?: boolean
  /**
   * Memory limit of the worker's own cgroup (when one can be made, see oom-detector.ts): past it
   * the kernel OOM-kills the worker, never the daemon. Default: none (the device's RAM).
   */
  workerMemoryLimitBytes?: number
}

/** What the supervisor uses from its surroundings. */
export interface InferenceSupervisorComponents {
  logger: Logger
  /** Clock (ms since epoch) for event timestamps. Default Date.now. */
  now?: () => number
  /** Tells OOM kills of the worker from other SIGKILLs. Default: sharedOomDetector() (real cgroups). */
  oom?: OomDetector
}

/** Name and version a model is served under (labels, /v1/models). */
export interface ModelMeta {
  name?: string
  version?: string
}

/** The model being served. */
export interface LoadedModel {
  path: string
  name: string
  version: string | undefined
  architecture: string | undefined
  quantization: string
  contextSize: number
  trainContextSize: number
  threads: number
  loadMs: number
  loadedAt: number
}

/** What a request asks of the model. */
export type RequestMode = 'completion' | 'chat' | 'embed'

/** A generation request (text is never logged). */
export interface GenerateInput {
  mode: RequestMode
  prompt?: string
  /** Mode `embed`: the texts to embed. */
  inputs?: string[]
  messages?: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>
  maxTokens: number
  temperature?: number
  topP?: number
  seed?: number
  stop?: string[]
}

/** Per-request options. */
export interface GenerateOptions {
  /** Called with each text chunk as it is generated. */
  onText?: (text: string) => void
  /** Abort (e.g. the HTTP client disconnected). */
  signal?: AbortSignal
}

/** Result of a generation. */
export interface GenerateResult {
  text: string
  tokensIn: number
  tokensOut: number
  finishReason: FinishReason
  /** Mode `embed`: one vector per input, in order. */
  vectors?: number[][]
  /** From admission to the last token. */
  durationMs: number
  /** From admission to the first text chunk (undefined if none). */
  ttftMs: number | undefined
  queuedMs: number
}

/** Result of an embedding request. */
export interface EmbedResult {
  /** One vector per input, in order. */
  vectors: number[][]
  /** Tokens of all inputs. */
  tokensIn: number
  durationMs: number
  queuedMs: number
}

/** Result of a probe. */
export interface ProbeResult {
  tokensOut: number
  durationMs: number
  /** sha256 of the output: same model + same probe → same digest (greedy, fixed seed). */
  outputSha256: string
}

/** One finished request, for metrics (no text). */
export interface RequestRecord {
  at: number
  mode: RequestMode
  outcome: 'ok' | 'error'
  /** Error code when outcome is 'error'. */
  errorCode?: string
  durationMs: number
  ttftMs?: number
  queuedMs: number
  tokensIn: number
  tokensOut: number
}

/** Events. Each carries `at` so rollback triggers can window them. */
export interface SupervisorEvents {
  state: [{ at: number; state: SupervisorState; previous: SupervisorState }]
  'worker-exit': [
    { at: number; kind: WorkerExitKind; code: number | null; signal: string | null; during: SupervisorState },
  ]
  crash: [{ at: number; code: number | null; signal: string | null }]
  oom: [{ at: number; during: 'load' | 'serving' }]
  timeout: [{ at: number; what: 'start' | 'load' | 'request' | 'cancel' | 'health' | 'probe' }]
  /** Emitted when a restart is decided; `model` is the version whose worker died. */
  restart: [
    { at: number; count: number; reason: WorkerExitKind; model?: { name: string; version: string | undefined } },
  ]
  'load-failure': [{ at: number; path: string; reason: LoadFailureReason; code: string; message: string }]
  'probe-failure': [{ at: number; path: string; message: string }]
  'model-loaded': [{ at: number; model: LoadedModel }]
  /** The model was deactivated on purpose: no worker, nothing served until the next load. */
  'model-deactivated': [{ at: number; note: DeactivationNote }]
  request: [RequestRecord]
  queue: [{ active: number; waiting: number }]
}

/** Why the supervisor stopped serving a model on purpose (see `deactivate`). */
export interface DeactivationNote {
  /** The model's name. */
  name: string
  /** The version it served, if known. */
  version?: string
  /** Why, for clients and /status, e.g. `release aborted`. */
  reason: string
  /** ms since epoch. */
  at: number
}

/** Snapshot for status pages and metrics. */
export interface SupervisorStatus {
  state: SupervisorState
  model: LoadedModel | undefined
  workerPid: number | undefined
  workerRssBytes: number | undefined
  restarts: number
  active: number
  waiting: number
  /** Set while a model is deactivated on purpose (cleared by the next successful load). */
  deactivated: DeactivationNote | undefined
  /** How the live worker's OOM kills are told from other SIGKILLs (`none`: they cannot be). */
  oomDetection?: OomMethod
}
