/**
 * Sealing the fleet's new join secret to each device's own libp2p (Ed25519) key, and opening it.
 * As libsodium's sealed boxes, with node's crypto: an ephemeral X25519 key, X25519 with the
 * device's key (converted from Ed25519, x25519.ts), HKDF-SHA256 over the shared secret (salt: both
 * public keys) and ChaCha20-Poly1305. The fleet, epoch and device are bound in as associated data,
 * so a copy cannot be moved to another rotation or another device. Each box is
 * ephemeral public key (32) ‖ ciphertext (32) ‖ tag (16).
 */
import { createCipheriv, createDecipheriv, diffieHellman, generateKeyPairSync, hkdfSync } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { fromBase64, sha256Hex, toBase64 } from '../encoding.ts'
import type { SwarmKeyRecipient, SwarmKeyRotation } from '../schemas/swarm-key.ts'
import { SwarmKeyError } from './errors.ts'
import { ed25519PublicToX25519, ed25519SecretToX25519, x25519PrivateKey, x25519PublicKey, x25519Raw } from './x25519.ts'

/** Bytes of a swarm key (the libp2p pnet key, without its file framing). */
export const SWARM_KEY_BYTES = 32
const TAG_BYTES = 16
const NONCE = new Uint8Array(12) // each box has its own HKDF key: a fixed nonce is safe

function context(fleet: string, epoch: number, device: string): Buffer {
  return Buffer.from(`llmesh/swarm-key/1\0${fleet}\0${epoch}\0${device}`, 'utf8')
}

/** The X25519 public key of a device, from its peer id (ERR_SWARM_KEY if it is not an Ed25519 id). */
function deviceX25519(device: string): Uint8Array {
  let raw: Uint8Array | undefined
  try {
    const id = peerIdFromString(device)
    raw = id.type === 'Ed25519' ? id.publicKey.raw : undefined
  } catch (err) {
    throw new SwarmKeyError('ERR_SWARM_KEY', `${device.slice(0, 64)} is not a peer id`, { cause: err })
  }
  const x = raw === undefined ? undefined : ed25519PublicToX25519(raw)
  if (x === undefined) throw new SwarmKeyError('ERR_SWARM_KEY', `${device} has no Ed25519 key to seal to`)
  return x
}

function boxKey(shared: Uint8Array, ephPub: Uint8Array, devPub: Uint8Array, info: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephPub, devPub]), info, 32))
}

/** The key id a rotation names a key by: sha256 of its 32 bytes. */
export function swarmKeyId(key: Uint8Array): string {
  return sha256Hex(key)
}

/** Seals `key` to each device (peer ids, deduplicated, in the order given). */
export function sealSwarmKey(
  key: Uint8Array,
  init: { fleet: string; epoch: number; devices: readonly string[] },
): SwarmKeyRecipient[] {
  if (key.length !== SWARM_KEY_BYTES)
    throw new SwarmKeyError('ERR_SWARM_KEY', `a swarm key is ${SWARM_KEY_BYTES} bytes`)
  return [...new Set(init.devices)].map((device) => {
    const devPub = deviceX25519(device)
    const eph = generateKeyPairSync('x25519')
    const ephPub = x25519Raw(eph.publicKey)
    const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: x25519PublicKey(devPub) })
    const info = context(init.fleet, init.epoch, device)
    const cipher = createCipheriv('chacha20-poly1305', boxKey(shared, ephPub, devPub, info), NONCE, {
      authTagLength: TAG_BYTES,
    })
    cipher.setAAD(info, { plaintextLength: key.length })
    const ct = Buffer.concat([cipher.update(key), cipher.final()])
    return { device, sealed: toBase64(Buffer.concat([ephPub, ct, cipher.getAuthTag()])) }
  })
}

/**
 * Opens this device's copy of the rotation's key with its Ed25519 secret key (libp2p's raw
 * 64-byte key). Throws SwarmKeyError: ERR_NOT_RECIPIENT, ERR_SEALED_KEY, ERR_KEY_MISMATCH.
 */
export function openSwarmKey(rotation: SwarmKeyRotation, self: string, secretKey: Uint8Array): Uint8Array {
  const mine = rotation.recipients.find((r) => r.device === self)
  if (mine === undefined) {
    throw new SwarmKeyError('ERR_NOT_RECIPIENT', `swarm key epoch ${rotation.epoch} was not sealed to ${self}`)
  }
  const box = fromBase64(mine.sealed)
  const ephPub = box.subarray(0, 32)
  const ct = box.subarray(32, 32 + SWARM_KEY_BYTES)
  const tag = box.subarray(32 + SWARM_KEY_BYTES)
  const info = context(rotation.fleet, rotation.epoch, self)
  let key: Uint8Array
  try {
    const scalar = ed25519SecretToX25519(secretKey)
    const devPub = deviceX25519(self)
    const shared = diffieHellman({ privateKey: x25519PrivateKey(scalar), publicKey: x25519PublicKey(ephPub) })
    const decipher = createDecipheriv('chacha20-poly1305', boxKey(shared, ephPub, devPub, info), NONCE, {
      authTagLength: TAG_BYTES,
    })
    decipher.setAAD(info, { plaintextLength: ct.length })
    decipher.setAuthTag(tag)
    key = new Uint8Array(Buffer.concat([decipher.update(ct), decipher.final()]))
  } catch (err) {
    throw new SwarmKeyError(
      'ERR_SEALED_KEY',
      `swarm key epoch ${rotation.epoch} does not open with this device's key`,
      {
        cause: err,
      },
    )
  }
  if (swarmKeyId(key) !== rotation.key_id) {
    throw new SwarmKeyError('ERR_KEY_MISMATCH', `swarm key epoch ${rotation.epoch} is not the key its key_id names`)
  }
  return key
}
