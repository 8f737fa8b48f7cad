/** Shared fixtures for installer tests: unsigned manifests built straight from a local store. */

import type { ChunkingOptions } from '../../node/store/chunker.ts'
import type { ModelStore } from '../../node/store/model-store.ts'
import { DEFAULT_POLICY } from '../../protocols/rollout/policy-defaults.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { buildReleaseManifest } from '../../seed/manifest.ts'

let seq = 0

/**
 * Appends `file` to the model's lineage in `store` and returns a manifest for it; `opts.chunking`:
 * explicit chunk parameters (default the lineage's: 32/128/256 KiB for a new one).
 */
export async function makeRelease(
  store: ModelStore,
  model: string,
  version: string,
  file: string,
  overrides: Partial<ReleaseManifest> = {},
  opts: { chunking?: ChunkingOptions } = {},
): Promise<ReleaseManifest> {
  const append = await store.appendFile(model, file, opts)
  const m = buildReleaseManifest({
    fleet: 'test-fleet',
    model,
    version,
    seq: ++seq,
    append,
    gguf: { quantization: 'F32', architecture: 'llama', contextLength: 256 },
    policy: DEFAULT_POLICY,
    minRamMb: 1,
    now: Date.now(),
  })
  return { ...m, ...overrides }
}
