/**
 * Prometheus metrics of fleet membership on the mesh, on their own registry (served by GET
 * /metrics beside the others, node/device-services.ts), read at scrape time:
 * - `llmesh_swarm_key_rotations_applied_total`: join-secret rotations this node switched to;
 * - `llmesh_swarm_key_rotations_refused_total{code}`: rotations it could not apply
 *   (`ERR_NOT_RECIPIENT`: not sealed to it, `ERR_SEALED_KEY`, `ERR_KEY_MISMATCH`, `ERR_SWARM_KEY`,
 *   `ERR_STATE_WRITE`);
 * - `llmesh_swarm_key_epoch`: the epoch this node holds;
 * - `llmesh_mesh_revoked_refusals_total`: connections refused or closed because the peer is revoked.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import type { RevocationGateCounts } from './revocation-gate.ts'

/** Rotation codes exported as they are; any other is `OTHER`. */
const CODES = ['ERR_NOT_RECIPIENT', 'ERR_SEALED_KEY', 'ERR_KEY_MISMATCH', 'ERR_SWARM_KEY', 'ERR_STATE_WRITE']

/** What the metrics read. */
export interface MembershipMetricsSource {
  gate: RevocationGateCounts
  /** The swarm-key service's /status section (absent until it runs). */
  swarmKey(): { epoch: number; applied: number; refused: Record<string, number> } | undefined
}

/** The membership metrics on a registry of their own. */
export function createMembershipMetrics(src: MembershipMetricsSource, prefix = 'llmesh_'): { registry: Registry } {
  const registry = new Registry()
  new Counter({
    name: `${prefix}swarm_key_rotations_applied_total`,
    help: 'Join-secret (swarm key) rotations this node switched to',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(src.swarmKey()?.applied ?? 0)
    },
  })
  new Counter({
    name: `${prefix}swarm_key_rotations_refused_total`,
    help: 'Join-secret rotations this node could not apply (ERR_NOT_RECIPIENT: not sealed to it)',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [c, n] of Object.entries(src.swarmKey()?.refused ?? {})) {
        this.inc({ code: CODES.includes(c) ? c : 'OTHER' }, n)
      }
    },
  })
  new Gauge({
    name: `${prefix}swarm_key_epoch`,
    help: 'Epoch of the join secret this node holds (0: the fleet directory’s, never rotated)',
    registers: [registry],
    collect() {
      this.set(src.swarmKey()?.epoch ?? 0)
    },
  })
  new Counter({
    name: `${prefix}mesh_revoked_refusals_total`,
    help: 'Connections refused or closed because the peer is revoked by the fleet operator',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(src.gate.refused)
    },
  })
  return { registry }
}
