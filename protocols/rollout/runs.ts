/**
 * What a health report says about one release, for model releases and agent releases alike, so
 * the gates (gates.ts) judge `llmesh-agent@<v>` with the very rules they apply to `model@version`.
 *
 * How it works:
 * - A model release runs on a device when the report lists it in `active`, and its inference
 *   figures are the report's `inference` entry for that model version.
 * - The agent release (`model` = `llmesh-agent`, protocols/agent/constants.ts) runs on a device
 *   when the report's `agent.version` is its version, and its inference figures are every entry
 *   of a report made while that agent ran: the agent serves all the device's models, so its
 *   latency and error rate are theirs (compared with devices on the previous agent version).
 * - Health events need nothing here: a rolled-back agent version is a `rollbacks` event of
 *   `llmesh-agent@<v>` (node/agent-update/), keyed like a model's.
 * Pure.
 */
import { AGENT_LINEAGE } from '../agent/constants.ts'
import type { ReleaseRef } from '../schemas/common.ts'
import type { HealthReport, InferenceStats } from '../schemas/health.ts'

/** Whether a release reference names the agent (llmesh itself) rather than a model. */
export function isAgentRelease(rel: Pick<ReleaseRef, 'model'>): boolean {
  return rel.model === AGENT_LINEAGE
}

/** Whether the report's device ran `rel` when it made the report. */
export function runsRelease(report: Pick<HealthReport, 'active' | 'agent'>, rel: ReleaseRef): boolean {
  if (isAgentRelease(rel)) return report.agent?.version === rel.version
  return report.active.some((a) => a.model === rel.model && a.version === rel.version)
}

/** The report's inference figures that count for `rel` (none when it holds none). */
export function inferenceFor(report: Pick<HealthReport, 'inference' | 'agent'>, rel: ReleaseRef): InferenceStats[] {
  if (isAgentRelease(rel)) return report.agent?.version === rel.version ? report.inference : []
  return report.inference.filter((s) => s.model === rel.model && s.version === rel.version)
}
