/**
 * Why the seed refuses a publish before writing anything. Stable codes: the CLI exits non-zero
 * with them and tools match on them; the HTTP routes answer 409 for both (node/api/errors.ts).
 */
import { LlmeshError } from '../protocols/errors.ts'

/** Codes of publish refusals that are conflicts with what the fleet already holds. */
export type PublishConflictCode = 'ERR_VERSION_EXISTS' | 'ERR_DOWNGRADE'

/** A model@version is published once: this one already exists. */
export class VersionExistsError extends LlmeshError {
  declare readonly code: 'ERR_VERSION_EXISTS'
  constructor(model: string, version: string, seq: number) {
    super(
      'ERR_VERSION_EXISTS',
      `${model}@${version} is already published (seq ${seq}); a version is published once: publish the bytes as a new, higher version`,
    )
    this.name = 'VersionExistsError'
  }
}

/** The version is lower than the model's highest published version and no downgrade was allowed. */
export class DowngradeError extends LlmeshError {
  declare readonly code: 'ERR_DOWNGRADE'
  constructor(model: string, version: string, highest: string) {
    super(
      'ERR_DOWNGRADE',
      `${model}@${version} is lower than the published ${model}@${highest}; publish a higher version, or pass --allow-downgrade`,
    )
    this.name = 'DowngradeError'
  }
}
