/**
 * The restart policy of the inference worker, pure (no clock read: `now` is passed in).
 *
 * A worker that exits on its own (crash, OOM, timeout) while a model was being served is brought
 * back after a delay that doubles with each restart (restartBackoffMs … maxRestartBackoffMs). After
 * a quiet spell longer than twice the longest delay, the delay starts small again, so a crash loop
 * backs off while an isolated crash days later restarts quickly. Every restart is counted.
 */
import type { ResolvedSupervisorInit } from './defaults.ts'
import type { SupervisorState } from './types.ts'
import type { WorkerExitKind } from './worker-process.ts'

/** The delays the policy works with. */
export type RestartPolicyConfig = Pick<ResolvedSupervisorInit, 'restartBackoffMs' | 'maxRestartBackoffMs'>

/** The restart accounting so far. */
export interface RestartBook {
  /** Restarts decided since the supervisor was made. */
  readonly count: number
  /** Delay before the next restart, unless the quiet spell resets it. */
  readonly backoffMs: number
  /** When the last restart was decided (0: never). */
  readonly lastAt: number
}

/** The accounting before any restart. */
export function initialRestartBook(cfg: RestartPolicyConfig): RestartBook {
  return { count: 0, backoffMs: cfg.restartBackoffMs, lastAt: 0 }
}

/**
 * Whether a worker exit calls for a restart: only an exit we did not ask for, while the model was
 * being served, with a model still wanted. (An exit during a load fails that load instead.)
 */
export function shouldRestart(kind: WorkerExitKind, during: SupervisorState, modelWanted: boolean): boolean {
  return kind !== 'stopped' && during === 'ready' && modelWanted
}

/** Decides one restart at `now`: the delay before it and the accounting after it. */
export function decideRestart(
  book: RestartBook,
  now: number,
  cfg: RestartPolicyConfig,
): { delayMs: number; book: RestartBook } {
  const delayMs = now - book.lastAt > cfg.maxRestartBackoffMs * 2 ? cfg.restartBackoffMs : book.backoffMs
  return {
    delayMs,
    book: { count: book.count + 1, lastAt: now, backoffMs: Math.min(delayMs * 2, cfg.maxRestartBackoffMs) },
  }
}
