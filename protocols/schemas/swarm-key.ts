import * as z from 'zod'
import { SCHEMA_VERSION } from '../constants.ts'
import { FleetId, PeerIdString, Sha256Hex, Timestamp } from './common.ts'

/** Most devices one rotation message carries a sealed key for (~190 bytes each on the wire). */
export const SWARM_KEY_MAX_RECIPIENTS = 16_384

/** Base64 of a sealed swarm key: ephemeral X25519 key (32) + ciphertext (32) + tag (16) = 80 bytes. */
export const SealedSwarmKey = z
  .string()
  .regex(/^[A-Za-z0-9+/]{107}=$/, 'expected a sealed swarm key (80 bytes, base64)')

/** One device's copy of the new join secret, sealed to its own Ed25519 (libp2p) key. */
export const SwarmKeyRecipient = z.strictObject({ device: PeerIdString, sealed: SealedSwarmKey })
export type SwarmKeyRecipient = z.infer<typeof SwarmKeyRecipient>

/**
 * Rotates the fleet's join secret (the libp2p private-network key); signed by the operator key.
 * `epoch` orders rotations (each is higher than the last); every node switches its private network
 * to the new key at `switch_at`. `key_id` is the sha256 of the 32 new key bytes, so a recipient
 * checks what it opened. Devices missing from `recipients` (revoked, pending) cannot learn the key.
 */
export const SwarmKeyRotation = z.object({
  type: z.literal('SwarmKeyRotation'),
  v: z.literal(SCHEMA_VERSION),
  fleet: FleetId,
  epoch: z
    .number()
    .int()
    .min(1)
    .max(2 ** 31),
  key_id: Sha256Hex,
  issued_at: Timestamp,
  switch_at: Timestamp,
  recipients: z.array(SwarmKeyRecipient).min(1).max(SWARM_KEY_MAX_RECIPIENTS),
})
export type SwarmKeyRotation = z.infer<typeof SwarmKeyRotation>
