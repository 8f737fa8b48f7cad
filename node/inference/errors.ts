import { LlmeshError } from '../../protocols/errors.ts'

/** Why an inference request or model operation failed. Stable: the HTTP layer maps on it. */
export type InferenceErrorCode =
  | 'ERR_MODEL_UNAVAILABLE'
  | 'ERR_MODEL_DEACTIVATED'
  | 'ERR_OVERLOADED'
  | 'ERR_MODEL_LOAD'
  | 'ERR_PROBE_FAILED'
  | 'ERR_INFERENCE_TIMEOUT'
  | 'ERR_WORKER_CRASHED'
  | 'ERR_ABORTED'
  | 'ERR_GENERATION'
  | 'ERR_INPUT_TOO_LONG'
  | 'ERR_SUPERVISOR_STOPPED'

/** Base of inference errors. */
export class InferenceError extends LlmeshError {
  declare readonly code: InferenceErrorCode
  constructor(code: InferenceErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'InferenceError'
  }
}

/** No model is serving right now (loading, swapping, restarting, failed). HTTP 503 + Retry-After. */
export class ModelUnavailableError extends InferenceError {
  readonly retryAfterSeconds: number
  constructor(message: string, retryAfterSeconds: number) {
    super('ERR_MODEL_UNAVAILABLE', message)
    this.name = 'ModelUnavailableError'
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/**
 * The device deactivated the model (its release was aborted or failed here, with no earlier
 * version to go back to): nothing serves it until a good release activates. HTTP 503, no Retry-After.
 */
export class ModelDeactivatedError extends InferenceError {
  readonly model: string
  constructor(model: string, message: string) {
    super('ERR_MODEL_DEACTIVATED', message)
    this.name = 'ModelDeactivatedError'
    this.model = model
  }
}

/** The request queue is full or the wait for a slot was too long. HTTP 429 + Retry-After. */
export class OverloadedError extends InferenceError {
  readonly retryAfterSeconds: number
  constructor(message: string, retryAfterSeconds: number) {
    super('ERR_OVERLOADED', message)
    this.name = 'OverloadedError'
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/** What made a model load fail. */
export type LoadFailureReason = 'invalid-file' | 'refused' | 'crash' | 'oom' | 'timeout'

/** A model could not be loaded. `reason` tells the header check apart from the runtime refusing it. */
export class ModelLoadError extends InferenceError {
  readonly reason: LoadFailureReason
  /** The underlying code, e.g. ERR_GGUF_MISSING_KEY. */
  readonly detailCode: string | undefined
  constructor(message: string, reason: LoadFailureReason, detailCode?: string, options?: { cause?: unknown }) {
    super('ERR_MODEL_LOAD', message, options)
    this.name = 'ModelLoadError'
    this.reason = reason
    this.detailCode = detailCode
  }
}

/** The post-load probe generation failed. */
export class ProbeFailedError extends InferenceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PROBE_FAILED', message, options)
    this.name = 'ProbeFailedError'
  }
}

/** A request or operation took longer than its bound. */
export class InferenceTimeoutError extends InferenceError {
  constructor(message: string) {
    super('ERR_INFERENCE_TIMEOUT', message)
    this.name = 'InferenceTimeoutError'
  }
}

/** The worker process died while the request was running. */
export class WorkerCrashedError extends InferenceError {
  constructor(message: string) {
    super('ERR_WORKER_CRASHED', message)
    this.name = 'WorkerCrashedError'
  }
}

/** The caller aborted the request (e.g. the HTTP client went away). */
export class RequestAbortedError extends InferenceError {
  constructor() {
    super('ERR_ABORTED', 'request aborted')
    this.name = 'RequestAbortedError'
  }
}

/** An input does not fit the model's context (the caller must shorten it). */
export class InputTooLongError extends InferenceError {
  constructor(message: string) {
    super('ERR_INPUT_TOO_LONG', message)
    this.name = 'InputTooLongError'
  }
}

/** The runtime reported an error for this request (bad input, context overflow…). */
export class GenerationError extends InferenceError {
  constructor(message: string) {
    super('ERR_GENERATION', message)
    this.name = 'GenerationError'
  }
}
