/**
 * Local rollback triggers, as the seed article lists them (pure: events and `now` are passed in).
 * A device rolls back the new version it serves when, since that version was activated:
 * - the worker restarted more than `maxRestarts` times within `windowMs` (default >3 in 5 min),
 * - or the model failed to load, or its probe failed, or the worker ran out of memory (once is enough).
 * The activator keeps the events of the version under probation (pruned, so bounded) and asks
 * `localRollbackTrigger`; this is the only statement of the rule.
 */
import { LOCAL_MAX_RESTARTS, LOCAL_RESTART_WINDOW_MS } from './constants.ts'

/** Incidents that count towards a rollback. */
export type TriggerEventKind = 'restart' | 'load-failure' | 'probe-failure' | 'oom'

/** One incident with its time (ms since epoch). */
export interface TriggerEvent {
  kind: TriggerEventKind
  at: number
}

/** Thresholds of the rule. */
export interface RollbackRule {
  /** More restarts than this within the window trigger a rollback. */
  maxRestarts: number
  windowMs: number
}

/** The rule's defaults (node/rollout/constants.ts: more than 3 restarts in 5 minutes). */
export const DEFAULT_ROLLBACK_RULE: Readonly<RollbackRule> = {
  maxRestarts: LOCAL_MAX_RESTARTS,
  windowMs: LOCAL_RESTART_WINDOW_MS,
}

/** Why a rollback is wanted. */
export type RollbackReason = 'restarts' | 'load-failure' | 'probe-failure' | 'oom'

/** The decision, with the reason and the incident that tipped it. */
export type RollbackDecision =
  | { rollback: false; restartsInWindow: number }
  | { rollback: true; reason: RollbackReason; at: number; restartsInWindow: number; message: string }

/** Applies the rule to `events` as of `now`. Events after `now` are ignored. */
export function decideRollback(
  events: readonly TriggerEvent[],
  now: number,
  rule: RollbackRule = DEFAULT_ROLLBACK_RULE,
): RollbackDecision {
  const past = events.filter((e) => e.at <= now).sort((a, b) => a.at - b.at)
  const restarts = past.filter((e) => e.kind === 'restart' && e.at > now - rule.windowMs)
  const restartsInWindow = restarts.length
  const fatal = past.find((e) => e.kind !== 'restart')
  if (fatal !== undefined) {
    const reason = fatal.kind as Exclude<TriggerEventKind, 'restart'>
    return { rollback: true, reason, at: fatal.at, restartsInWindow, message: `${reason} at ${fatal.at}` }
  }
  if (restartsInWindow > rule.maxRestarts) {
    const tipping = restarts[rule.maxRestarts]
    return {
      rollback: true,
      reason: 'restarts',
      at: tipping.at,
      restartsInWindow,
      message: `${restartsInWindow} restarts within ${Math.round(rule.windowMs / 1000)} s (limit ${rule.maxRestarts})`,
    }
  }
  return { rollback: false, restartsInWindow }
}

/** Drops events that can no longer matter (restarts older than the window); keeps the rest. */
export function pruneTriggerEvents(
  events: readonly TriggerEvent[],
  now: number,
  rule: RollbackRule = DEFAULT_ROLLBACK_RULE,
): TriggerEvent[] {
  return events.filter((e) => e.kind !== 'restart' || e.at > now - rule.windowMs)
}

/** A health event seen on the version under probation. */
export type LocalEvent = TriggerEvent

/** Why a device rolls back by itself. */
export type LocalTrigger = 'restart-loop' | 'oom' | 'load-failure' | 'probe-failure'

/** The first local rollback trigger met by the events, or null. */
export function localRollbackTrigger(
  events: readonly LocalEvent[],
  now: number,
  rule: RollbackRule = DEFAULT_ROLLBACK_RULE,
): LocalTrigger | null {
  const d = decideRollback(events, now, rule)
  if (!d.rollback) return null
  return d.reason === 'restarts' ? 'restart-loop' : d.reason
}
