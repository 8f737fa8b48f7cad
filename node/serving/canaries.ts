/**
 * Which versions forwarded requests avoid: a version is a canary while its release, as this
 * node's rollout controller sees it, is rolling or paused before its last stage, unless the
 * release's signed policy lets its canaries take forwarded traffic (`forward_to_canary`).
 * Pure: the caller passes the controller's releases and the manifests it holds.
 */

/** A release as the rollout controller shows it (the fields read here). */
export interface RolloutPhase {
  model: string
  version: string
  phase: string
}

/** A held manifest (the fields read here). */
export interface CanaryPolicyOf {
  model: string
  version: string
  policy: { forward_to_canary?: boolean }
}

/** `model@version` of every canary that forwarded requests must not reach. */
export function closedCanaries(releases: readonly RolloutPhase[], manifests: readonly CanaryPolicyOf[]): Set<string> {
  const open = new Set(
    manifests.filter((m) => m.policy.forward_to_canary === true).map((m) => `${m.model}@${m.version}`),
  )
  const out = new Set<string>()
  for (const r of releases) {
    const key = `${r.model}@${r.version}`
    if ((r.phase === 'rolling' || r.phase === 'paused') && !open.has(key)) out.add(key)
  }
  return out
}
