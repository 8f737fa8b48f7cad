/**
 * Migration of operator envelopes signed before verification became strict: an ECDSA signature
 * made by an older signer is high-S half of the time, and older bundles may carry an empty
 * `keyid`. Neither is covered by the signature, so the envelope can be rewritten into its one
 * accepted form without the key. Used on the node's own trusted inputs (its fleet directory's
 * chain, its message log), never to accept bytes from the network.
 */
import { bundleFromJSON, bundleToJSON, isBundleWithDsseEnvelope, isBundleWithPublicKey } from '@sigstore/bundle'
import { canonicalBytes, parseJsonBytes } from '../encoding.ts'
import { parseEcdsaDer, toLowSEcdsa } from './signature-form.ts'

/**
 * The strict form of an operator wire envelope (low-S signature, keyid = key hint, canonical
 * bundle JSON); any other bytes are returned as they are. Never throws.
 */
export function normalizeOperatorWire(bytes: Uint8Array): Uint8Array {
  try {
    const parsed = parseJsonBytes(bytes, bytes.byteLength)
    if (!parsed.ok) return bytes
    const env = parsed.value as { kind?: unknown; type?: unknown; bundle?: unknown }
    if (env?.kind !== 'operator') return bytes
    const bundle = bundleFromJSON(env.bundle)
    if (!isBundleWithDsseEnvelope(bundle) || !isBundleWithPublicKey(bundle)) return bytes
    const dsse = bundle.content.dsseEnvelope
    if (dsse.signatures.length !== 1) return bytes
    const sig = dsse.signatures[0]
    sig.keyid = bundle.verificationMaterial.content.publicKey.hint
    if (parseEcdsaDer(sig.sig) !== undefined) sig.sig = Buffer.from(toLowSEcdsa(sig.sig))
    const json = JSON.parse(JSON.stringify(bundleToJSON(bundle)))
    return canonicalBytes({ kind: env.kind, type: env.type, bundle: json })
  } catch {
    return bytes
  }
}
