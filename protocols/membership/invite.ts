/**
 * Making invites and claims. An invite is a DeviceInvite signed by the operator plus the private
 * half of a key made for it alone; the file a device is given holds both (keep it secret, like the
 * join secret). A device claims an invite by signing an InviteClaim that carries the signed invite
 * and the invite key's proof for its own peer id (protocols/schemas/membership.ts).
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import * as z from 'zod'
import { MAX_SIZE, SCHEMA_VERSION } from '../constants.ts'
import { fromBase64, parseJsonBytes, toBase64, tryFromBase64 } from '../encoding.ts'
import { InvalidInputError } from '../errors.ts'
import {
  claimProofBytes,
  type DeviceEnrollment,
  DeviceInvite,
  type InviteClaim,
  MAX_INVITE_USES,
  type TrustRoot,
} from '../schemas/index.ts'
import { signDeviceMessage } from '../signing/device.ts'
import { signOperatorMessage } from '../signing/operator.ts'
import type { OperatorSigner } from '../signing/operator-key.ts'
import { verifyEnvelope } from '../verify.ts'
import { INVITE_FILE_TYPE, MAX_INVITE_TTL_MS } from './constants.ts'

/** What the operator chooses for an invite. */
export interface InviteInit {
  fleet: string
  tags?: string[]
  name?: string
  uses?: number
  ttlMs: number
  now: number
}

/** The invite file a device is given. */
export const InviteFile = z.strictObject({
  type: z.literal(INVITE_FILE_TYPE),
  v: z.literal(SCHEMA_VERSION),
  /** The operator-signed DeviceInvite's wire envelope, base64. */
  invite: z.string().max(16 * 1024),
  /** The invite key's private half (PKCS#8 DER), base64. */
  key: z.string().max(256),
})
export type InviteFile = z.infer<typeof InviteFile>

/** Makes and signs an invite; returns the invite file. */
export async function createInvite(
  init: InviteInit,
  signer: OperatorSigner,
): Promise<{ file: InviteFile; invite: DeviceInvite }> {
  const uses = init.uses ?? 1
  if (!Number.isInteger(uses) || uses < 1 || uses > MAX_INVITE_USES)
    throw new InvalidInputError(`uses must be a whole number from 1 to ${MAX_INVITE_USES}`)
  if (!Number.isFinite(init.ttlMs) || init.ttlMs <= 0 || init.ttlMs > MAX_INVITE_TTL_MS)
    throw new InvalidInputError(
      `the invite's lifetime must be positive and at most ${MAX_INVITE_TTL_MS / 86_400_000} days`,
    )
  const pair = generateKeyPairSync('ed25519')
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' })
  const invite: DeviceInvite = {
    type: 'DeviceInvite',
    v: SCHEMA_VERSION,
    fleet: init.fleet,
    id: randomBytes(16).toString('hex'),
    tags: [...new Set(init.tags ?? [])],
    ...(init.name === undefined ? {} : { name: init.name }),
    uses,
    public_key: toBase64(spki.subarray(spki.byteLength - 32)),
    issued_at: init.now,
    expires_at: init.now + init.ttlMs,
  }
  const wire = await signOperatorMessage(invite, signer)
  const key = pair.privateKey.export({ type: 'pkcs8', format: 'der' })
  return { file: { type: INVITE_FILE_TYPE, v: SCHEMA_VERSION, invite: toBase64(wire), key: toBase64(key) }, invite }
}

/** An invite file, checked: the signed invite and the key. */
export interface OpenedInvite {
  invite: DeviceInvite
  wire: Uint8Array
  file: InviteFile
}

/**
 * Reads an invite file and checks it against the trust root at `now`: signed by an operator key,
 * of this fleet, not expired (`ERR_EXPIRED`). Throws a VerificationError or InvalidInputError.
 */
export function openInviteFile(text: string, trust: TrustRoot, now: number): OpenedInvite {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new InvalidInputError('the invite file is not JSON')
  }
  const file = InviteFile.safeParse(json)
  if (!file.success) throw new InvalidInputError('this is not an llmesh invite file')
  const wire = tryFromBase64(file.data.invite)
  if (wire === undefined || tryFromBase64(file.data.key) === undefined)
    throw new InvalidInputError('the invite file is damaged (bad base64)')
  const res = verifyEnvelope(wire, { trust, now })
  if (!res.ok) throw res.error
  if (res.message.type !== 'DeviceInvite') throw new InvalidInputError('the invite file holds no invite')
  return { invite: res.message, wire, file: file.data }
}

/** Signs the claim of an opened invite by the device that holds `deviceKey`; returns wire bytes. */
export async function signClaim(
  opened: OpenedInvite,
  deviceKey: PrivateKey,
  capabilities: DeviceEnrollment['capabilities'],
  now: number,
): Promise<Uint8Array> {
  const device = peerIdFromPrivateKey(deviceKey).toString()
  let key: ReturnType<typeof createPrivateKey>
  try {
    key = createPrivateKey({ key: Buffer.from(fromBase64(opened.file.key)), format: 'der', type: 'pkcs8' })
  } catch (err) {
    throw new InvalidInputError('the invite file’s key is damaged', { cause: err })
  }
  const { invite } = opened
  const proof = sign(null, claimProofBytes(invite.fleet, invite.id, device), key)
  const claim: InviteClaim = {
    type: 'InviteClaim',
    v: SCHEMA_VERSION,
    fleet: invite.fleet,
    device,
    invite: toBase64(opened.wire),
    proof: toBase64(proof),
    claimed_at: Math.max(now, invite.issued_at),
    capabilities,
  }
  return signDeviceMessage(claim, deviceKey)
}

/**
 * The invite a claim carries, decoded without checking its signature (the claim was verified,
 * invite included, before it was stored). Undefined when it does not decode.
 */
export function inviteOfClaim(claim: InviteClaim): DeviceInvite | undefined {
  const wire = tryFromBase64(claim.invite)
  const env = wire === undefined ? undefined : parseJsonBytes(wire, MAX_SIZE.DeviceInvite)
  if (env?.ok !== true) return undefined
  const payload = tryFromBase64(
    (env.value as { bundle?: { dsseEnvelope?: { payload?: unknown } } } | null)?.bundle?.dsseEnvelope?.payload,
  )
  if (payload === undefined) return undefined
  const body = parseJsonBytes(payload, MAX_SIZE.DeviceInvite)
  if (!body.ok) return undefined
  const v = DeviceInvite.safeParse(body.value)
  return v.success ? v.data : undefined
}
