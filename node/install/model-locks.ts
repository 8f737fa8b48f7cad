/** Per-model serialization of the installer's operations (installer.ts): one at a time per model, models in parallel. */

/** A queue of operations per model. */
export class ModelLocks {
  private readonly locks = new Map<string, Promise<unknown>>()

  /** Runs `fn` once the operations on `model` queued before it have settled (whatever their outcome). */
  run<T>(model: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(model) ?? Promise.resolve()
    const next = prev.catch(() => {}).then(fn)
    this.locks.set(model, next)
    next
      .finally(() => {
        if (this.locks.get(model) === next) this.locks.delete(model)
      })
      .catch(() => {})
    return next
  }

  /** Settles once the last operation queued on each model so far has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.locks.values()])
  }
}
