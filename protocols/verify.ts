/**
 * Verification of wire envelopes. `verifyEnvelope` is synchronous and never throws: every
 * refusal is a `VerificationError` with a stable code. Checks, in order:
 *
 * 1. size (MAX_WIRE_SIZE before parsing, then MAX_SIZE[type]) → ERR_OVERSIZED
 * 2. JSON, canonical form (RFC 8785), strict envelope schema → ERR_SCHEMA; unknown type →
 *    ERR_UNKNOWN_TYPE; canonical base64 → ERR_SCHEMA
 * 3. device messages: the signer's enrollment status (optional, before any crypto, so an
 *    unenrolled key costs a map lookup): revoked → ERR_REVOKED, unknown → ERR_NOT_ENROLLED, except
 *    an InviteClaim (how an unenrolled device asks to join): its embedded invite is checked
 *    instead, against the trust root at the claim's date, with the invite key's proof
 *    (`checkClaim`; protocols/membership)
 * 4. signature: operator bundles against the trust root's keys (ERR_UNKNOWN_SIGNER,
 *    ERR_BAD_SIGNATURE; one bundle form, one keyid form, low-S ECDSA); device envelopes against
 *    the signer's peer id (Ed25519, reduced S)
 * 5. payload: canonical JSON, payload type, in-toto statement (subject = manifest.file.sha256 and
 *    file name), message schema, message type = envelope type → ERR_SCHEMA; `device` = signer →
 *    ERR_UNKNOWN_SIGNER
 * 6. fleet → ERR_WRONG_FLEET; expiry / future (device messages too) → ERR_EXPIRED / ERR_FUTURE (an
 *    expired trust root refuses every operator message except a TrustRoot)
 * 7. rollback (optional, see trust/sequence.ts) → ERR_ROLLBACK
 *
 * A verified message is named by its id (`messageId`: signer, payload type, payload), returned as
 * `digest`. A refusal made after the signature was checked carries that id too (`id`), so a
 * caller may remember refused messages by id without letting a forger poison the name of a
 * message it cannot sign.
 * Steps 3 to 5 (signature, payload, schema) are in verify-open.ts; the invite claim's check here.
 */
import { verify as cryptoVerify } from 'node:crypto'
import { MAX_SIZE, MAX_WIRE_SIZE } from './constants.ts'
import { canonicalJson, parseJsonBytes, tryFromBase64 } from './encoding.ts'
import { type VerificationCode, VerificationError } from './errors.ts'
import {
  claimProofBytes,
  DEVICE_TYPES,
  type DeviceInvite,
  type DeviceMessage,
  type InviteClaim,
  type MessageType,
  OPERATOR_TYPES,
  type OperatorMessage,
  type ReleaseManifest,
  type TrustRoot,
} from './schemas/index.ts'
import { isCanonicalEd25519 } from './signing/signature-form.ts'
import { checkFreshness } from './trust/freshness.ts'
import { sequenceOf } from './trust/sequence.ts'
import { ed25519PublicKey, type Fail, failWith, openDevice, openOperator } from './verify-open.ts'
import { WireEnvelope } from './wire.ts'

/** What a receiver knows when it verifies a message. */
export interface VerifyContext {
  /** The receiver's current trust root (operator keys and fleet id). */
  trust: TrustRoot
  /** Current time, ms since the epoch. */
  now: number
  /** Expected fleet id; defaults to `trust.fleet`. */
  fleet?: string
  /** Highest sequence accepted so far for (type, rollback key); see trust/sequence.ts. */
  highestSeq?: (type: MessageType, key: string) => number | undefined
  /**
   * Wire digest of the message accepted at that highest sequence. With it, a replay of the very
   * same message is accepted (`replay: true`); without it, an equal sequence is refused.
   */
  seenDigest?: (type: MessageType, key: string) => string | undefined
  /**
   * Enrollment status of a device; when given, device messages need `enrolled` (checked before the
   * signature: refusing an unknown key costs no crypto).
   */
  deviceStatus?: (device: string) => 'enrolled' | 'revoked' | 'unknown'
}

/** Outcome of `verifyEnvelope`. */
export type VerifyResult =
  | {
      ok: true
      type: MessageType
      message: OperatorMessage | DeviceMessage
      /** Operator keyid (hex sha256 of SPKI DER) or device peer id. */
      signer: string
      /** The message id (`messageId`: signer, payload type, payload): its name everywhere. */
      digest: string
      envelope: WireEnvelope
      /** True when this exact message was already accepted (same sequence and digest). */
      replay: boolean
    }
  | {
      ok: false
      error: VerificationError
      /** The refused message's id, set only when the signature was checked before the refusal. */
      id?: string
      /**
       * The signer the envelope claims, set for ERR_NOT_ENROLLED (refused before any signature
       * check, so unproven): the mesh penalises a peer that sends messages naming itself as their
       * unenrolled signer, and no one else.
       */
      claimedSigner?: string
    }

const ALL_TYPES: readonly string[] = [...OPERATOR_TYPES, ...DEVICE_TYPES]
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Verifies wire bytes. Synchronous; never throws. */
export function verifyEnvelope(bytes: Uint8Array, ctx: VerifyContext): VerifyResult {
  try {
    return verifyUnsafe(bytes, ctx)
  } catch (err) {
    return failWith('ERR_SCHEMA', `unverifiable message: ${(err as Error)?.message ?? String(err)}`, err)
  }
}

