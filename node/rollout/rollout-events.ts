/**
 * What the rollout controller tells listeners (e.g. node/rollout/metrics.ts) when it acts on this
 * device, at the moment its plain `counters` go up. Only identifiers: model, version, trigger and
 * a reason from a short fixed list (never free text from the network).
 */
import type { LocalTrigger } from './local-triggers.ts'

/** One action of the activator on this device. */
export type RolloutEvent =
  /** A release was activated here (going forward). */
  | { kind: 'activation'; model: string; version: string }
  /** The device rolled `version` back by itself (load/probe failure, OOM, restart loop). */
  | { kind: 'local-rollback'; model: string; version: string; trigger: LocalTrigger }
  /** The device went back from `version` because the fleet aborted it (or it failed here before). */
  | { kind: 'fleet-rollback'; model: string; version: string }
  /** The device runs nothing for `model` any more; `reason` as shown in /status. */
  | { kind: 'deactivation'; model: string; version: string; reason: string }

/** Receives rollout events; must not throw (errors are swallowed by the emitter). */
export type RolloutEventListener = (e: RolloutEvent) => void
