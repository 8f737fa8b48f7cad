/**
 * The crypto of libp2p Noise (connection encryption) in libsodium, decrypting in place.
 *
 * @chainsafe/libp2p-noise hands its decrypt a `dst`: the message's own bytes without the tag (a view
 * of the socket's read, or the copy it makes when a message spans two reads), meant to be written
 * in place. Its default crypto ignores it for messages of 1200 bytes or more: Node's decipher
 * returns a fresh buffer per message, about one byte of new buffer memory per byte received. On a
 * model transfer that, with the socket reads and the spanning copies, is what V8 counts against its
 * old generation's budget and what starts its mark-compacts (docs/benchmarks.md, "the GC with large
 * blocks"). Here ChaCha20-Poly1305 (IETF) runs in libsodium (sodium-native, which the pnet fix and
 * hypercore already load): the tag is checked first, then the bytes are decrypted into `dst` itself.
 * Same cipher and bytes on the wire, so a node with this crypto talks to one with the default.
 * X25519 is libsodium's too; HKDF stays the package's own (handshakes only).
 */
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { type ICryptoInterface, noise, pureJsCrypto } from '@chainsafe/libp2p-noise'
import type { Uint8ArrayList } from 'uint8arraylist'

/** What this module uses of sodium-native. */
interface Sodium {
  crypto_aead_chacha20poly1305_ietf_encrypt(
    c: Uint8Array,
    m: Uint8Array,
    ad: Uint8Array | null,
    nsec: null,
    npub: Uint8Array,
    k: Uint8Array,
  ): number
  crypto_aead_chacha20poly1305_ietf_decrypt_detached(
    m: Uint8Array,
    nsec: null,
    c: Uint8Array,
    mac: Uint8Array,
    ad: Uint8Array | null,
    npub: Uint8Array,
    k: Uint8Array,
  ): void
  crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void
  randombytes_buf(b: Uint8Array): void
}

const TAG = 16
const KEY = 32

const sodium: Sodium | null = (() => {
  try {
    return createRequire(import.meta.url)('sodium-native') as Sodium
  } catch {
    return null
  }
})()

/**
 * `dst` with the first `len` bytes of `ciphertext` in it: parts that are already that memory (noise's
 * `dst` is a view of its message) are not copied, others are (a caller's plain output buffer).
 */
function holding(dst: Uint8Array, ciphertext: Uint8Array | Uint8ArrayList, len: number): Uint8Array {
  const parts = ciphertext instanceof Uint8Array ? [ciphertext.subarray(0, len)] : ciphertext.sublist(0, len)
  let off = 0
  for (const b of parts) {
    if (b.buffer !== dst.buffer || b.byteOffset !== dst.byteOffset + off) dst.set(b, off)
    off += b.byteLength
  }
  return dst
}

const flat = (b: Uint8Array | Uint8ArrayList): Uint8Array => (b instanceof Uint8Array ? b : b.subarray())
const adOrNull = (ad: Uint8Array): Uint8Array | null => (ad.byteLength === 0 ? null : ad)

/** sodium, typed as loaded: `sodiumNoiseCrypto` is only handed out when it is (`noiseCrypto()`). */
const na = sodium as Sodium

/** libp2p Noise's crypto on libsodium, or undefined where sodium-native cannot load (then the package's default). */
export const noiseCrypto = (): ICryptoInterface | undefined => (sodium === null ? undefined : sodiumNoiseCrypto)

/** libp2p Noise's crypto interface on libsodium (needs sodium-native: use `noiseCrypto()`). */
export const sodiumNoiseCrypto: ICryptoInterface = {
  hashSHA256(data) {
    const h = createHash('sha256')
    if (data instanceof Uint8Array) h.update(data)
    else for (const b of data) h.update(b)
    return h.digest()
  },
  getHKDF: pureJsCrypto.getHKDF,
  generateX25519KeyPair() {
    const privateKey = Buffer.alloc(KEY)
    na.randombytes_buf(privateKey)
    return sodiumNoiseCrypto.generateX25519KeyPairFromSeed(privateKey)
  },
  generateX25519KeyPairFromSeed(seed) {
    const publicKey = Buffer.alloc(KEY)
    na.crypto_scalarmult_base(publicKey, seed)
    return { publicKey, privateKey: seed }
  },
  generateX25519SharedKey(privateKey, publicKey) {
    const shared = Buffer.alloc(KEY)
    // throws on a low-order public key (an all-zero secret): the handshake fails, as it should
    na.crypto_scalarmult(shared, flat(privateKey), flat(publicKey))
    return shared
  },
  chaCha20Poly1305Encrypt(plaintext, nonce, ad, k) {
    const m = flat(plaintext)
    const out = Buffer.allocUnsafe(m.byteLength + TAG)
    na.crypto_aead_chacha20poly1305_ietf_encrypt(out, m, adOrNull(ad), null, nonce, k)
    return out
  },
  chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst) {
    const len = ciphertext.byteLength - TAG
    if (len < 0) throw new Error('Invalid chacha20poly1305 decryption')
    const mac = ciphertext.subarray(len)
    // in place into `dst` (noise's view of the message, or its spanning copy); else a new buffer
    const body = dst !== undefined && dst.byteLength === len ? holding(dst, ciphertext, len) : Buffer.allocUnsafe(len)
    if (body !== dst) holding(body, ciphertext, len)
    try {
      na.crypto_aead_chacha20poly1305_ietf_decrypt_detached(body, null, body, mac, adOrNull(ad), nonce, k)
    } catch {
      throw new Error('Invalid chacha20poly1305 decryption')
    }
    return body
  },
}

/**
 * The connection encrypter every llmesh host runs (node/mesh/host.ts), and the benchmarks' and tests'
 * hosts with it: Noise on this crypto (the package's default where sodium-native cannot load).
 */
export function meshNoise(): ReturnType<typeof noise> {
  return noise({ crypto: noiseCrypto() })
}
