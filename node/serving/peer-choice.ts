/**
 * Which peers can serve a model, and in what order (pure; node/serving/forwarder.ts asks).
 *
 * A candidate is a connected peer, not this node, enrolled and not revoked, whose latest signed
 * health report is fresh (window ended within `maxAgeMs`) and claims the model active. A peer whose
 * active version of the model is a canary (its release still rolling before its last stage) is
 * left out unless `allowCanary`: forwarding must not widen a canary's blast radius by the back door.
 * Order (least loaded first): this node's forwards in flight to the peer plus the peak concurrency
 * the peer reported for that version, then its reported CPU, then the newest report, then peer id.
 * Peers already at `maxPerPeer` forwards in flight are left out.
 */
import type { HealthReport } from '../../protocols/schemas/index.ts'

/** What the choice reads. */
export interface PeerChoiceInput {
  model: string
  self: string
  /** Each device's latest health report. */
  reports: ReadonlyMap<string, HealthReport>
  connected: ReadonlySet<string>
  /** Enrolled and not revoked. */
  eligible: (peer: string) => boolean
  /** Whether that version of the model is a canary here (see the header). */
  isCanary: (model: string, version: string) => boolean
  allowCanary?: boolean
  /** This node's forwards in flight, per peer. */
  inflight: ReadonlyMap<string, number>
  maxPerPeer: number
  now: number
  maxAgeMs: number
}

/** One peer that can serve the model. */
export interface Candidate {
  peer: string
  version: string
  /** Lower is better. */
  load: number
  cpuPct: number
  reportedAt: number
}

/** The peers that can serve `input.model`, best first. */
export function choosePeers(input: PeerChoiceInput): Candidate[] {
  const out: Candidate[] = []
  for (const [peer, r] of input.reports) {
    if (peer === input.self || !input.connected.has(peer) || !input.eligible(peer)) continue
    if (input.now - r.window.end > input.maxAgeMs) continue
    const active = r.active.find((a) => a.model === input.model)
    if (active === undefined) continue
    if (!input.allowCanary && input.isCanary(active.model, active.version)) continue
    const mine = input.inflight.get(peer) ?? 0
    if (mine >= input.maxPerPeer) continue
    const stats = r.inference.find((s) => s.model === active.model && s.version === active.version)
    out.push({
      peer,
      version: active.version,
      load: mine + (stats?.concurrency_max ?? 0),
      cpuPct: r.hardware.cpu_pct,
      reportedAt: r.window.end,
    })
  }
  return out.sort(
    (a, b) =>
      a.load - b.load ||
      a.cpuPct - b.cpuPct ||
      b.reportedAt - a.reportedAt ||
      (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0),
  )
}

/** One model the node can serve through peers. */
export interface RemoteModel {
  model: string
  /** Versions the peers serve, sorted. */
  versions: string[]
  /** Peers that serve it. */
  peers: number
  /** Newest report naming it (ms). */
  since: number
}

/**
 * The models connected, eligible peers report active in fresh reports, minus `local` (the models
 * served here), sorted by name and at most `max`. Canary versions are listed too: what can serve
 * a request is decided per request by `choosePeers`.
 */
export function remoteModels(
  input: Pick<PeerChoiceInput, 'self' | 'reports' | 'connected' | 'eligible' | 'now' | 'maxAgeMs'>,
  local: ReadonlySet<string>,
  max: number,
): RemoteModel[] {
  const byModel = new Map<string, { versions: Set<string>; peers: number; since: number }>()
  for (const [peer, r] of input.reports) {
    if (peer === input.self || !input.connected.has(peer) || !input.eligible(peer)) continue
    if (input.now - r.window.end > input.maxAgeMs) continue
    for (const a of r.active) {
      if (local.has(a.model)) continue
      const m = byModel.get(a.model) ?? { versions: new Set<string>(), peers: 0, since: 0 }
      m.versions.add(a.version)
      m.peers++
      m.since = Math.max(m.since, r.window.end)
      byModel.set(a.model, m)
    }
  }
  return [...byModel.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, max)
    .map(([model, m]) => ({ model, versions: [...m.versions].sort(), peers: m.peers, since: m.since }))
}
