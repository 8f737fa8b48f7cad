/**
 * Offline verification of one operator Sigstore bundle against a set of trusted operator keys:
 * media type v0.3, a DSSE envelope with exactly one signature, a public-key hint naming a trusted
 * key, and the signature over the DSSE PAE (checked by `@sigstore/verify`'s Verifier with every
 * transparency-log, CT-log and timestamp threshold at 0, as no Rekor or TSA is involved).
 * Returns the authenticated payload; never throws.
 *
 * One encoding per bundle: the JSON must be exactly what `bundleToJSON` makes of it (no unknown or
 * missing fields, canonical base64), the signature's `keyid` must equal the key hint, an ECDSA
 * signature must be low-S and an Ed25519 one reduced (see signature-form.ts). Anything else is
 * ERR_SCHEMA (encoding) or ERR_BAD_SIGNATURE (signature form), so nobody can re-encode an operator
 * message into a second valid form without the key.
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { bundleFromJSON, bundleToJSON, isBundleWithDsseEnvelope, isBundleWithPublicKey } from '@sigstore/bundle'
import { type TrustMaterial, toSignedEntity, Verifier } from '@sigstore/verify'
import { SIGSTORE_BUNDLE_MEDIA_TYPE } from '../constants.ts'
import { canonicalJson } from '../encoding.ts'
import { VerificationError } from '../errors.ts'
import type { OperatorKey } from '../schemas/index.ts'
import { isCanonicalEd25519, isLowSEcdsa } from './signature-form.ts'

/** The authenticated content of an operator bundle. */
export interface OpenedBundle {
  ok: true
  /** keyid of the operator key that signed it. */
  keyid: string
  payloadType: string
  payload: Uint8Array
}

const keyCache = new Map<string, KeyObject>()

function publicKeyObject(k: OperatorKey): KeyObject {
  let obj = keyCache.get(k.public_key)
  if (obj === undefined) {
    obj = createPublicKey(k.public_key)
    if (keyCache.size > 256) keyCache.clear()
    keyCache.set(k.public_key, obj)
  }
  return obj
}

function trustMaterial(key: KeyObject): TrustMaterial {
  return {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    publicKey: () => ({ publicKey: key, validFor: () => true }),
  }
}

/** Verifies an operator bundle (JSON form) against `keys`. */
export function openOperatorBundle(
  bundleJson: unknown,
  keys: readonly OperatorKey[],
): OpenedBundle | { ok: false; error: VerificationError } {
  const fail = (code: 'ERR_SCHEMA' | 'ERR_UNKNOWN_SIGNER' | 'ERR_BAD_SIGNATURE', msg: string, cause?: unknown) => ({
    ok: false as const,
    error: new VerificationError(code, msg, { cause }),
  })
  if ((bundleJson as { mediaType?: unknown })?.mediaType !== SIGSTORE_BUNDLE_MEDIA_TYPE) {
    return fail('ERR_SCHEMA', `bundle media type is not ${SIGSTORE_BUNDLE_MEDIA_TYPE}`)
  }
  let bundle: ReturnType<typeof bundleFromJSON>
  try {
    bundle = bundleFromJSON(bundleJson)
  } catch (err) {
    return fail('ERR_SCHEMA', `not a Sigstore bundle: ${(err as Error).message}`, err)
  }
  if (!isBundleWithDsseEnvelope(bundle)) return fail('ERR_SCHEMA', 'bundle does not carry a DSSE envelope')
  if (!isBundleWithPublicKey(bundle)) return fail('ERR_SCHEMA', 'bundle is not signed with a public key')
  const env = bundle.content.dsseEnvelope
  if (env.signatures.length !== 1) return fail('ERR_SCHEMA', 'DSSE envelope must carry exactly one signature')
  const hint = bundle.verificationMaterial.content.publicKey.hint
  if (env.signatures[0].keyid !== hint) return fail('ERR_SCHEMA', 'DSSE signature keyid is not the key hint')
  if (!isCanonicalBundleJson(bundle, bundleJson)) return fail('ERR_SCHEMA', 'bundle is not in its canonical form')
  const key = keys.find((k) => k.keyid === hint)
  if (key === undefined) return fail('ERR_UNKNOWN_SIGNER', `key ${hint.slice(0, 16)}… is not in the trust root`)
  let keyObject: KeyObject
  try {
    keyObject = publicKeyObject(key)
  } catch (err) {
    return fail('ERR_UNKNOWN_SIGNER', 'trust root key is unusable', err)
  }
  const sig = env.signatures[0].sig
  const canonicalSig = keyObject.asymmetricKeyType === 'ed25519' ? isCanonicalEd25519(sig) : isLowSEcdsa(sig)
  if (!canonicalSig) return fail('ERR_BAD_SIGNATURE', 'signature is not in its canonical (low-S, strict) form')
  try {
    const verifier = new Verifier(trustMaterial(keyObject), {
      tlogThreshold: 0,
      ctlogThreshold: 0,
      timestampThreshold: 0,
    })
    verifier.verify(toSignedEntity(bundle))
  } catch (err) {
    return fail('ERR_BAD_SIGNATURE', `bad signature: ${(err as Error).message}`, err)
  }
  return { ok: true, keyid: key.keyid, payloadType: env.payloadType, payload: new Uint8Array(env.payload) }
}

/** Whether the bundle JSON is exactly what `bundleToJSON` makes of its parsed form. */
function isCanonicalBundleJson(bundle: Parameters<typeof bundleToJSON>[0], json: unknown): boolean {
  try {
    return canonicalJson(JSON.parse(JSON.stringify(bundleToJSON(bundle)))) === canonicalJson(json)
  } catch {
    return false
  }
}
