/**
 * The agent update's own metric: `llmesh_agent_stuck{version}` is 1 while the fleet refuses
 * (aborted or conflicted) the agent version this device runs and nothing it holds may replace it
 * (`stuck`: node/agent-update/updater.ts), else 0. Read from the updater at each scrape. Alert
 * `LlmeshAgentStuck` (docs/alerts/llmesh.rules.yml). The version and rollback metrics are the
 * rollout's (node/rollout/metrics.ts: `llmesh_agent_info`, `llmesh_agent_rollbacks_total`).
 */
import { Gauge, type Registry } from 'prom-client'
import type { AgentInfo } from './types.ts'

/** Registers `llmesh_agent_stuck` on `registry` (the node's /metrics registry), read from `info`. */
export function registerAgentMetrics(
  registry: Registry,
  info: () => Pick<AgentInfo, 'version' | 'state'>,
  prefix = 'llmesh_',
): void {
  new Gauge({
    name: `${prefix}agent_stuck`,
    help: 'The fleet refuses (aborted or conflicted) the agent version this device runs and it has no version it may go back to (1), else 0',
    labelNames: ['version'],
    registers: [registry],
    collect() {
      const i = info()
      this.reset()
      this.set({ version: i.version }, i.state === 'stuck' ? 1 : 0)
    },
  })
}
