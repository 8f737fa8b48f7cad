/**
 * Bounded concurrency with a bounded FIFO queue. At most `maxConcurrent` holders; at most
 * `maxQueue` waiters (more are refused at once). While paused (model swap, restart), no slot is
 * granted: waiters keep their place until resume or their own deadline.
 */

/** A waiter's deadline passed or it was refused: the caller decides which error to raise. */
export type QueueRefusal = 'full' | 'timeout' | 'aborted' | 'closed'

/** Thrown by acquire() when no slot is granted. */
export class QueueRefusedError extends Error {
  readonly reason: QueueRefusal
  /** True when the queue was paused at the time of refusal (no model serving). */
  readonly paused: boolean
  constructor(reason: QueueRefusal, paused: boolean) {
    super(`request queue: ${reason}`)
    this.name = 'QueueRefusedError'
    this.reason = reason
    this.paused = paused
  }
}

interface Waiter {
  grant: (release: () => void) => void
  refuse: (err: QueueRefusedError) => void
}

/** Bounded concurrency + bounded queue. */
export class RequestQueue {
  private readonly maxConcurrent: number
  private readonly maxQueue: number
  private waiters: Waiter[] = []
  private drainWaiters: Array<() => void> = []
  private paused = false
  active = 0

  constructor(init: { maxConcurrent: number; maxQueue: number }) {
    this.maxConcurrent = init.maxConcurrent
    this.maxQueue = init.maxQueue
  }

  get waiting(): number {
    return this.waiters.length
  }

  get isPaused(): boolean {
    return this.paused
  }

  /**
   * Waits for a slot. `timeoutMs` is chosen by the caller (it differs when paused);
   * the returned function releases the slot (idempotent).
   */
  acquire(timeoutMs: (paused: boolean) => number, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted === true) return Promise.reject(new QueueRefusedError('aborted', this.paused))
    if (!this.paused && this.active < this.maxConcurrent && this.waiters.length === 0) {
      this.active++
      return Promise.resolve(this.releaser())
    }
    if (this.waiters.length >= this.maxQueue) return Promise.reject(new QueueRefusedError('full', this.paused))
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.waiters = this.waiters.filter((w) => w !== waiter)
      }
      const waiter: Waiter = {
        grant: (release) => {
          done()
          resolve(release)
        },
        refuse: (err) => {
          done()
          reject(err)
        },
      }
      const timer = setTimeout(
        () => waiter.refuse(new QueueRefusedError('timeout', this.paused)),
        timeoutMs(this.paused),
      )
      const onAbort = (): void => waiter.refuse(new QueueRefusedError('aborted', this.paused))
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(waiter)
    })
  }

  private releaser(): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      this.active--
      this.pump()
      if (this.active === 0) for (const d of this.drainWaiters.splice(0)) d()
    }
  }

  private pump(): void {
    while (!this.paused && this.active < this.maxConcurrent && this.waiters.length > 0) {
      const w = this.waiters[0]
      this.active++
      w.grant(this.releaser())
    }
  }

  /** Stops granting slots (holders keep theirs). */
  pause(): void {
    this.paused = true
  }

  /** Grants slots again, oldest waiter first. */
  resume(): void {
    this.paused = false
    this.pump()
  }

  /** Resolves true once no slot is held, false if `timeoutMs` passes first. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const d = (): void => {
        clearTimeout(timer)
        resolve(true)
      }
      const timer = setTimeout(() => {
        this.drainWaiters = this.drainWaiters.filter((x) => x !== d)
        resolve(false)
      }, timeoutMs)
      this.drainWaiters.push(d)
    })
  }

  /** Refuses every waiter (stop, or the model will not come back). */
  refuseAll(reason: QueueRefusal = 'closed'): void {
    for (const w of this.waiters.slice()) w.refuse(new QueueRefusedError(reason, this.paused))
  }
}
