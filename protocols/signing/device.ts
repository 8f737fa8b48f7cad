/**
 * Device signing: health reports and verdicts are signed with the device's libp2p Ed25519
 * identity key over DSSE PAE(`application/vnd.llmesh.device+json`, canonical JSON payload).
 * The signer field of the envelope is the device's peer id, which is also its public key.
 */
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { PAYLOAD_TYPE_DEVICE } from '../constants.ts'
import { canonicalBytes, toBase64 } from '../encoding.ts'
import { InvalidInputError } from '../errors.ts'
import { DeviceMessage } from '../schemas/index.ts'
import type { WireEnvelope } from '../wire.ts'
import { pae } from './dsse.ts'

/**
 * Signs a device message with the device's libp2p Ed25519 key; returns the wire bytes.
 * Throws InvalidInputError if the key is not Ed25519, the message does not match its schema, or
 * `msg.device` is not the key's peer id.
 */
export async function signDeviceMessage(msg: DeviceMessage, key: PrivateKey): Promise<Uint8Array> {
  if (key.type !== 'Ed25519') throw new InvalidInputError(`device keys are Ed25519, got ${key.type}`)
  const parsed = DeviceMessage.safeParse(msg)
  if (!parsed.success) throw new InvalidInputError(`invalid ${msg?.type ?? 'message'}: ${parsed.error.message}`)
  const signer = peerIdFromPrivateKey(key).toString()
  if (parsed.data.device !== signer) {
    throw new InvalidInputError(`message device ${parsed.data.device} is not the signing key's peer id ${signer}`)
  }
  const payload = canonicalBytes(parsed.data)
  const sig = await key.sign(pae(PAYLOAD_TYPE_DEVICE, payload))
  const env: WireEnvelope = {
    kind: 'device',
    type: parsed.data.type,
    signer,
    payload: toBase64(payload),
    sig: toBase64(sig),
  }
  return canonicalBytes(env)
}
