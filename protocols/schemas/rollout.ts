import * as z from 'zod'
import { SCHEMA_VERSION } from '../constants.ts'
import { FleetId, ModelName, PeerIdString, SemverString, Sha256Hex, Timestamp } from './common.ts'

/** What an operator can order for one release. */
export const CommandAction = z.enum(['pause', 'resume', 'abort', 'promote'])
export type CommandAction = z.infer<typeof CommandAction>

/** An operator's order for one release, signed with the operator key (Sigstore bundle). */
export const OperatorCommand = z.object({
  type: z.literal('OperatorCommand'),
  v: z.literal(SCHEMA_VERSION),
  fleet: FleetId,
  action: CommandAction,
  model: ModelName,
  version: SemverString,
  /** For `promote`: the stage to promote to (default: the next one); `full` skips to the last. */
  to_stage: z.string().max(32).optional(),
  /** Unique per command; pause/resume order by (issued_at, id). */
  id: z.string().regex(/^[0-9a-f]{16,64}$/),
  issued_at: Timestamp,
  reason: z.string().max(512).optional(),
})
export type OperatorCommand = z.infer<typeof OperatorCommand>

/** One piece of evidence: a signed health report, named by its message id (`messageId`). */
export const EvidenceRef = z.object({
  device: PeerIdString,
  seq: z.number().int().nonnegative(),
  digest: Sha256Hex,
})
export type EvidenceRef = z.infer<typeof EvidenceRef>

/** The gate figures a verdict was computed from, for people reading it. */
export const GateFigure = z.object({
  gate: z.string().max(64),
  value: z.number().nullable(),
  threshold: z.number().nullable(),
  baseline: z.number().nullable().optional(),
  pass: z.boolean(),
})
export type GateFigure = z.infer<typeof GateFigure>

/**
 * A device's claim that a stage's gates passed (promote) or failed (abort), carrying its evidence.
 * No node adopts it on trust: each re-evaluates the policy over the referenced signed reports.
 */
export const Verdict = z.object({
  type: z.literal('Verdict'),
  v: z.literal(SCHEMA_VERSION),
  fleet: FleetId,
  /** Issuing device: must equal the signer. */
  device: PeerIdString,
  model: ModelName,
  version: SemverString,
  /** Index of the stage judged. */
  stage: z.number().int().nonnegative(),
  outcome: z.enum(['promote', 'abort']),
  decided_at: Timestamp,
  window: z.object({ start: Timestamp, end: Timestamp }),
  evidence: z.array(EvidenceRef).max(4096),
  figures: z.array(GateFigure).max(32),
})
export type Verdict = z.infer<typeof Verdict>
