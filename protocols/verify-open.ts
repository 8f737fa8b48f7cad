/**
 * Opening a wire envelope for verify.ts (its steps 3 to 5): the signature (operator Sigstore
 * bundle or device Ed25519), then the signed payload and the message schema. Never throws on bad
 * input; refusals are `VerificationError`s, with the message id once the signature was checked.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  ED25519_KEY_CACHE_SIZE,
  MAX_WIRE_SIZE,
  PAYLOAD_TYPE_DEVICE,
  PAYLOAD_TYPE_IN_TOTO,
  PAYLOAD_TYPE_OPERATOR,
} from './constants.ts'
import { compactArrays, fromBase64, isCanonicalJsonBytes, parseJsonBytes } from './encoding.ts'
import { type VerificationCode, VerificationError } from './errors.ts'
import { DeviceMessage, type InviteClaim, OperatorMessage, type TrustRoot } from './schemas/index.ts'
import { probeSetDigest } from './schemas/probes.ts'
import { pae } from './signing/dsse.ts'
import { messageId } from './signing/message-id.ts'
import { openOperatorBundle } from './signing/open-bundle.ts'
import { isCanonicalEd25519 } from './signing/signature-form.ts'
import { ReleaseStatement, releaseFileName } from './signing/statement.ts'
import type { WireEnvelope } from './wire.ts'

/** A refusal: the error, and the message id once the signature was checked. */
export type Fail = { ok: false; error: VerificationError; id?: string; claimedSigner?: string }
/** The refusal with `code`. */
export const failWith = (code: VerificationCode, message: string, cause?: unknown): Fail => ({
  ok: false,
  error: new VerificationError(code, message, cause === undefined ? undefined : { cause }),
})

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 raw key bytes follow. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

const keyCache = new Map<string, KeyObject>()

/**
 * The public key of 32 raw Ed25519 key bytes. Every gossiped device message names its signer's
 * key, and a fleet has few signers: the key objects are kept (the oldest dropped past
 * ED25519_KEY_CACHE_SIZE), so a key is imported once, not once per message.
 */
export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64')
  let key = keyCache.get(id)
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
    if (keyCache.size >= ED25519_KEY_CACHE_SIZE) keyCache.delete(keyCache.keys().next().value as string)
    keyCache.set(id, key)
  }
  return key
}

/** A message opened: its signature and payload checked, or the refusal. */
export type Opened = { ok: true; message: OperatorMessage | DeviceMessage; signer: string; digest: string } | Fail

/**
 * Step 4-5 for an operator envelope: the Sigstore bundle against the trust root's `keys`, then the
 * payload (in-toto statement for a release) and the message schema.
 */
export function openOperator(envelope: Extract<WireEnvelope, { kind: 'operator' }>, keys: TrustRoot['keys']): Opened {
  const bundle = openOperatorBundle(envelope.bundle, keys)
  if (!bundle.ok) return bundle
  const expected = envelope.type === 'ReleaseManifest' ? PAYLOAD_TYPE_IN_TOTO : PAYLOAD_TYPE_OPERATOR
  if (bundle.payloadType !== expected)
    return failWith('ERR_SCHEMA', `payload type ${bundle.payloadType} is not ${expected}`)
  const digest = messageId(bundle.keyid, bundle.payloadType, bundle.payload)
  const fail = (code: VerificationCode, text: string): Fail => ({ ...failWith(code, text), id: digest })
  const json = parseJsonBytes(bundle.payload, MAX_WIRE_SIZE)
  if (!json.ok) return { ...json, id: digest }
  if (!isCanonicalJsonBytes(bundle.payload, json.value)) return fail('ERR_SCHEMA', 'payload is not canonical JSON')
  let body = json.value
  let subject: ReleaseStatement['subject'][number] | undefined
  if (envelope.type === 'ReleaseManifest') {
    const st = ReleaseStatement.safeParse(json.value)
    if (!st.success) return fail('ERR_SCHEMA', `bad in-toto statement: ${st.error.issues[0]?.message ?? 'invalid'}`)
    body = st.data.predicate
    subject = st.data.subject[0]
  }
  const msg = OperatorMessage.safeParse(body)
  if (!msg.success) return fail('ERR_SCHEMA', `bad ${envelope.type}: ${describe(msg.error)}`)
  if (msg.data.type !== envelope.type)
    return fail('ERR_SCHEMA', `envelope says ${envelope.type}, payload is ${msg.data.type}`)
  if (msg.data.type === 'ReleaseManifest') {
    if (subject?.digest.sha256 !== msg.data.file.sha256 || subject?.name !== releaseFileName(msg.data)) {
      return fail('ERR_DIGEST_MISMATCH', 'in-toto subject does not match the manifest file')
    }
    const probes = msg.data.probes
    if (probes !== undefined && msg.data.provenance.validation_dataset?.digest !== probeSetDigest(probes)) {
      return fail('ERR_DIGEST_MISMATCH', 'provenance.validation_dataset does not name the inline probe set')
    }
  }
  return { ok: true, message: compactArrays(msg.data), signer: bundle.keyid, digest }
}

