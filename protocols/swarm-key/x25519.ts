/**
 * Ed25519 → X25519 key conversion (what libsodium's `crypto_sign_ed25519_pk_to_curve25519` and
 * `crypto_sign_ed25519_sk_to_curve25519` do), so that a swarm key can be sealed to a device's own
 * libp2p identity key: u = (1 + y) / (1 − y) mod 2²⁵⁵ − 19 for the public key, the first half of
 * SHA-512(seed) for the secret key (X25519 clamps it). Node's crypto does the Diffie-Hellman.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'

const P = 2n ** 255n - 19n

function modPow(base: bigint, exp: bigint): bigint {
  let result = 1n
  let b = base % P
  let e = exp
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P
    b = (b * b) % P
    e >>= 1n
  }
  return result
}

function fromLittleEndian(bytes: Uint8Array): bigint {
  let n = 0n
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i])
  return n
}

function toLittleEndian(n: bigint): Uint8Array {
  const out = new Uint8Array(32)
  let v = n
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn)
    v >>= 8n
  }
  return out
}

/** The X25519 public key of a raw 32-byte Ed25519 public key (undefined for a point that has none). */
export function ed25519PublicToX25519(ed: Uint8Array): Uint8Array | undefined {
  if (ed.length !== 32) return undefined
  const yBytes = Uint8Array.from(ed)
  yBytes[31] &= 0x7f
  const y = fromLittleEndian(yBytes)
  if (y >= P || y === 1n) return undefined
  const u = ((1n + y) * modPow((1n - y + P) % P, P - 2n)) % P
  return toLittleEndian(u)
}

/** The X25519 secret scalar of an Ed25519 secret key (its 32-byte seed, or libp2p's 64-byte seed‖public). */
export function ed25519SecretToX25519(ed: Uint8Array): Uint8Array {
  if (ed.length !== 32 && ed.length !== 64) throw new RangeError('an Ed25519 secret key is 32 or 64 bytes')
  const h = new Uint8Array(createHash('sha512').update(ed.subarray(0, 32)).digest().subarray(0, 32))
  h[0] &= 248
  h[31] &= 127
  h[31] |= 64
  return h
}

const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url')

/** A node:crypto X25519 public KeyObject from raw bytes. */
export function x25519PublicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(raw) }, format: 'jwk' })
}

/** DER prefix of an X25519 PKCS#8 private key; the 32-byte scalar follows. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

/** A node:crypto X25519 private KeyObject from a raw scalar. */
export function x25519PrivateKey(scalar: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, scalar]), format: 'der', type: 'pkcs8' })
}

/** Raw bytes of an X25519 public KeyObject. */
export function x25519Raw(key: KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(key.export({ format: 'jwk' }).x as string, 'base64url'))
}
