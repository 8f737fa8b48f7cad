/**
 * Operator signing: every operator message becomes a Sigstore bundle v0.3 holding one DSSE
 * envelope signed with the operator's local key (no Fulcio, no Rekor: `witnesses: []`).
 * Releases are in-toto statements (payload type `application/vnd.in-toto+json`); the other
 * operator messages are their RFC 8785 canonical JSON (payload type
 * `application/vnd.llmesh.operator+json`). The wire form wraps the bundle in a `WireEnvelope`.
 */
import { bundleToJSON } from '@sigstore/bundle'
import type { Signer } from '@sigstore/sign'
import { PAYLOAD_TYPE_IN_TOTO, PAYLOAD_TYPE_OPERATOR } from '../constants.ts'
import { canonicalBytes } from '../encoding.ts'
import { InvalidInputError } from '../errors.ts'
import { OPERATOR_TYPES, OperatorMessage } from '../schemas/index.ts'
import type { WireEnvelope } from '../wire.ts'
import type { OperatorSigner } from './operator-key.ts'
import { releaseStatement } from './statement.ts'

/** A Sigstore bundle in its JSON form (what `bundleToJSON` returns). */
export type BundleJson = Record<string, unknown>

/** The DSSE payload type and payload bytes of an operator message. */
export function operatorPayload(msg: OperatorMessage): { payloadType: string; payload: Uint8Array } {
  if (msg.type === 'ReleaseManifest') {
    return { payloadType: PAYLOAD_TYPE_IN_TOTO, payload: canonicalBytes(releaseStatement(msg)) }
  }
  return { payloadType: PAYLOAD_TYPE_OPERATOR, payload: canonicalBytes(msg) }
}

/** The operator key as a `@sigstore/sign` Signer (its keyid as the bundle's key hint). */
export function toSigstoreSigner(key: OperatorSigner): Signer {
  return {
    sign: async (data) => ({
      signature: Buffer.from(key.sign(data)),
      key: { $case: 'publicKey', publicKey: key.publicKeyPem, hint: key.keyid },
    }),
  }
}

/**
 * Signs an operator message as a Sigstore bundle and returns the bundle's JSON.
 * Validates (and normalizes, filling schema defaults) the message first; throws
 * InvalidInputError if it does not match its schema.
 */
export async function signOperatorBundle(msg: OperatorMessage, key: OperatorSigner): Promise<BundleJson> {
  const parsed = OperatorMessage.safeParse(msg)
  if (!parsed.success) throw new InvalidInputError(`invalid ${msg?.type ?? 'message'}: ${parsed.error.message}`)
  const { payloadType, payload } = operatorPayload(parsed.data)
  // loaded on first use: only signers need it (~9 MB RSS a device daemon would hold for nothing)
  const { DSSEBundleBuilder } = await import('@sigstore/sign')
  const builder = new DSSEBundleBuilder({ signer: toSigstoreSigner(key), witnesses: [] })
  const bundle = await builder.create({ data: Buffer.from(payload), type: payloadType })
  return JSON.parse(JSON.stringify(bundleToJSON(bundle))) as BundleJson
}

/** Wraps a bundle JSON in the operator wire envelope and returns its canonical bytes. */
export function operatorEnvelopeBytes(type: OperatorMessage['type'], bundle: BundleJson): Uint8Array {
  if (!(OPERATOR_TYPES as readonly string[]).includes(type))
    throw new InvalidInputError(`not an operator type: ${type}`)
  const env: WireEnvelope = { kind: 'operator', type, bundle }
  return canonicalBytes(env)
}

/**
 * Signs an operator message and returns its wire bytes (canonical JSON of the `WireEnvelope`).
 * For a ReleaseManifest the in-toto subject digest is `msg.file.sha256`.
 */
export async function signOperatorMessage(msg: OperatorMessage, key: OperatorSigner): Promise<Uint8Array> {
  return operatorEnvelopeBytes(msg.type, await signOperatorBundle(msg, key))
}
