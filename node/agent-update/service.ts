/**
 * The agent update as a daemon service: an AgentUpdater over the daemon's message store and the
 * device's model store, its `/status` section (`agent`), and what health reports carry
 * (`agent: { version, failures, stuck }`, and each newly rolled-back version once as a `rollbacks` event of
 * `llmesh-agent@<version>`, the form the gates read for model releases). The version to take comes
 * from the rollout controller (its stages admit it). `llmesh_agent_stuck{version}` is 1 while the
 * fleet refuses the running version and nothing held may replace it (./metrics.ts). Composed by
 * node/device-services.ts.
 */
import type { Registry } from 'prom-client'
import { AGENT_LINEAGE } from '../../protocols/agent/constants.ts'
import type { HealthReport } from '../../protocols/schemas/index.ts'
import type { DaemonContext } from '../daemon.ts'
import type { ModelStore } from '../store/model-store.ts'
import { registerAgentMetrics } from './metrics.ts'
import { type AgentRollout, AgentUpdater, type AgentUpdaterInit } from './updater.ts'

/** The service and the report part, for the composition. */
export function agentUpdateService(
  components: {
    ctx: Pick<DaemonContext, 'store' | 'logger' | 'status'>
    store: () => ModelStore | undefined
    /** Restarts the replication sessions when a package fetch stalls (the distribution's replicator). */
    recycle?: (reason: string) => void
    /** The rollout controller (which agent version the device's stage admits), once composed. */
    rollout: () => AgentRollout | undefined
    /** The health reporter's `record` (rolled-back versions become `rollbacks` events). */
    record?: (ref: { model: string; version: string }, kind: 'rollbacks') => void
    /** Where `llmesh_agent_stuck` is registered (the node's /metrics registry), if any. */
    registry?: Registry
  },
  init: AgentUpdaterInit,
): { updater: AgentUpdater; start(): Promise<void>; stop(): Promise<void>; report(): HealthReport['agent'] } {
  const { ctx } = components
  const updater = new AgentUpdater(
    {
      messages: ctx.store,
      store: components.store,
      recycle: components.recycle,
      rollout: components.rollout,
      logger: ctx.logger.child({ svc: 'agent-update' }),
      recordRollback: (version) => components.record?.({ model: AGENT_LINEAGE, version }, 'rollbacks'),
    },
    init,
  )
  if (components.registry !== undefined) registerAgentMetrics(components.registry, () => updater.info())
  return {
    updater,
    start: async () => {
      await updater.start()
      ctx.status.addSection('agent', () => updater.info())
    },
    stop: () => updater.stop(),
    report: () => {
      const i = updater.info()
      return {
        version: i.version,
        ...(i.failures.length > 0 ? { failures: i.failures } : {}),
        ...(i.state === 'stuck' && i.reason !== undefined ? { stuck: i.reason.slice(0, 512) } : {}),
      }
    },
  }
}
