/**
 * The order anti-entropy sends messages in (dependencies first), and the type ranks that lead
 * reconciliation keys (protocols/reconcile.ts: a key sorts by rank, then seq, then id). The frames
 * themselves and their limits are part of the protocol: protocols/anti-entropy.ts,
 * protocols/reconcile-frames.ts. The ranks are protocol too: changing one is a new protocol version.
 */
import type { StoredMessage } from './types.ts'

export { CountFrame, HaveFrame, Hello, WantFrame } from '../../protocols/anti-entropy.ts'
export { NextFrame, OfferFrame, QueryFrame, ReplyFrame } from '../../protocols/reconcile-frames.ts'

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

/** The rank of a message type (an unknown type: last). */
export function typeRank(type: string): number {
  return TYPE_ORDER[type] ?? 15
}

/** Dependencies first: trust roots, releases by seq, enrollments, revocations, commands, verdicts, reports. */
export function order(a: StoredMessage, b: StoredMessage): number {
  const t = typeRank(a.type) - typeRank(b.type)
  if (t !== 0) return t
  const sa = (a.message as { seq?: number }).seq ?? 0
  const sb = (b.message as { seq?: number }).seq ?? 0
  return sa - sb || a.receivedAt - b.receivedAt
}
