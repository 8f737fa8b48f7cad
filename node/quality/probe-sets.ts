/**
 * Which probe sets a device runs on the version it serves: the version's own release's set, and
 * the sets of newer releases of the same model (run on this version, their figures are the
 * baseline of those releases' quality gate), newest first, at most QUALITY_MAX_SETS. Only
 * verified manifests are in the store, and the verifier checked that each inline set matches its
 * `provenance.validation_dataset.digest`.
 */
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { QUALITY_MAX_SETS } from './constants.ts'
import type { DigestedProbeSet } from './prober.ts'

/** The probe sets to run on `model@version`, given the manifests held. */
export function probeSetsFor(
  manifests: readonly ReleaseManifest[],
  model: string,
  version: string,
): DigestedProbeSet[] {
  const mine = manifests.filter((m) => m.model === model)
  const own = mine.find((m) => m.version === version)
  const floor = own?.seq ?? Number.POSITIVE_INFINITY
  const seen = new Set<string>()
  const out: DigestedProbeSet[] = []
  for (const m of mine.filter((x) => x.seq >= floor).sort((a, b) => b.seq - a.seq)) {
    const digest = m.provenance.validation_dataset?.digest
    if (m.probes === undefined || digest === undefined || seen.has(digest)) continue
    seen.add(digest)
    out.push({ digest, set: m.probes })
    if (out.length >= QUALITY_MAX_SETS) break
  }
  return out
}
