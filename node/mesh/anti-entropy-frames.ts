/**
 * The frames of anti-entropy (anti-entropy.ts) and the order messages are sent in: each frame
 * JSON, length-prefixed, bounded (lists at most ANTI_ENTROPY_MAX_DIGESTS digests, counts at most
 * ANTI_ENTROPY_MAX_MESSAGES), parsed with zod before use.
 */
import { z } from 'zod'
import { CpuArch, Sha256Hex, Tag } from '../../protocols/schemas/index.ts'
import { ANTI_ENTROPY_MAX_DIGESTS, ANTI_ENTROPY_MAX_MESSAGES } from '../constants.ts'
import type { StoredMessage } from './types.ts'

/**
 * What a peer says about itself in each round: tags and capabilities as the device reports them
 * (authenticated only by the connection's peer id). The seed enrolls devices from it.
 */
export const Hello = z.object({
  role: z.enum(['node', 'seed']),
  tags: z.array(Tag).max(32),
  capabilities: z.object({
    arch: CpuArch,
    ram_mb: z.number().int().nonnegative(),
    accelerator: z.string().max(64).optional(),
    device_type: z.string().max(64),
  }),
})
export type Hello = z.infer<typeof Hello>

export const HaveFrame = z.object({ have: z.array(Sha256Hex).max(ANTI_ENTROPY_MAX_DIGESTS), hello: Hello.optional() })
export const WantFrame = z.object({
  want: z.array(Sha256Hex).max(ANTI_ENTROPY_MAX_DIGESTS),
  count: z.number().int().nonnegative().max(ANTI_ENTROPY_MAX_MESSAGES),
  hello: Hello.optional(),
})
export const CountFrame = z.object({ count: z.number().int().nonnegative().max(ANTI_ENTROPY_MAX_MESSAGES) })

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
