/**
 * A verdict with the signed reports it cites, for the dashboard's timeline (GET
 * /dashboard/verdicts/:digest): the verdict's own figures and, per evidence reference, whether
 * this node holds that report and, when it does, its window and the figures of the judged version
 * in it. Pure over the message store; the answer is bounded (VERDICT_EVIDENCE_MAX references, the
 * rest counted in `more`).
 */
import { quantile } from '../../protocols/rollout/sketch.ts'
import type { GateFigure, HealthReport, Verdict } from '../../protocols/schemas/index.ts'
import type { StoredMessage } from '../mesh/types.ts'

/** References listed at most per answer (a verdict may cite up to 4096). */
export const VERDICT_EVIDENCE_MAX = 256

/** A message digest as the API takes it. */
export const DIGEST_RE = /^[0-9a-f]{64}$/

/** One cited report. */
export interface EvidenceItem {
  device: string
  seq: number
  digest: string
  /** Whether this node holds the report (it may have been pruned or not reached it yet). */
  held: boolean
  window: { start: number; end: number } | null
  requests: number | null
  errors: number | null
  p95_ms: number | null
  restarts: number | null
  ooms: number | null
}

/** The JSON of GET /dashboard/verdicts/:digest. */
export interface VerdictEvidence {
  digest: string
  device: string
  model: string
  version: string
  stage: number
  outcome: 'promote' | 'abort'
  decided_at: number
  window: { start: number; end: number }
  figures: GateFigure[]
  evidence: EvidenceItem[]
  /** References not listed (past VERDICT_EVIDENCE_MAX). */
  more: number
}

/** The store as this module reads it. */
export interface EvidenceSource {
  get(digest: string): StoredMessage | undefined
}

/** The verdict `digest` with its evidence, or undefined when this node holds no such verdict. */
export function verdictEvidence(store: EvidenceSource, digest: string): VerdictEvidence | undefined {
  const m = store.get(digest)
  if (m === undefined || m.type !== 'Verdict') return undefined
  const v = m.message as Verdict
  const is = (x: { model: string; version: string }) => x.model === v.model && x.version === v.version
  const evidence = v.evidence.slice(0, VERDICT_EVIDENCE_MAX).map((ref): EvidenceItem => {
    const held = store.get(ref.digest)
    const r = held?.type === 'HealthReport' ? (held.message as HealthReport) : undefined
    const stats = r?.inference.find(is)
    const ev = r?.events.find(is)?.counts
    const p95 = stats && stats.latency_ms.count > 0 ? quantile(stats.latency_ms, 0.95) : null
    return {
      device: ref.device,
      seq: ref.seq,
      digest: ref.digest,
      held: r !== undefined,
      window: r ? { start: r.window.start, end: r.window.end } : null,
      requests: r ? (stats?.requests ?? 0) : null,
      errors: r ? (stats?.errors ?? 0) : null,
      p95_ms: p95 === null ? null : Math.round(p95 * 100) / 100,
      restarts: r ? (ev?.restarts ?? 0) : null,
      ooms: r ? (ev?.ooms ?? 0) : null,
    }
  })
  return {
    digest,
    device: v.device,
    model: v.model,
    version: v.version,
    stage: v.stage,
    outcome: v.outcome,
    decided_at: v.decided_at,
    window: v.window,
    figures: v.figures,
    evidence,
    more: v.evidence.length - evidence.length,
  }
}
