/**
 * A message's id: the hex sha256 of what was signed and who signed it,
 *
 *   sha256("llmesh-message-id/1" 0x00 signer 0x00 payloadType 0x00 payload)
 *
 * where `signer` is the operator keyid or the device peer id and `payload` the canonical JSON bytes
 * the signature covers. The signature bytes and the envelope's other fields are not part of it, so
 * two envelopes of one message (an ECDSA key signing the same payload twice, or any encoding
 * variant that slipped past the verifier's strict checks) are one message, stored and offered
 * once. Verification (`verifyEnvelope`) returns it as `digest`; `wireMessageId` computes it from
 * wire bytes without checking the signature (to name bytes the node made itself, or a cache key).
 */
import { createHash } from 'node:crypto'
import { PAYLOAD_TYPE_DEVICE, SIGSTORE_BUNDLE_MEDIA_TYPE } from '../constants.ts'
import { parseJsonBytes, tryFromBase64 } from '../encoding.ts'

const ID_DOMAIN = 'llmesh-message-id/1'

/** The id of the message `signer` signed as (`payloadType`, `payload`). */
export function messageId(signer: string, payloadType: string, payload: Uint8Array): string {
  return createHash('sha256').update(`${ID_DOMAIN}\0${signer}\0${payloadType}\0`).update(payload).digest('hex')
}

/**
 * The id of the message in wire bytes, read without verifying the signature (undefined when the
 * bytes are not a decodable wire envelope). Equal to the `digest` `verifyEnvelope` returns for
 * bytes that verify. Never throws.
 */
export function wireMessageId(bytes: Uint8Array): string | undefined {
  const parsed = parseJsonBytes(bytes, bytes.byteLength)
  if (!parsed.ok) return undefined
  const env = parsed.value as Record<string, unknown> | null
  if (env === null || typeof env !== 'object') return undefined
  if (env.kind === 'device') {
    const payload = tryFromBase64(env.payload)
    if (typeof env.signer !== 'string' || payload === undefined) return undefined
    return messageId(env.signer, PAYLOAD_TYPE_DEVICE, payload)
  }
  if (env.kind === 'operator') {
    const b = env.bundle as
      | {
          mediaType?: unknown
          dsseEnvelope?: { payload?: unknown; payloadType?: unknown }
          verificationMaterial?: { publicKey?: { hint?: unknown } }
        }
      | undefined
    if (b?.mediaType !== SIGSTORE_BUNDLE_MEDIA_TYPE) return undefined
    const hint = b.verificationMaterial?.publicKey?.hint
    const type = b.dsseEnvelope?.payloadType
    const payload = tryFromBase64(b.dsseEnvelope?.payload)
    if (typeof hint !== 'string' || typeof type !== 'string' || payload === undefined) return undefined
    return messageId(hint, type, payload)
  }
  return undefined
}

/**
 * The id of wire bytes this node made or verified (what the store names them by); falls back to
 * the bytes' sha256 for bytes that are no wire envelope at all. Never throws.
 */
export function messageIdOfWire(bytes: Uint8Array): string {
  return wireMessageId(bytes) ?? createHash('sha256').update(bytes).digest('hex')
}
