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
