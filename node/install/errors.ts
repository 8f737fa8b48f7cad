import { LlmeshError } from '../../protocols/errors.ts'

/** Why a release is refused or an install step fails. Stable: /status and tests match on it. */
export type InstallErrorCode =
  | 'ERR_INCOMPATIBLE_ARCH'
  | 'ERR_INSUFFICIENT_RAM'
  | 'ERR_RUNTIME_RANGE'
  | 'ERR_INSUFFICIENT_DISK'
  | 'ERR_DIGEST_MISMATCH'
  | 'ERR_NOT_STAGED'
  | 'ERR_NO_PREVIOUS'
  | 'ERR_STOPPED'

/** A release cannot be installed or activated here. */
export class InstallError extends LlmeshError {
  declare readonly code: InstallErrorCode
  constructor(code: InstallErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'InstallError'
  }
}

/** A download cut short because the installer is stopping (the daemon shuts down): not a fault. */
export class InstallerStoppedError extends InstallError {
  constructor() {
    super('ERR_STOPPED', 'installer stopped')
    this.name = 'InstallerStoppedError'
  }
}
