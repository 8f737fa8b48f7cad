/**
 * Types shared by the stage evaluation (gates.ts) and the failure budget (failures.ts), in their
 * own module so neither imports the other back.
 */
import type { HealthReport } from '../schemas/index.ts'

/** A health report whose signature was verified, with the digest of its wire envelope. */
export interface VerifiedReport {
  report: HealthReport
  digest: string
}

/** Failed devices of the stage's cohort, with their reasons, and how many the budget tolerates. */
export interface StageFailures {
  cohort: number
  budget: number
  failed: Array<{ device: string; reasons: string[] }>
}
