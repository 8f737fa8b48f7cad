/**
 * Local rollback triggers, as the seed article lists them: a new version restarting more than 3
 * times in 5 minutes, failing to load, failing its probe, or an OOM. Pure: events and `now` in,
 * a reason (or null) out, by node/inference's `decideRollback`. The controller keeps the events
 * of the version under probation.
 */
import { decideRollback } from '../inference/rollback-triggers.ts'
import { LOCAL_MAX_RESTARTS, LOCAL_RESTART_WINDOW_MS } from './constants.ts'

/** A health event seen on the version under probation. */
export interface LocalEvent {
  kind: 'restart' | 'oom' | 'load-failure' | 'probe-failure'
  at: number
}

/** Why a device rolls back by itself. */
export type LocalTrigger = 'restart-loop' | 'oom' | 'load-failure' | 'probe-failure'

/** Options of the trigger check. */
export interface TriggerLimits {
  maxRestarts?: number
  restartWindowMs?: number
}

/** The first local rollback trigger met by the events, or null (node/inference's pure rule). */
export function localRollbackTrigger(
  events: readonly LocalEvent[],
  now: number,
  limits: TriggerLimits = {},
): LocalTrigger | null {
  const d = decideRollback(events, now, {
    maxRestarts: limits.maxRestarts ?? LOCAL_MAX_RESTARTS,
    windowMs: limits.restartWindowMs ?? LOCAL_RESTART_WINDOW_MS,
  })
  if (!d.rollback) return null
  return d.reason === 'restarts' ? 'restart-loop' : d.reason
}
