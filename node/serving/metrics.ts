/**
 * Prometheus metrics of federated serving, on their own registry (served by GET /metrics beside
 * the others, node/device-services.ts):
 * - `llmesh_forwarded_requests_total{direction,outcome}`: `direction` `out` (this node forwarded a
 *   request it could not serve) or `in` (it served one for a peer); `outcome` one of
 *   FORWARD_OUTCOMES. Counts only: no prompt, model output or peer id.
 * - `llmesh_forward_failovers_total`: peers skipped for the next one (unreachable, broken head, or
 *   429/503) while forwarding a request.
 */
import { Counter, Registry } from 'prom-client'

/**
 * Outcomes: `ok` (the peer's 2xx answer relayed in full), `upstream_error` (the peer answered an
 * error status, relayed), `failed` (dial, stream, frames or timeout), `refused` (server side: the
 * peer is not enrolled, over its streams, or sent a hostile frame), `no_peer` (no peer serves it).
 */
export const FORWARD_OUTCOMES = ['ok', 'upstream_error', 'failed', 'refused', 'no_peer'] as const
/** One of FORWARD_OUTCOMES. */
export type ForwardOutcome = (typeof FORWARD_OUTCOMES)[number]

/** The counters, with their registry. */
export interface ForwardMetrics {
  registry: Registry
  count(direction: 'in' | 'out', outcome: ForwardOutcome): void
  failover(): void
}

/** Creates the metrics on a registry of their own. */
export function createForwardMetrics(prefix = 'llmesh_'): ForwardMetrics {
  const registry = new Registry()
  const total = new Counter({
    name: `${prefix}forwarded_requests_total`,
    help: 'OpenAI requests forwarded to a peer (out) or served for a peer (in), by outcome',
    labelNames: ['direction', 'outcome'],
    registers: [registry],
  })
  for (const direction of ['in', 'out']) for (const outcome of FORWARD_OUTCOMES) total.inc({ direction, outcome }, 0)
  const failovers = new Counter({
    name: `${prefix}forward_failovers_total`,
    help: 'Peers skipped for the next one while forwarding a request (unreachable, broken head, 429/503)',
    registers: [registry],
  })
  return {
    registry,
    count: (direction, outcome) => total.inc({ direction, outcome }),
    failover: () => failovers.inc(),
  }
}
