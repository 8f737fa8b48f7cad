import { LlmeshError } from '../../protocols/errors.ts'

/** Codes of fleet directory errors. */
export type FleetErrorCode = 'ERR_FLEET_EXISTS' | 'ERR_FLEET_MISSING' | 'ERR_FLEET_INVALID'

/** A fleet directory is missing, invalid, or already exists. */
export class FleetError extends LlmeshError {
  declare readonly code: FleetErrorCode
  constructor(code: FleetErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'FleetError'
  }
}
