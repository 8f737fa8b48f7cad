/**
 * The node's /status JSON: this device, its peers, the releases it knows and their local state,
 * its models, every device the fleet's messages name (enrollments, revocations, health reports),
 * the mesh counters, then the sections other services register on the StatusRegistry.
 */
import type { HealthReport } from '../protocols/index.ts'
import type { DeviceStatus, NodeStatus } from './api/status.ts'
import type { DaemonContext } from './daemon-context.ts'
import type { MessageStore } from './mesh/message-store.ts'

/** Builds the /status JSON from the running daemon's context. */
export async function buildNodeStatus(
  ctx: Pick<DaemonContext, 'config' | 'identity' | 'store' | 'mesh' | 'status'>,
): Promise<NodeStatus> {
  const { store, mesh } = ctx
  const id = ctx.identity.peerId
  const own = store.enrollmentOf(id)
  const releases = store.releases().map((r) => ({
    model: r.message.model,
    version: r.message.version,
    seq: r.message.seq,
    state: ctx.status.releaseState(r.message.model, r.message.version) ?? 'known',
    digest: r.digest,
    created_at: r.message.created_at,
    expires_at: r.message.expires_at,
  }))
  const out: NodeStatus = {
    device: {
      id,
      tags: own?.tags ?? ctx.config.tags,
      enrolled: own !== undefined,
      role: ctx.config.role,
      fleet: ctx.config.fleet,
    },
    peers: mesh.peers(),
    releases,
    models: await ctx.status.models(),
    devices: deviceStatuses(store, id),
    mesh: {
      listen: mesh.multiaddrs(),
      messages: store.size,
      ingest: mesh.ingest.counters,
      gossip: mesh.state === 'running' ? mesh.gossip.counters : undefined,
      scores: mesh.state === 'running' ? mesh.scores() : undefined,
      antiEntropy: mesh.state === 'running' ? mesh.antiEntropy.counters : undefined,
    },
  }
  for (const [name, fn] of ctx.status.sections) out[name] = await fn()
  return out
}

/**
 * Every device the stored messages name (and this one), sorted by id, with its enrollment,
 * revocation and the active and staged versions from its latest health report.
 */
export function deviceStatuses(store: MessageStore, self: string): DeviceStatus[] {
  const ids = new Set<string>()
  for (const t of ['DeviceEnrollment', 'Revocation', 'HealthReport'] as const) {
    for (const m of store.list(t)) ids.add(m.message.device)
  }
  ids.add(self)
  return [...ids].sort().map((id) => {
    const enr = store.enrollmentOf(id)
    let last: { end: number; active: string[]; staged: string[] | null } | undefined
    for (const m of store.forDevice(id)) {
      if (m.type !== 'HealthReport') continue
      const h = m.message as HealthReport
      if (last === undefined || h.window.end > last.end) {
        last = {
          end: h.window.end,
          active: h.active.map((a) => `${a.model}@${a.version}`),
          staged: h.staged?.map((a) => `${a.model}@${a.version}`) ?? null,
        }
      }
    }
    return {
      id,
      tags: enr?.tags ?? [],
      enrolled: enr !== undefined,
      revoked: store.revocationOf(id) !== undefined,
      active: last?.active ?? [],
      staged: last?.staged ?? null,
      last_seen: last?.end ?? enr?.issued_at ?? null,
    }
  })
}
