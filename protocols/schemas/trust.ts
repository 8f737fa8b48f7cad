import * as z from 'zod'
import { SCHEMA_VERSION } from '../constants.ts'
import { FleetId, Timestamp } from './common.ts'

/** An operator public key. `keyid` is the hex sha256 of the SPKI DER. */
export const OperatorKey = z.object({
  keyid: z.string().regex(/^[0-9a-f]{64}$/),
  /** Key algorithm; the key is an SPKI PEM. */
  alg: z.enum(['ecdsa-p256', 'ed25519']),
  public_key: z.string().min(1).max(4096),
})
export type OperatorKey = z.infer<typeof OperatorKey>

/**
 * The fleet's trust root (the public part of the fleet directory). A newer root (higher `version`)
 * is accepted only when signed by a threshold of the keys of the root it replaces, like TUF's root
 * rotation; the version only grows.
 */
export const TrustRoot = z.object({
  type: z.literal('TrustRoot'),
  v: z.literal(SCHEMA_VERSION),
  fleet: FleetId,
  version: z.number().int().positive(),
  keys: z.array(OperatorKey).min(1).max(16),
  threshold: z.number().int().positive().default(1),
  created_at: Timestamp,
  expires_at: Timestamp.optional(),
  /**
   * Whether the seed enrolls every device that holds the join secret, with the tags it declares.
   * Off by default (devices join with an invite or the operator's approval); for labs only.
   */
  auto_enroll: z.boolean().default(false),
})
export type TrustRoot = z.infer<typeof TrustRoot>
