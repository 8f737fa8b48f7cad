/**
 * Collects the supervisor's rollback-relevant events (restart, load-failure, probe-failure, oom)
 * for the model version under judgement, for decideRollback(). Call reset() when a new version
 * is deployed.
 */
import type { InferenceSupervisor } from './inference-supervisor.ts'
import { DEFAULT_ROLLBACK_RULE, pruneTriggerEvents, type RollbackRule, type TriggerEvent } from './rollback-triggers.ts'

/** A live collection of trigger events. */
export interface TriggerRecorder {
  /** Events so far (old restarts pruned). */
  events(now: number): TriggerEvent[]
  /** Forget everything (new model version). */
  reset(): void
  /** Stop listening. */
  dispose(): void
}

/** Subscribes to `supervisor` and records trigger events. */
export function recordTriggerEvents(
  supervisor: InferenceSupervisor,
  rule: RollbackRule = DEFAULT_ROLLBACK_RULE,
): TriggerRecorder {
  let events: TriggerEvent[] = []
  const onRestart = (e: { at: number }): void => {
    events.push({ kind: 'restart', at: e.at })
  }
  const onLoad = (e: { at: number }): void => {
    events.push({ kind: 'load-failure', at: e.at })
  }
  const onProbe = (e: { at: number }): void => {
    events.push({ kind: 'probe-failure', at: e.at })
  }
  const onOom = (e: { at: number }): void => {
    events.push({ kind: 'oom', at: e.at })
  }
  supervisor.on('restart', onRestart)
  supervisor.on('load-failure', onLoad)
  supervisor.on('probe-failure', onProbe)
  supervisor.on('oom', onOom)
  return {
    events(now) {
      events = pruneTriggerEvents(events, now, rule)
      return events.slice()
    },
    reset() {
      events = []
    },
    dispose() {
      supervisor.off('restart', onRestart)
      supervisor.off('load-failure', onLoad)
      supervisor.off('probe-failure', onProbe)
      supervisor.off('oom', onOom)
    },
  }
}
