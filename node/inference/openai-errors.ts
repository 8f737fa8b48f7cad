/**
 * OpenAI's error shape `{ error: { message, type, param, code } }` and the mapping of every error
 * the OpenAI routes meet (node/inference/openai-routes.ts) to an HTTP status, a type and a code.
 */
import type { FastifyError } from 'fastify'
import { ForwardError } from '../serving/errors.ts'
import {
  GenerationError,
  InferenceError,
  InferenceTimeoutError,
  InputTooLongError,
  ModelDeactivatedError,
  ModelUnavailableError,
  OverloadedError,
  WorkerCrashedError,
} from './errors.ts'
import { InvalidBodyError } from './openai-schemas.ts'

/** An error in OpenAI's shape with its HTTP status. */
export class ApiError extends Error {
  readonly status: number
  readonly type: string
  readonly code: string
  readonly param: string | null
  readonly retryAfter: number | undefined
  constructor(
    status: number,
    type: string,
    code: string,
    message: string,
    param: string | null = null,
    retryAfter?: number,
  ) {
    super(message)
    this.status = status
    this.type = type
    this.code = code
    this.param = param
    this.retryAfter = retryAfter
  }
}

/** Maps any error to an ApiError (status, OpenAI type and code). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err
  if (err instanceof InvalidBodyError)
    return new ApiError(400, 'invalid_request_error', 'invalid_request', err.message, err.param)
  if (err instanceof OverloadedError)
    return new ApiError(429, 'rate_limit_error', 'overloaded', err.message, null, err.retryAfterSeconds)
  if (err instanceof ModelDeactivatedError) return new ApiError(503, 'server_error', 'model_deactivated', err.message)
  if (err instanceof ModelUnavailableError) {
    return new ApiError(503, 'server_error', 'model_unavailable', err.message, null, err.retryAfterSeconds)
  }
  if (err instanceof InputTooLongError) {
    return new ApiError(400, 'invalid_request_error', 'context_length_exceeded', err.message, 'input')
  }
  if (err instanceof ForwardError) {
    if (err.code === 'ERR_FORWARD_TIMEOUT') return new ApiError(504, 'server_error', 'forward_timeout', err.message)
    return new ApiError(502, 'server_error', 'forward_failed', err.message)
  }
  if (err instanceof InferenceTimeoutError) return new ApiError(504, 'server_error', 'timeout', err.message)
  if (err instanceof WorkerCrashedError) return new ApiError(502, 'server_error', 'worker_crashed', err.message)
  if (err instanceof GenerationError) return new ApiError(500, 'server_error', 'generation_error', 'generation failed')
  if (err instanceof InferenceError) return new ApiError(500, 'server_error', err.code.toLowerCase(), err.message)
  const fe = err as Partial<FastifyError>
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new ApiError(fe.statusCode, 'invalid_request_error', 'invalid_request', fe.message ?? 'bad request')
  }
  return new ApiError(500, 'server_error', 'internal_error', 'internal error')
}

export const errorBody = (e: ApiError) => ({
  error: { message: e.message, type: e.type, param: e.param, code: e.code },
})
