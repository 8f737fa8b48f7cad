/**
 * Deterministic, sticky, nested cohorts. A device's position in [0, 1) is the first 53 bits of the
 * first 8 bytes of sha256(`${model}@${version}:${deviceId}`): fixed per (release, device), the same
 * on every node. Stage k's cohort is built cumulatively:
 *   members(k) = members(k-1) ∪ {devices with one of stage k's tags} ∪ {position < percent/100},
 * then, while it holds fewer than min(min_devices, eligible devices), the eligible non-member with
 * the lowest position joins. A stage with `sites` adds only devices tagged `site:<s>` for one of
 * them (by tag, by percent, by the fill); members of earlier stages stay. Since positions are fixed, the fill is a prefix of the position order
 * and cohorts nest: a device in stage k is in every later stage. Devices with an excluded tag never
 * take part (their stage is null).
 */
import { sha256Hex } from '../encoding.ts'
import { SITE_TAG_PREFIX } from '../fleet-report.ts'
import type { ReleaseRef } from '../schemas/common.ts'
import type { RolloutPolicy } from '../schemas/policy.ts'
import { COHORT_HASH_SEPARATOR, SEED_TAG } from './constants.ts'

/** A device as cohort assignment sees it. */
export interface CohortDevice {
  id: string
  tags: readonly string[]
}

/** Device id → index of the first stage the device belongs to, or null when excluded. */
export type StageAssignment = Map<string, number | null>

/** The device's cohort position for a release, in [0, 1). */
export function cohortPosition(release: ReleaseRef, deviceId: string): number {
  const hex = sha256Hex(`${release.model}@${release.version}${COHORT_HASH_SEPARATOR}${deviceId}`).slice(0, 16)
  return Number(BigInt(`0x${hex}`) >> 11n) / 2 ** 53
}

/** Whether the policy excludes a device (any of its tags is in `exclude_tags`). */
export function isExcluded(policy: RolloutPolicy, tags: readonly string[]): boolean {
  return tags.some((t) => t === SEED_TAG || policy.exclude_tags.includes(t))
}

/** Whether a stage may add the device: it lists no sites, or the device has the tag of one of them. */
export function inStageSites(sites: readonly string[] | undefined, tags: readonly string[]): boolean {
  if (sites === undefined || sites.length === 0) return true
  return tags.some((t) => t.startsWith(SITE_TAG_PREFIX) && sites.includes(t.slice(SITE_TAG_PREFIX.length)))
}

/** Assigns every device the index of the first stage it belongs to (null: excluded). */
export function assignStages(
  policy: RolloutPolicy,
  release: ReleaseRef,
  devices: readonly CohortDevice[],
): StageAssignment {
  const out: StageAssignment = new Map()
  const eligible: Array<{ id: string; tags: readonly string[]; pos: number }> = []
  for (const d of devices) {
    if (out.has(d.id)) continue
    if (isExcluded(policy, d.tags)) out.set(d.id, null)
    else {
      out.set(d.id, null)
      eligible.push({ id: d.id, tags: d.tags, pos: cohortPosition(release, d.id) })
    }
  }
  // Position order, ties (astronomically unlikely) broken by id so every node agrees.
  eligible.sort((a, b) => a.pos - b.pos || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const stageOf = new Map<string, number>()
  policy.stages.forEach((stage, k) => {
    for (const d of eligible) {
      if (stageOf.has(d.id) || !inStageSites(stage.sites, d.tags)) continue
      if (d.pos < stage.percent / 100 || d.tags.some((t) => stage.tags.includes(t))) stageOf.set(d.id, k)
    }
    const want = Math.min(stage.min_devices, eligible.length)
    for (const d of eligible) {
      if (stageOf.size >= want) break
      if (!stageOf.has(d.id) && inStageSites(stage.sites, d.tags)) stageOf.set(d.id, k)
    }
  })
  for (const [id, k] of stageOf) out.set(id, k)
  return out
}

/** Whether the device is in the cohort of stage `stage` (or an earlier one). */
export function inCohort(assignment: StageAssignment, deviceId: string, stage: number): boolean {
  const k = assignment.get(deviceId)
  return k !== undefined && k !== null && k <= stage
}

/** Number of devices in the cohorts up to and including `stage`. */
export function cohortSize(assignment: StageAssignment, stage: number): number {
  let n = 0
  for (const k of assignment.values()) if (k !== null && k <= stage) n++
  return n
}
