import { LlmeshError } from '../errors.ts'

/** Why a swarm-key rotation cannot be applied or opened by this device. Stable. */
export type SwarmKeyCode =
  /** This device is not in the rotation's recipients (revoked, pending, or enrolled after it). */
  | 'ERR_NOT_RECIPIENT'
  /** The sealed copy does not open with this device's key (tampered, or sealed to another key). */
  | 'ERR_SEALED_KEY'
  /** The opened key does not match the rotation's `key_id`. */
  | 'ERR_KEY_MISMATCH'
  /** The rotation's epoch is not newer than the one in force. */
  | 'ERR_STALE_EPOCH'
  /** A malformed input (a swarm key file, a peer id that is not Ed25519, …). */
  | 'ERR_SWARM_KEY'

/** A swarm-key rotation refused by this device. */
export class SwarmKeyError extends LlmeshError {
  declare readonly code: SwarmKeyCode
  constructor(code: SwarmKeyCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'SwarmKeyError'
  }
}
