/**
 * Named errors with a stable `code`. Verification never throws for bad input: it returns a
 * `VerificationError` value in a result; these classes are also thrown by helpers that are
 * only called on trusted data.
 */

/** Every reason a message or file can be refused. Stable: tools and tests match on it. */
export type VerificationCode =
  | 'ERR_UNKNOWN_SIGNER'
  | 'ERR_BAD_SIGNATURE'
  | 'ERR_WRONG_FLEET'
  | 'ERR_EXPIRED'
  | 'ERR_ROLLBACK'
  | 'ERR_SCHEMA'
  | 'ERR_OVERSIZED'
  | 'ERR_UNKNOWN_TYPE'
  | 'ERR_DIGEST_MISMATCH'
  | 'ERR_NOT_ENROLLED'
  | 'ERR_REVOKED'
  | 'ERR_FUTURE'
  /** A trust-root rotation lacks the signatures of a threshold of the old or the new keys. */
  | 'ERR_THRESHOLD'
  /** An invite claim that ranks after every use of its invite (and the slack): it can never win. */
  | 'ERR_INVITE_USED'

/** Base class of llmesh errors. */
export class LlmeshError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'LlmeshError'
  }
}

/** A message or artifact failed verification. */
export class VerificationError extends LlmeshError {
  declare readonly code: VerificationCode
  constructor(code: VerificationCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'VerificationError'
  }
}

/** Input that does not parse (schema violation in trusted local input such as a policy file). */
export class InvalidInputError extends LlmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_INPUT', message, options)
    this.name = 'InvalidInputError'
  }
}
