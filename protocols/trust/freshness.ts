/**
 * Freshness checks (TUF's freeze protection): expired messages are refused, and operator
 * messages dated further in the future than the allowed clock skew are refused. `now` is passed
 * in; protocols/ never reads the clock. Device messages are not checked against the future, as
 * edge devices' clocks drift; their windows are judged by the rollout logic.
 */
import { CLOCK_SKEW_MS } from '../constants.ts'
import { VerificationError } from '../errors.ts'
import type { DeviceMessage, OperatorMessage } from '../schemas/index.ts'

/** Expiry time of a message, if it has one. */
export function expiresAt(msg: OperatorMessage | DeviceMessage): number | undefined {
  switch (msg.type) {
    case 'ReleaseManifest':
    case 'DeviceEnrollment':
    case 'TrustRoot':
      return msg.expires_at
    default:
      return undefined
  }
}

/** Issue time of an operator message. */
export function issuedAt(msg: OperatorMessage): number {
  switch (msg.type) {
    case 'ReleaseManifest':
    case 'TrustRoot':
      return msg.created_at
    default:
      return msg.issued_at
  }
}

/** Returns an ERR_EXPIRED / ERR_FUTURE error, or undefined if the message is fresh at `now`. */
export function checkFreshness(
  msg: OperatorMessage | DeviceMessage,
  now: number,
  skewMs = CLOCK_SKEW_MS,
): VerificationError | undefined {
  const exp = expiresAt(msg)
  if (exp !== undefined && exp <= now) {
    return new VerificationError('ERR_EXPIRED', `${msg.type} expired at ${new Date(exp).toISOString()}`)
  }
  if (msg.type !== 'HealthReport' && msg.type !== 'Verdict') {
    const at = issuedAt(msg)
    if (at > now + skewMs) {
      return new VerificationError('ERR_FUTURE', `${msg.type} is dated in the future (${new Date(at).toISOString()})`)
    }
  }
  return undefined
}
