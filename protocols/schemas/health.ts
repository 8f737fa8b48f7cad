import * as z from 'zod'
import { SCHEMA_VERSION } from '../constants.ts'
import { FleetId, ModelName, PeerIdString, SemverString, Sha256Hex, Tag, Timestamp } from './common.ts'
import { QualityFigure } from './probes.ts'

/**
 * A mergeable latency sketch (DDSketch-style log buckets with relative accuracy `alpha`): bucket i
 * counts values in (gamma^(i-1), gamma^i] with gamma = (1+alpha)/(1-alpha). Merging two sketches with
 * the same alpha adds bucket counts, so fleet percentiles come from merged sketches, never from
 * averaging per-device percentiles.
 */
export const Sketch = z.object({
  alpha: z.number().positive().max(0.5),
  count: z.number().int().nonnegative(),
  sum: z.number().nonnegative(),
  min: z.number().nonnegative(),
  max: z.number().nonnegative(),
  /** Values <= the smallest bucket (e.g. 0 ms). */
  zero: z.number().int().nonnegative(),
  /** Sparse [bucket index, count] pairs, sorted by index. */
  bins: z.array(z.tuple([z.number().int(), z.number().int().positive()])).max(4096),
})
export type Sketch = z.infer<typeof Sketch>

/** Inference figures of one model version over the report window. */
export const InferenceStats = z.object({
  model: ModelName,
  version: SemverString,
  requests: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  tokens_in: z.number().int().nonnegative(),
  tokens_out: z.number().int().nonnegative(),
  concurrency_max: z.number().int().nonnegative(),
  latency_ms: Sketch,
  ttft_ms: Sketch.optional(),
})
export type InferenceStats = z.infer<typeof InferenceStats>

/** Health events in the window. */
export const HealthEvents = z.object({
  restarts: z.number().int().nonnegative(),
  ooms: z.number().int().nonnegative(),
  load_failures: z.number().int().nonnegative(),
  probe_failures: z.number().int().nonnegative(),
  rollbacks: z.number().int().nonnegative(),
})
export type HealthEvents = z.infer<typeof HealthEvents>

/**
 * A device's signed summary of one window. Carries counts and sketches only: prompt and completion
 * text never leave the device (optional salted prompt hashes, salt kept on the device).
 */
export const HealthReport = z.object({
  type: z.literal('HealthReport'),
  v: z.literal(SCHEMA_VERSION),
  fleet: FleetId,
  /** Reporting device: must equal the signer. */
  device: PeerIdString,
  /** Per-device sequence number, strictly increasing across restarts. */
  seq: z.number().int().nonnegative(),
  window: z.object({ start: Timestamp, end: Timestamp }),
  meta: z.object({
    device_type: z.string().max(64),
    tags: z.array(Tag).max(32),
    runtime_version: z.string().max(64),
    uptime_s: z.number().nonnegative(),
  }),
  /** Active version per model on the device at the end of the window. */
  active: z.array(z.object({ model: ModelName, version: SemverString })).max(16),
  /**
   * Versions downloaded, verified and ready to activate on the device (prestaged), per model.
   * Optional: devices older than this field omit it. Lets the fleet see when a release has reached
   * every device, i.e. when the seed may go offline.
   */
  staged: z
    .array(z.object({ model: ModelName, version: SemverString }))
    .max(64)
    .optional(),
  hardware: z.object({
    cpu_pct: z.number().min(0).max(100),
    ram_pct: z.number().min(0).max(100),
    ram_total_mb: z.number().nonnegative(),
    temp_c: z.number().optional(),
  }),
  inference: z.array(InferenceStats).max(16),
  /** Health events per model version (the version they happened on). */
  events: z.array(z.object({ model: ModelName, version: SemverString, counts: HealthEvents })).max(16),
  /** Opt-in: salted sha256 of a sample of prompts; the salt never leaves the device. */
  prompt_hashes: z.array(Sha256Hex).max(64).optional(),
  /**
   * Quality probe figures per (model version, probe set), from the device's latest complete pass
   * of each set (quality gate, protocols/rollout/quality-gate.ts). Optional: older devices omit it.
   */
  quality: z.array(QualityFigure).max(16).optional(),
  /**
   * The agent (llmesh) version running, and the agent versions this device rolled back by itself
   * (`llmesh agent run`'s health window), newest last. Optional: older devices omit it.
   * `stuck`: the fleet refuses the running version (aborted or conflicted) and the device has no
   * version it may go back to; why (protocols/agent/fallback.ts). Optional, absent otherwise.
   */
  agent: z
    .object({
      version: SemverString,
      failures: z
        .array(z.object({ version: SemverString, reason: z.string().max(256), at: Timestamp }))
        .max(16)
        .optional(),
      stuck: z.string().max(512).optional(),
    })
    .optional(),
})
export type HealthReport = z.infer<typeof HealthReport>
