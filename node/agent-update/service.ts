/**
 * The agent update as a daemon service: an AgentUpdater over the daemon's message store and the
 * device's model store, its `/status` section (`agent`), and what health reports carry
 * (`agent: { version, failures }`). Composed by node/device-services.ts.
 */
import type { HealthReport } from '../../protocols/schemas/index.ts'
import type { DaemonContext } from '../daemon.ts'
import type { ModelStore } from '../store/model-store.ts'
import { AgentUpdater, type AgentUpdaterInit } from './updater.ts'

/** The service and the report part, for the composition. */
export function agentUpdateService(
  components: { ctx: Pick<DaemonContext, 'store' | 'logger' | 'status'>; store: () => ModelStore | undefined },
  init: AgentUpdaterInit,
): { updater: AgentUpdater; start(): Promise<void>; stop(): Promise<void>; report(): HealthReport['agent'] } {
  const { ctx } = components
  const updater = new AgentUpdater(
    { messages: ctx.store, store: components.store, logger: ctx.logger.child({ svc: 'agent-update' }) },
    init,
  )
  return {
    updater,
    start: async () => {
      await updater.start()
      ctx.status.addSection('agent', () => updater.info())
    },
    stop: () => updater.stop(),
    report: () => {
      const i = updater.info()
      return { version: i.version, ...(i.failures.length > 0 ? { failures: i.failures } : {}) }
    },
  }
}
