/**
 * Operator keys: ECDSA P-256 (default) or Ed25519, PKCS8 PEM private keys, SPKI PEM public keys.
 * A key's id is the hex sha256 of its SPKI DER, the `hint` in Sigstore bundles and the `keyid`
 * in the trust root.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto'
import { InvalidInputError } from '../errors.ts'
import type { OperatorKey } from '../schemas/index.ts'
import { toLowSEcdsa } from './signature-form.ts'

/** Key algorithms an operator key may use. */
export type OperatorKeyAlg = OperatorKey['alg']

/** Holds an operator private key and signs with it. */
export interface OperatorSigner {
  /** Hex sha256 of the SPKI DER of the public key. */
  readonly keyid: string
  readonly alg: OperatorKeyAlg
  /** SPKI PEM of the public key. */
  readonly publicKeyPem: string
  /** The public key as a trust-root entry. */
  readonly key: OperatorKey
  /** Signs `data` (ECDSA: sha256, strict-DER low-S signature; Ed25519: pure). */
  sign(data: Uint8Array): Uint8Array
}

/** A freshly generated operator key pair. */
export interface GeneratedOperatorKey {
  /** PKCS8 PEM: keep secret (mode 0600). */
  privateKeyPem: string
  publicKeyPem: string
  keyid: string
  alg: OperatorKeyAlg
  /** The public key as a trust-root entry. */
  key: OperatorKey
}

/** Hex sha256 of the SPKI DER of a public key. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
}

function algOf(key: KeyObject): OperatorKeyAlg {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256'
  throw new InvalidInputError(
    `unsupported operator key type ${key.asymmetricKeyType ?? 'unknown'} (expected ECDSA P-256 or Ed25519)`,
  )
}

/** The trust-root entry of an SPKI PEM public key. Throws InvalidInputError on other key types. */
export function operatorKeyFromPublicPem(publicKeyPem: string): OperatorKey {
  let pub: KeyObject
  try {
    pub = createPublicKey(publicKeyPem)
  } catch (err) {
    throw new InvalidInputError('not a PEM public key', { cause: err })
  }
  const pem = pub.export({ type: 'spki', format: 'pem' }) as string
  return { keyid: keyIdOf(pub), alg: algOf(pub), public_key: pem }
}

/** Generates an operator key pair, ECDSA P-256 by default. */
export function generateOperatorKey(alg: OperatorKeyAlg = 'ecdsa-p256'): GeneratedOperatorKey {
  const pair = alg === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const privateKeyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  const key = operatorKeyFromPublicPem(pair.publicKey.export({ type: 'spki', format: 'pem' }) as string)
  return { privateKeyPem, publicKeyPem: key.public_key, keyid: key.keyid, alg, key }
}

/** Loads a PKCS8 PEM private key as a signer. Throws InvalidInputError if it is not a supported key. */
export function createOperatorSigner(privateKeyPem: string): OperatorSigner {
  let priv: KeyObject
  try {
    priv = createPrivateKey(privateKeyPem)
  } catch (err) {
    throw new InvalidInputError('not a PEM private key', { cause: err })
  }
  const alg = algOf(priv)
  const key = operatorKeyFromPublicPem(createPublicKey(priv).export({ type: 'spki', format: 'pem' }) as string)
  const digest = alg === 'ed25519' ? null : 'sha256'
  return {
    keyid: key.keyid,
    alg,
    publicKeyPem: key.public_key,
    key,
    sign: (data) => {
      const sig = new Uint8Array(sign(digest, data, priv))
      // verifiers accept only the low-S form of an ECDSA signature (one encoding per message)
      return alg === 'ed25519' ? sig : toLowSEcdsa(sig)
    },
  }
}
