/**
 * The quality gate (pure): output quality of the candidate on the release's probe set.
 *
 * How it works:
 * - Devices run the release's probes when idle and sign their figures in health reports
 *   (`quality`: per model version and probe set digest, token sums of their latest complete pass).
 * - Candidate: every cohort device with a counted report carrying figures for (release, the
 *   manifest's probe set); a device counts once, with its latest such report. Figures add up:
 *   agreement = Σagreed / Σtokens, perplexity = exp(Σnll / Σtokens).
 * - Baseline: devices on the previous version whose reports carry figures for (previous, the same
 *   probe set): devices run a newer release's probes on the version they run, so the reference
 *   outputs are judged under both versions.
 * - `min_agreement`: candidate agreement ≥ it. `max_perplexity_regression_pct`: candidate
 *   perplexity ≤ baseline × (1 + pct/100); judged only with a baseline, and inconclusive without
 *   one while eligible devices remain outside the cohort (as the other relative gates).
 * - Fewer candidate devices with figures than min(min_devices, cohort), or no probe set in the
 *   manifest: inconclusive (hold). A failure's evidence is the reports carrying the figures.
 */
import type { ReleaseRef } from '../schemas/common.ts'
import type { QualityGate } from '../schemas/policy.ts'
import type { QualityFigure } from '../schemas/probes.ts'
import type { GateFigure } from '../schemas/rollout.ts'
import type { VerifiedReport } from './report-types.ts'

/** A device's counted reports (sorted by seq). */
export interface QualityDevice {
  id: string
  reports: readonly VerifiedReport[]
}

/** Inputs of the quality gate. */
export interface QualityInput {
  gate: QualityGate
  /** `provenance.validation_dataset.digest` of the manifest (undefined: it carries no probe set). */
  probeSet: string | undefined
  release: ReleaseRef
  previous: ReleaseRef | null
  /** Cohort devices with reports in the window. */
  candidates: readonly QualityDevice[]
  /** Devices on the previous version with reports in the window. */
  baseline: readonly QualityDevice[]
  /** Cohort size of the stage (bounds min_devices). */
  cohort: number
  /** Eligible devices remain outside the cohort (a relative gate then needs its baseline). */
  needBaseline: boolean
}

/** What the gate found. */
export interface QualityJudgement {
  figures: GateFigure[]
  reasons: string[]
  /** Reports proving a failure (empty unless failed). */
  failed: VerifiedReport[]
  inconclusive: boolean
  /** Reports whose figures were used (evidence of a pass). */
  used: VerifiedReport[]
}

/** Summed figures of several devices. */
export interface QualitySums {
  devices: number
  tokens: number
  agreed: number
  nll: number
  from: VerifiedReport[]
}

/** Agreement (0–1) and perplexity of summed figures (null without tokens). */
export function qualityOf(s: Pick<QualitySums, 'tokens' | 'agreed' | 'nll'>): {
  agreement: number | null
  perplexity: number | null
} {
  if (s.tokens === 0) return { agreement: null, perplexity: null }
  return { agreement: s.agreed / s.tokens, perplexity: Math.exp(s.nll / s.tokens) }
}

const figureOf = (r: VerifiedReport, rel: ReleaseRef, set: string): QualityFigure | undefined =>
  r.report.quality?.find((q) => q.model === rel.model && q.version === rel.version && q.probe_set === set)

/** Each device's latest figures for (rel, set), summed. */
export function sumFigures(devices: readonly QualityDevice[], rel: ReleaseRef, set: string): QualitySums {
  const out: QualitySums = { devices: 0, tokens: 0, agreed: 0, nll: 0, from: [] }
  for (const d of devices) {
    let best: { r: VerifiedReport; q: QualityFigure } | undefined
    for (const r of d.reports) {
      const q = figureOf(r, rel, set)
      if (q !== undefined && q.tokens > 0 && (best === undefined || r.report.seq > best.r.report.seq)) best = { r, q }
    }
    if (best === undefined) continue
    out.devices++
    out.tokens += best.q.tokens
    out.agreed += best.q.agreed
    out.nll += best.q.nll
    out.from.push(best.r)
  }
  return out
}

const round = (x: number | null) => (x === null ? null : Math.round(x * 1e6) / 1e6)

/** Judges the quality gate. Pure and deterministic. */
export function judgeQuality(input: QualityInput): QualityJudgement {
  const { gate, probeSet, release, previous } = input
  const out: QualityJudgement = { figures: [], reasons: [], failed: [], inconclusive: false, used: [] }
  const required = Math.min(gate.min_devices, input.cohort)
  if (probeSet === undefined) {
    out.inconclusive = true
    out.reasons.push('quality: the release carries no probe set')
    out.figures.push({ gate: 'quality.devices', value: 0, threshold: required, pass: false })
    return out
  }
  const cand = sumFigures(input.candidates, release, probeSet)
  const enough = cand.devices >= required && cand.devices > 0
  out.figures.push({ gate: 'quality.devices', value: cand.devices, threshold: required, pass: enough })
  if (!enough) {
    out.inconclusive = true
    out.reasons.push(`quality: ${cand.devices} of ${required} devices reported probe figures`)
    return out
  }
  out.used.push(...cand.from)
  const c = qualityOf(cand)
  out.figures.push({ gate: 'quality.tokens', value: cand.tokens, threshold: null, pass: true })
  if (gate.min_agreement !== undefined) {
    const pass = c.agreement! >= gate.min_agreement
    out.figures.push({ gate: 'quality.agreement', value: round(c.agreement), threshold: gate.min_agreement, pass })
    if (!pass) {
      out.reasons.push(`quality.agreement ${round(c.agreement)} < ${gate.min_agreement} (${cand.tokens} probe tokens)`)
      out.failed.push(...cand.from)
    }
  }
  if (gate.max_perplexity_regression_pct !== undefined && previous !== null) {
    const base = sumFigures(input.baseline, previous, probeSet)
    const b = qualityOf(base)
    if (b.perplexity === null) {
      if (input.needBaseline) {
        out.inconclusive = true
        out.reasons.push('quality: no device on the previous version reported figures for this probe set')
        out.figures.push({
          gate: 'quality.perplexity.regression',
          value: round(c.perplexity),
          threshold: null,
          baseline: null,
          pass: false,
        })
      }
      return out
    }
    out.used.push(...base.from)
    const threshold = b.perplexity * (1 + gate.max_perplexity_regression_pct / 100)
    const pass = c.perplexity! <= threshold
    out.figures.push({
      gate: 'quality.perplexity.regression',
      value: round(c.perplexity),
      threshold: round(threshold),
      baseline: round(b.perplexity),
      pass,
    })
    if (!pass) {
      out.reasons.push(
        `quality.perplexity ${round(c.perplexity)} > ${round(threshold)} (baseline ${round(b.perplexity)})`,
      )
      out.failed.push(...cand.from, ...base.from)
    }
  }
  return out
}
