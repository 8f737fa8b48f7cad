/**
 * The node API's one HTTP error contract: every error of every route (except the OpenAI-compatible
 * `/v1/…` routes, which answer in OpenAI's own error shape) is
 *
 *   <status from ERROR_STATUS>  { "error": { "code": "ERR_…", "message": "…" } }
 *
 * How it works: routes throw (or pass to `errorReply`) a typed `LlmeshError`; its `code` picks the
 * status from ONE table. Fastify's own refusals (bad JSON, wrong content type, body too large,
 * unknown route) are mapped to stable `ERR_` codes by `installErrorHandlers`. Anything else is a
 * bug: 500 `ERR_INTERNAL` with a generic message, and the real error goes to the log only.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { LlmeshError } from '../../protocols/errors.ts'
import type { Logger } from '../logger.ts'

/** HTTP status of every `ERR_` code a route answers with. Stable: clients and the CLI match on the code. */
export const ERROR_STATUS: Readonly<Record<string, number>> = {
  // 400: the request, or the signed message or file it carries, is invalid
  ERR_INVALID_INPUT: 400,
  ERR_BAD_REQUEST: 400,
  ERR_BAD_JSON: 400,
  ERR_UNKNOWN_DEVICE: 400,
  ERR_SCHEMA: 400,
  ERR_UNKNOWN_SIGNER: 400,
  ERR_BAD_SIGNATURE: 400,
  ERR_WRONG_FLEET: 400,
  ERR_EXPIRED: 400,
  ERR_ROLLBACK: 400,
  ERR_OVERSIZED: 400,
  ERR_UNKNOWN_TYPE: 400,
  ERR_DIGEST_MISMATCH: 400,
  ERR_FUTURE: 400,
  ERR_THRESHOLD: 400,
  ERR_GGUF_BAD_MAGIC: 400,
  ERR_GGUF_BAD_VALUE: 400,
  ERR_GGUF_BAD_TENSOR: 400,
  ERR_GGUF_MISSING_KEY: 400,
  ERR_GGUF_TRUNCATED: 400,
  ERR_GGUF_UNSUPPORTED_VERSION: 400,
  ERR_GGUF_UNSUPPORTED_ARCH: 400,
  // a release bundle refused (protocols/release-bundle.ts): the message names the bundle file
  ERR_BUNDLE_FORMAT: 400,
  ERR_BUNDLE_MISMATCH: 400,
  ERR_BUNDLE_CHUNK_DIGEST: 400,
  ERR_BUNDLE_CHUNK_UNKNOWN: 400,
  ERR_BUNDLE_CHUNK_MISSING: 400,
  ERR_BUNDLE_FILE_DIGEST: 400,
  ERR_BUNDLE_PROOF: 400,
  ERR_REPORT_FORMAT: 400,
  ERR_REPORT_DIGEST: 400,
  ERR_REPORT_FLEET: 400,
  // a model named like agent releases (protocols/agent/reserved-names.ts)
  ERR_RESERVED_NAME: 400,
  // 401/403: who may call, and from where
  ERR_UNAUTHORIZED: 401,
  ERR_HOST_NOT_ALLOWED: 403,
  ERR_ORIGIN_NOT_ALLOWED: 403,
  ERR_NO_OPERATOR_KEY: 403,
  ERR_NOT_ENROLLED: 403,
  // 404: no such thing (ERR_NO_ROUTE: no such route on this node, e.g. /devices on a device)
  ERR_NOT_FOUND: 404,
  ERR_NO_ROUTE: 404,
  ERR_UNKNOWN_RELEASE: 404,
  // 409: refused by the current state
  ERR_REVOKED: 409,
  ERR_VERSION_EXISTS: 409,
  ERR_DOWNGRADE: 409,
  ERR_INVITE_USED: 409,
  ERR_BUNDLE_FEED_STATE: 409,
  ERR_RELEASE_INCOMPLETE: 409,
  ERR_IMPORT_BUSY: 409,
  // 413/415: the body
  ERR_UPLOAD_TOO_LARGE: 413,
  ERR_BODY_TOO_LARGE: 413,
  ERR_GGUF_TOO_LARGE: 413,
  ERR_BUNDLE_TOO_LARGE: 413,
  ERR_REPORT_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  // 429: the signer holds its quota of stored messages (node/mesh/store-errors.ts)
  ERR_QUOTA: 429,
  // 5xx
  ERR_INTERNAL: 500,
  ERR_GGUF_IO: 500,
  ERR_NOT_RUNNING: 503,
  // the message store could not write a message (node/mesh/store-errors.ts): refused, not stored
  ERR_STORE_WRITE: 500,
  ERR_DISK_FULL: 507,
  // the operator's release seq counter cannot be read or written (seed/seq-authority.ts)
  ERR_SEQ_AUTHORITY: 500,
}

