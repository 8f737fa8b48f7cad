/**
 * The node's /status JSON: this device, its peers, the releases it knows and their local state,
 * its models, every device of the fleet (the one fleet device view, node/fleet-view.ts),
 * the mesh counters, then the sections other services register on the StatusRegistry.
 */
import type { NodeStatus } from './api/status.ts'
import type { DaemonContext } from './daemon-context.ts'
import { storeFleetView } from './fleet-view.ts'

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
    devices: storeFleetView(store, { mesh, self: id, now: Date.now() }),
    mesh: {
      listen: mesh.multiaddrs(),
      messages: store.size,
      ingest: mesh.ingest.counters,
      gossip: mesh.state === 'running' ? mesh.gossip.counters : undefined,
      scores: mesh.state === 'running' ? mesh.scores() : undefined,
      /** Peers banned now for a gossip score under the graylist threshold, with when each ban ends. */
      banned: mesh.bans.active(),
      antiEntropy: mesh.state === 'running' ? mesh.antiEntropy.counters : undefined,
    },
  }
  for (const [name, fn] of ctx.status.sections) out[name] = await fn()
  return out
}
