/**
 * Errors of federated serving. The OpenAI routes map them to OpenAI's error shape
 * (node/inference/openai-routes.ts): ERR_FORWARD_FAILED 502 `forward_failed`,
 * ERR_FORWARD_TIMEOUT 504 `forward_timeout`.
 */
import { LlmeshError } from '../../protocols/errors.ts'

/** Why forwarding failed. Stable. */
export type ForwardErrorCode =
  /** Every peer tried failed (dial, stream, hostile or truncated frames). */
  | 'ERR_FORWARD_FAILED'
  /** The peer took too long for its head or between two body frames, or in total. */
  | 'ERR_FORWARD_TIMEOUT'

/** A forwarded request that could not be served through a peer. */
export class ForwardError extends LlmeshError {
  declare readonly code: ForwardErrorCode
  constructor(code: ForwardErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'ForwardError'
  }
}