/**
 * Steps 3-5 for a device envelope: the signer's enrollment (`deviceStatus`, before any crypto), its
 * Ed25519 signature, then the payload and the message schema; an InviteClaim's invite is checked
 * by `checkClaim` last.
 */
export function openDevice(
  envelope: Extract<WireEnvelope, { kind: 'device' }>,
  deviceStatus: ((device: string) => 'enrolled' | 'revoked' | 'unknown') | undefined,
  checkClaim: (claim: InviteClaim) => VerificationError | undefined,
): Opened {
  let payload: Uint8Array
  let sig: Uint8Array
  let rawKey: Uint8Array
  try {
    payload = fromBase64(envelope.payload)
    sig = fromBase64(envelope.sig)
    const pub = peerIdFromString(envelope.signer).publicKey
    if (pub?.type !== 'Ed25519') return failWith('ERR_SCHEMA', 'device signer is not an Ed25519 peer id')
    rawKey = pub.raw
  } catch (err) {
    return failWith('ERR_SCHEMA', `bad device envelope: ${(err as Error).message}`, err)
  }
  const status = deviceStatus?.(envelope.signer)
  if (status === 'revoked') return failWith('ERR_REVOKED', `device ${envelope.signer} is revoked`)
  // an invite claim is how an unenrolled device asks to join: its invite is checked instead
  if (status === 'unknown' && envelope.type !== 'InviteClaim')
    return {
      ...failWith('ERR_NOT_ENROLLED', `device ${envelope.signer} is not enrolled`),
      claimedSigner: envelope.signer,
    }
  if (!isCanonicalEd25519(sig) || rawKey.byteLength !== 32) {
    return failWith('ERR_BAD_SIGNATURE', 'malformed or non-canonical Ed25519 signature')
  }
  if (!cryptoVerify(null, pae(PAYLOAD_TYPE_DEVICE, payload), ed25519PublicKey(rawKey), sig)) {
    return failWith('ERR_BAD_SIGNATURE', `bad signature by device ${envelope.signer}`)
  }
  const digest = messageId(envelope.signer, PAYLOAD_TYPE_DEVICE, payload)
  const fail = (code: VerificationCode, text: string): Fail => ({ ...failWith(code, text), id: digest })
  const json = parseJsonBytes(payload, MAX_WIRE_SIZE)
  if (!json.ok) return { ...json, id: digest }
  if (!isCanonicalJsonBytes(payload, json.value)) return fail('ERR_SCHEMA', 'payload is not canonical JSON')
  const msg = DeviceMessage.safeParse(json.value)
  if (!msg.success) return fail('ERR_SCHEMA', `bad ${envelope.type}: ${describe(msg.error)}`)
  if (msg.data.type !== envelope.type)
    return fail('ERR_SCHEMA', `envelope says ${envelope.type}, payload is ${msg.data.type}`)
  if (msg.data.device !== envelope.signer) {
    return fail(
      'ERR_UNKNOWN_SIGNER',
      `${msg.data.type} claims device ${msg.data.device} but is signed by ${envelope.signer}`,
    )
  }
  if (msg.data.type === 'InviteClaim') {
    const bad = checkClaim(msg.data)
    if (bad !== undefined) return { ok: false, error: bad, id: digest }
  }
  return { ok: true, message: compactArrays(msg.data), signer: envelope.signer, digest }
}

function describe(err: { issues: Array<{ path: PropertyKey[]; message: string }> }): string {
  const i = err.issues[0]
  return i === undefined ? 'invalid' : `${i.path.map(String).join('.') || '(root)'}: ${i.message}`
}
