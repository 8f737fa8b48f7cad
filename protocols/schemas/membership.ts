/**
 * Enrollment by invitation (docs/protocol.md, "Membership").
 *
 * - `DeviceInvite`, signed by the operator key: the tags and name a device gets, how many device
 *   identities it may enroll (`uses`), until when it may be claimed, and the public half of an
 *   Ed25519 key made for this invite only (`public_key`). The invite file holds the signed invite
 *   and that key's private half; a bare invite is never stored or gossiped.
 * - `InviteClaim`, signed by the device's own key: the signed invite, plus `proof`, the invite
 *   key's signature over (fleet, invite id, device). The claim travels through the mesh, so every
 *   node can check it; it reveals the invite but not the invite key, so a peer that reads a claim
 *   cannot claim the invite for itself.
 */
import * as z from 'zod'
import { SCHEMA_VERSION } from '../constants.ts'
import { FleetId, PeerIdString, Tag, Timestamp } from './common.ts'
import { DeviceEnrollment } from './enrollment.ts'

/** The most identities one invite may enroll. */
export const MAX_INVITE_USES = 1000

/** An operator's invitation to join the fleet. */
export const DeviceInvite = z.object({
  type: z.literal('DeviceInvite'),
  v: z.literal(SCHEMA_VERSION),
  fleet: FleetId,
  /** Random, 128 bits: names the invite (claims of one invite share their uses). */
  id: z.string().regex(/^[0-9a-f]{32}$/),
  tags: z.array(Tag).max(32),
  name: z.string().min(1).max(64).optional(),
  uses: z.number().int().min(1).max(MAX_INVITE_USES),
  /** Raw Ed25519 public key of the invite (base64, 32 bytes). */
  public_key: z.string().regex(/^[A-Za-z0-9+/]{43}=$/),
  issued_at: Timestamp,
  expires_at: Timestamp,
})
export type DeviceInvite = z.infer<typeof DeviceInvite>

/** A device's claim of an invite. */
export const InviteClaim = z.object({
  type: z.literal('InviteClaim'),
  v: z.literal(SCHEMA_VERSION),
  fleet: FleetId,
  device: PeerIdString,
  /** The invite's wire envelope (operator-signed), base64. */
  invite: z.string().max(16 * 1024),
  /** The invite key's Ed25519 signature over `claimProofBytes(fleet, invite id, device)`, base64. */
  proof: z.string().max(128),
  claimed_at: Timestamp,
  /** What the device says it is (shown to the operator; never used for cohorts). */
  capabilities: DeviceEnrollment.shape.capabilities,
})
export type InviteClaim = z.infer<typeof InviteClaim>

/** What the invite key signs in a claim. */
export function claimProofBytes(fleet: string, inviteId: string, device: string): Uint8Array {
  return new TextEncoder().encode(`llmesh-invite-claim/1\0${fleet}\0${inviteId}\0${device}`)
}
