/** Typed refusals of the message store (a message it could not make durable is not accepted). */
import { LlmeshError } from '../../protocols/errors.ts'

/** Why the store refused a message: the disk is full (ENOSPC, EDQUOT), or another write error. */
export type StoreErrorCode = 'ERR_DISK_FULL' | 'ERR_STORE_WRITE'

/** An append to the message log failed: the message is refused, not stored (in memory either). */
export class StoreWriteError extends LlmeshError {
  declare readonly code: StoreErrorCode
  /** The system error code (`ENOSPC`, `EIO`, …), or `UNKNOWN`. */
  readonly errno: string
  constructor(errno: string, message: string, options?: { cause?: unknown }) {
    super(errno === 'ENOSPC' || errno === 'EDQUOT' ? 'ERR_DISK_FULL' : 'ERR_STORE_WRITE', message, options)
    this.name = 'StoreWriteError'
    this.errno = errno
  }

  /** Wraps a failed write. */
  static from(err: unknown): StoreWriteError {
    if (err instanceof StoreWriteError) return err
    const errno = (err as NodeJS.ErrnoException)?.code ?? 'UNKNOWN'
    const what = err instanceof Error ? err.message : String(err)
    return new StoreWriteError(errno, `cannot append to the message log: ${what}`, { cause: err })
  }
}

/** Which limit of a signer's quota a message would pass. */
export type QuotaLimit = 'count' | 'bytes'

/**
 * A device signer already holds its quota of one message type (count or wire bytes, see
 * docs/protocol.md, "Message retention"): the message is refused, not stored, not forwarded.
 */
export class StoreQuotaError extends LlmeshError {
  declare readonly code: 'ERR_QUOTA'
  readonly signer: string
  readonly type: string
  readonly limit: QuotaLimit
  constructor(signer: string, type: string, limit: QuotaLimit, message: string) {
    super('ERR_QUOTA', message)
    this.name = 'StoreQuotaError'
    this.signer = signer
    this.type = type
    this.limit = limit
  }
}
