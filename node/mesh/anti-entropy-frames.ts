/**
 * The order anti-entropy sends messages in (dependencies first). The frames themselves and their
 * limits are part of the protocol: protocols/anti-entropy.ts.
 */
import type { StoredMessage } from './types.ts'

export { CountFrame, HaveFrame, Hello, WantFrame } from '../../protocols/anti-entropy.ts'

const TYPE_ORDER: Record<string, number> = {
  TrustRoot: 0,
  ReleaseManifest: 1,
  DeviceEnrollment: 2,
  InviteClaim: 2,
  Revocation: 3,
  SwarmKeyRotation: 3,
  OperatorCommand: 4,
  Verdict: 5,
  HealthReport: 6,
  DeviceInvite: 7,
}

/** Dependencies first: trust roots, releases by seq, enrollments, revocations, commands, verdicts, reports. */
export function order(a: StoredMessage, b: StoredMessage): number {
  const t = TYPE_ORDER[a.type] - TYPE_ORDER[b.type]
  if (t !== 0) return t
  const sa = (a.message as { seq?: number }).seq ?? 0
  const sb = (b.message as { seq?: number }).seq ?? 0
  return sa - sb || a.receivedAt - b.receivedAt
}
