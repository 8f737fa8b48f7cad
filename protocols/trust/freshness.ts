/**
 * Freshness checks (TUF's freeze protection): expired messages are refused, and every message
 * dated further in the future than the allowed clock skew is refused (`ERR_FUTURE`). `now` is
 * passed in; protocols/ never reads the clock. For device messages the date is the latest time
 * they carry (a report's window, a verdict's decision and window): the sender chooses them, and
 * retention keys on them, so without this bound a report dated a century ahead would never be
 * pruned. A device whose clock runs ahead by more than the skew is refused until time catches up
 * (its messages are not lost: they are refused, not remembered, and offered again later).
 */
import { CLOCK_SKEW_MS } from '../constants.ts'
import { VerificationError } from '../errors.ts'
import type { DeviceMessage, OperatorMessage } from '../schemas/index.ts'

/** Expiry time of a message, if it has one. */
export function expiresAt(msg: OperatorMessage | DeviceMessage): number | undefined {
  switch (msg.type) {
    case 'ReleaseManifest':
    case 'AgentRelease':
    case 'DeviceEnrollment':
    case 'TrustRoot':
    case 'DeviceInvite':
      return msg.expires_at
    default:
      return undefined
  }
}

/** Issue time of an operator message. */
export function issuedAt(msg: OperatorMessage): number {
  switch (msg.type) {
    case 'ReleaseManifest':
    case 'AgentRelease':
    case 'TrustRoot':
      return msg.created_at
    default:
      return msg.issued_at
  }
}

/** The latest time a device message claims (what the future bound applies to). */
export function deviceDatedAt(msg: DeviceMessage): number {
  if (msg.type === 'HealthReport') return Math.max(msg.window.start, msg.window.end)
  if (msg.type === 'InviteClaim') return msg.claimed_at
  return Math.max(msg.decided_at, msg.window.start, msg.window.end)
}

/** Returns an ERR_EXPIRED / ERR_FUTURE error, or undefined if the message is fresh at `now`. */
export function checkFreshness(
  msg: OperatorMessage | DeviceMessage,
  now: number,
  skewMs = CLOCK_SKEW_MS,
): VerificationError | undefined {
  const exp = expiresAt(msg)
  if (exp !== undefined && exp <= now) {
    return new VerificationError('ERR_EXPIRED', `${msg.type} expired at ${dateText(exp)}`)
  }
  const at =
    msg.type === 'HealthReport' || msg.type === 'Verdict' || msg.type === 'InviteClaim'
      ? deviceDatedAt(msg)
      : issuedAt(msg)
  if (at > now + skewMs) {
    return new VerificationError('ERR_FUTURE', `${msg.type} is dated in the future (${dateText(at)})`)
  }
  return undefined
}

/** ISO text of a time, or the number when it is beyond what a Date holds (never throws). */
function dateText(ms: number): string {
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString()
}