/** Status of a typed refusal whose code the table does not list (as before the table: a bad request). */
export const UNLISTED_CODE_STATUS = 400

/** Message of a 500: the real error is logged, never sent. */
export const INTERNAL_MESSAGE = 'internal error (see the node log)'

/** The one error body. */
export interface ErrorBody {
  error: { code: string; message: string }
}

/** A resolved error: status, body, and whether it is a bug to log. */
export interface ErrorReply {
  status: number
  body: ErrorBody
  /** True for `ERR_INTERNAL` and every 5xx: log it. */
  log: boolean
}

/** HTTP status of `code`. */
export function statusOf(code: string): number {
  return ERROR_STATUS[code] ?? UNLISTED_CODE_STATUS
}

/** The body for `code` and `message`. */
export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } }
}

/** Fastify's own client errors, by their `FST_` code. */
const FASTIFY_CODES: Readonly<Record<string, string>> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'ERR_BAD_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'ERR_BAD_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'ERR_BAD_REQUEST',
  FST_ERR_VALIDATION: 'ERR_INVALID_INPUT',
  FST_ERR_NOT_FOUND: 'ERR_NO_ROUTE',
}

/**
 * Maps any thrown value to the contract. A code is trusted from an `LlmeshError`, or when the
 * table lists it; Node's own errors also use `ERR_…` codes (ERR_STREAM_PREMATURE_CLOSE, …): those
 * are bugs here, not refusals.
 */
export function errorReply(err: unknown): ErrorReply {
  const fe = err as { code?: unknown; statusCode?: unknown; message?: unknown } | null
  const code = typeof fe?.code === 'string' ? fe.code : undefined
  if (code !== undefined && /^ERR_[A-Z0-9_]+$/.test(code) && (err instanceof LlmeshError || code in ERROR_STATUS)) {
    const status = statusOf(code)
    const internal = code === 'ERR_INTERNAL'
    return {
      status,
      body: errorBody(code, internal || typeof fe?.message !== 'string' ? INTERNAL_MESSAGE : fe.message),
      log: status >= 500,
    }
  }
  const mapped = code !== undefined ? FASTIFY_CODES[code] : undefined
  const message = typeof fe?.message === 'string' ? fe.message : 'bad request'
  if (mapped !== undefined) return { status: statusOf(mapped), body: errorBody(mapped, message), log: false }
  // fastify's other client errors (malformed URL, …)
  if (code?.startsWith('FST_ERR') === true && isClientStatus(fe?.statusCode)) {
    return { status: statusOf('ERR_BAD_REQUEST'), body: errorBody('ERR_BAD_REQUEST', message), log: false }
  }
  return { status: statusOf('ERR_INTERNAL'), body: errorBody('ERR_INTERNAL', INTERNAL_MESSAGE), log: true }
}

function isClientStatus(s: unknown): boolean {
  return typeof s === 'number' && s >= 400 && s < 500
}

/** Sends the contract's answer for `code` (a refusal decided in a route or hook). */
export function sendError(reply: FastifyReply, code: string, message: string): FastifyReply {
  return reply.status(statusOf(code)).send(errorBody(code, message))
}

/**
 * Makes `app` answer every error and every unknown route in the contract. Plugins that set their
 * own handler (the OpenAI-compatible routes) keep it inside their own context.
 */
export function installErrorHandlers(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err, req, reply) => {
    const r = errorReply(err)
    if (r.log) log.error({ err, method: req.method, url: req.url }, 'api error')
    return reply.status(r.status).send(r.body)
  })
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, 'ERR_NO_ROUTE', `no route ${req.method} ${req.url.split('?')[0]} on this node`),
  )
}