function verifyUnsafe(bytes: Uint8Array, ctx: VerifyContext): VerifyResult {
  if (!(bytes instanceof Uint8Array)) return failWith('ERR_SCHEMA', 'wire message is not bytes')
  const parsed = parseJsonBytes(bytes, MAX_WIRE_SIZE)
  if (!parsed.ok) return parsed
  const raw = parsed.value as { kind?: unknown; type?: unknown } | null
  if (typeof raw?.type === 'string' && !ALL_TYPES.includes(raw.type)) {
    return failWith('ERR_UNKNOWN_TYPE', `unknown message type ${JSON.stringify(raw.type).slice(0, 64)}`)
  }
  const env = WireEnvelope.safeParse(raw)
  if (!env.success) {
    const kindTypeMismatch =
      (raw?.kind === 'operator' && (DEVICE_TYPES as readonly unknown[]).includes(raw.type)) ||
      (raw?.kind === 'device' && (OPERATOR_TYPES as readonly unknown[]).includes(raw.type))
    if (kindTypeMismatch)
      return failWith('ERR_UNKNOWN_TYPE', `${String(raw?.type)} is not a ${String(raw?.kind)} message`)
    return failWith('ERR_SCHEMA', `bad wire envelope: ${env.error.issues[0]?.message ?? 'invalid'}`)
  }
  const envelope = env.data
  const limit = MAX_SIZE[envelope.type]
  if (bytes.byteLength > limit) {
    return failWith('ERR_OVERSIZED', `${envelope.type} of ${bytes.byteLength} bytes exceeds the limit of ${limit}`)
  }
  if (canonicalJson(parsed.value) !== decoder.decode(bytes)) {
    return failWith('ERR_SCHEMA', 'wire envelope is not in RFC 8785 canonical form')
  }
  const opened =
    envelope.kind === 'operator'
      ? openOperator(envelope, ctx.trust.keys)
      : openDevice(envelope, ctx.deviceStatus, (claim) => checkClaim(claim, ctx))
  if (!opened.ok) return opened
  const { message, signer, digest } = opened
  const refuse = (code: VerificationCode, text: string): Fail => ({ ...failWith(code, text), id: digest })

  const fleet = ctx.fleet ?? ctx.trust.fleet
  if (message.fleet !== fleet) return refuse('ERR_WRONG_FLEET', `message is for fleet ${message.fleet}, not ${fleet}`)
  if (envelope.kind === 'operator' && message.type !== 'TrustRoot' && ctx.trust.expires_at !== undefined) {
    if (ctx.trust.expires_at <= ctx.now) return refuse('ERR_EXPIRED', 'the trust root has expired: rotate it first')
  }
  const stale = checkFreshness(message, ctx.now)
  if (stale !== undefined) return { ok: false, error: stale, id: digest }

  let replay = false
  const s = sequenceOf(message)
  const highest = s === undefined ? undefined : ctx.highestSeq?.(message.type, s.key)
  if (s !== undefined && highest !== undefined) {
    if (s.seq < highest) {
      return refuse('ERR_ROLLBACK', `${message.type} ${s.key} #${s.seq} is older than #${highest} already seen`)
    }
    if (s.seq === highest) {
      if (ctx.seenDigest?.(message.type, s.key) !== digest) {
        return refuse('ERR_ROLLBACK', `${message.type} ${s.key} #${s.seq} differs from the one already seen`)
      }
      replay = true
    }
  }
  return { ok: true, type: message.type, message, signer, digest, envelope, replay }
}

/**
 * The invite a claim presents: an operator-signed DeviceInvite of this fleet (checked against the
 * trust root at the claim's own date, so a claim made before the invite expired stays valid on a
 * node that hears of it later), claimed no earlier than it was issued, with a valid proof by the
 * invite key for this device.
 */
function checkClaim(claim: InviteClaim, ctx: VerifyContext): VerificationError | undefined {
  const bytes = tryFromBase64(claim.invite)
  const raw = bytes === undefined ? undefined : parseJsonBytes(bytes, MAX_SIZE.DeviceInvite)
  const kind = raw?.ok === true ? (raw.value as { kind?: unknown; type?: unknown } | null) : null
  if (bytes === undefined || kind?.kind !== 'operator' || kind.type !== 'DeviceInvite')
    return new VerificationError('ERR_SCHEMA', 'the claim does not carry a signed invite')
  const inner = verifyUnsafe(bytes, { trust: ctx.trust, fleet: ctx.fleet, now: claim.claimed_at })
  if (!inner.ok) {
    if (inner.error.code === 'ERR_FUTURE')
      return new VerificationError('ERR_SCHEMA', 'the claim is dated before its invite was issued')
    return new VerificationError(inner.error.code, `invite: ${inner.error.message}`)
  }
  const invite = inner.message as DeviceInvite
  if (claim.claimed_at < invite.issued_at)
    return new VerificationError('ERR_SCHEMA', 'the claim is dated before its invite was issued')
  if (!verifyInviteProof(invite, claim.device, claim.proof))
    return new VerificationError('ERR_BAD_SIGNATURE', 'the claim does not prove possession of the invite key')
  return undefined
}

/** Whether `proof` is the invite key's signature of the claim of `device`. */
export function verifyInviteProof(invite: DeviceInvite, device: string, proof: string): boolean {
  const raw = tryFromBase64(invite.public_key)
  const sig = tryFromBase64(proof)
  if (raw?.byteLength !== 32 || sig === undefined || !isCanonicalEd25519(sig)) return false
  return cryptoVerify(null, claimProofBytes(invite.fleet, invite.id, device), ed25519PublicKey(raw), sig)
}

/** Checks a file's sha256 against a verified manifest → ERR_DIGEST_MISMATCH. */
export function verifyArtifact(
  fileSha256: string,
  manifest: ReleaseManifest,
): { ok: true } | { ok: false; error: VerificationError } {
  if (fileSha256.toLowerCase() !== manifest.file.sha256) {
    return failWith('ERR_DIGEST_MISMATCH', `file sha256 ${fileSha256} is not the release's ${manifest.file.sha256}`)
  }
  return { ok: true }
}
