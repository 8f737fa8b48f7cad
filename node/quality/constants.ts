/**
 * Defaults of the quality prober (node/quality/prober.ts). The CPU budget of quality probes:
 * one probe (one prompt + ≤ 64 reference tokens, one evaluation pass) at a time, only when the
 * inference queue has been empty for QUALITY_IDLE_MS, at most one every QUALITY_PROBE_INTERVAL_MS,
 * and after a probe that took d ms the next waits at least d × (100 / QUALITY_CPU_SHARE_PCT − 1):
 * probes use at most QUALITY_CPU_SHARE_PCT % of the worker's time. A user request preempts a
 * running probe within one 32-token evaluation chunk (SCORE_CHUNK_TOKENS).
 */

/** Least time between two probe starts (ms). */
export const QUALITY_PROBE_INTERVAL_MS = 10_000
/** The queue must have been empty this long before a probe starts (ms). */
export const QUALITY_IDLE_MS = 2_000
/** Most of the worker's time probes may take, in percent. */
export const QUALITY_CPU_SHARE_PCT = 10
/** Probe sets run on one version: its own release's and the newest newer releases' (baselines). */
export const QUALITY_MAX_SETS = 3
/** Most (version, probe set) figures kept and reported (HealthReport.quality holds 16). */
export const QUALITY_MAX_FIGURES = 16
