import * as z from 'zod'
import { SiteName } from '../fleet-report.ts'
import { Tag } from './common.ts'

/**
 * One rollout stage. A device is in the stage when it has one of `tags` (pilot stages), or when its
 * cohort position (a hash of release and device id, in [0, 100)) is below `percent`. Cohorts nest:
 * a device in an earlier stage stays in every later one. `sites` limits what the stage adds to
 * devices enrolled with the tag `site:<name>` of one of those sites.
 */
export const RolloutStage = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/),
  /** Share of eligible devices, 0–100. Pilot stages select by tag and may leave it 0. */
  percent: z.number().min(0).max(100).default(0),
  /** The stage holds at least this many devices, even in tiny fleets (if that many are eligible). */
  min_devices: z.number().int().nonnegative().default(0),
  /** Devices with any of these tags are in this stage (and every later one). */
  tags: z.array(Tag).max(32).default([]),
  /**
   * Only devices whose enrollment tags name one of these sites (`site:<name>`) join at this stage:
   * by tag, by `percent` (then a share of those sites' devices) and by the `min_devices` fill.
   * Devices of earlier stages stay in. Absent or empty: every site (and devices with no site).
   */
  sites: z.array(SiteName).max(32).optional(),
  /** Observation window in ms before the stage's gates can pass. */
  window_ms: z.number().int().nonnegative().default(0),
})
export type RolloutStage = z.infer<typeof RolloutStage>

/** A gate on one metric: an absolute ceiling and/or a ceiling relative to the previous version. */
export const MetricGate = z.object({
  max: z.number().nonnegative().optional(),
  /** Maximum regression against devices still on the previous version over the same window, in percent. */
  max_regression_pct: z.number().nonnegative().optional(),
})
export type MetricGate = z.infer<typeof MetricGate>

/**
 * How many devices of a stage's cohort may fail (load or probe failure, local rollback, more OOMs
 * or restarts than their gates allow) before the stage aborts: it aborts when the failed devices
 * number more than max(max_devices, ⌊max_pct × cohort size / 100⌋). A failed device rolls back
 * locally whatever the budget says. Absent: no failure is tolerated (the meaning of policies
 * written before the field existed). Defaults and their reasons: rollout/policy-defaults.ts.
 */
export const FailureBudget = z.object({
  /** Failed devices always tolerated. */
  max_devices: z.number().int().nonnegative().max(1_000_000).default(0),
  /** Failed devices tolerated as a percentage of the cohort (rounded down). */
  max_pct: z.number().min(0).max(100).default(0),
})
export type FailureBudget = z.infer<typeof FailureBudget>

/**
 * The quality gate (probe figures in health reports, protocols/rollout/quality-gate.ts): the
 * release's probe set run on the candidate by the cohort's devices. Needs `probes` in the manifest.
 */
export const QualityGate = z.object({
  /** Least share (0–1) of reference tokens that must be the candidate's greedy next token. */
  min_agreement: z.number().min(0).max(1).optional(),
  /**
   * Largest rise of the reference outputs' perplexity under the candidate over the previous
   * version's (the same probe set run by devices still on it), in percent.
   */
  max_perplexity_regression_pct: z.number().nonnegative().optional(),
  /** Devices whose complete pass is needed before the gate judges (fewer: inconclusive, hold). */
  min_devices: z.number().int().positive().max(1_000_000).default(1),
})
export type QualityGate = z.infer<typeof QualityGate>

/** The gates every stage must pass before promotion. */
export const Gates = z.object({
  latency_p95_ms: MetricGate.optional(),
  error_rate: MetricGate.optional(),
  /** At most `max` restarts per device within any `per_ms`. */
  restarts: z.object({ max: z.number().int().nonnegative(), per_ms: z.number().int().positive() }).optional(),
  /** At most `max` OOM kills per device in the window. */
  ooms: z.object({ max: z.number().int().nonnegative() }).optional(),
  /** Failed devices a stage tolerates (absent: none). */
  failures: FailureBudget.optional(),
  /** Output quality on the release's probes (absent: not judged). */
  quality: QualityGate.optional(),
  /** Minimum number of distinct enrolled devices reporting in the window. */
  min_reports: z.number().int().nonnegative().default(1),
  /**
   * A device votes for promotion only if its latest report ended at most this long before the
   * evaluation: a partitioned minority holding stale reports of the majority's devices cannot
   * make up a quorum. Keep it a few report intervals (default VOTE_MAX_AGE_MS in rollout/constants.ts).
   */
  vote_max_age_ms: z.number().int().positive().optional(),
})
export type Gates = z.infer<typeof Gates>

/** The rollout policy carried, signed, inside a release manifest. */
export const RolloutPolicy = z.object({
  stages: z.array(RolloutStage).min(1).max(16),
  gates: Gates,
  /** Devices with any of these tags never take part (for example `low-ram`). */
  exclude_tags: z.array(Tag).max(32).default([]),
  /** Inconclusive data (too few reports, no baseline where one is required) hold the stage. */
  inconclusive: z.literal('hold').default('hold'),
  /** Devices download as soon as the release is announced and activate when their stage comes. */
  prestage: z.boolean().default(true),
  /**
   * Whether devices running this release while it is still a canary (rolling or paused before its
   * last stage) take requests other devices forward to them (federated serving). Off by default:
   * forwarding must not widen a canary's blast radius by the back door. Nodes that predate the
   * field ignore it and forward to no canary.
   */
  forward_to_canary: z.boolean().optional(),
})
export type RolloutPolicy = z.infer<typeof RolloutPolicy>
