/** Errors of the configuration (node/config/resolve.ts). */
import { LlmeshError } from '../../protocols/errors.ts'

/**
 * A configuration value or file is refused: the message names where (`file:line`, the flag or the
 * variable) and what is wrong. Code `ERR_CONFIG`.
 */
export class ConfigError extends LlmeshError {
  /** `file:line`, `--flag` or `LLMESH_…`. */
  readonly where: string
  constructor(where: string, message: string) {
    super('ERR_CONFIG', `${where}: ${message}`)
    this.name = 'ConfigError'
    this.where = where
  }
}
