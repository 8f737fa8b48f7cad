/**
 * Defaults of the collective canary rollout. Every node must use the same values: changing one
 * changes which verdicts nodes accept, so treat these as protocol constants.
 */

/** Relative accuracy of latency sketches (1 %). Sketches with another alpha are not merged by gates. */
export const SKETCH_ALPHA = 0.01
/** Values at or below this (ms) go to a sketch's zero bucket. */
export const SKETCH_MIN_VALUE = 1e-6
/** Quantile the latency gate judges. */
export const LATENCY_QUANTILE = 0.95
/**
 * A latency or error-rate gate only judges (pass or fail) once the candidate served at least this
 * many requests in the window; fewer requests make that gate inconclusive (it holds the stage).
 */
export const GATE_MIN_REQUESTS = 10
/**
 * Absolute slack added to relative thresholds, so that a baseline of 0 errors (or ~0 ms) does not
 * turn one error into an infinite regression: allowed = baseline * (1 + pct/100) + floor.
 */
export const REGRESSION_FLOOR = { latency_p95_ms: 1, error_rate: 0.001 } as const
/** Most evidence references a verdict carries (the Verdict schema allows 4096; 2000 keeps it < 512 KiB). */
export const MAX_EVIDENCE = 2000
/** Hash input separator of cohort positions: `${model}@${version}:${deviceId}`. */
export const COHORT_HASH_SEPARATOR = ':'

/**
 * Devices enrolled with this tag (seeds: they serve chunks and sign, but run no model) never take
 * part in a rollout, whatever the policy says.
 */
export const SEED_TAG = 'seed'

/** Default `gates.vote_max_age_ms`: three default report intervals (30 s). */
export const VOTE_MAX_AGE_MS = 90_000

/** An abort's reason text names at most this many failed devices (all of them are in its evidence). */
export const FAILED_NAMED_IN_REASON = 5
