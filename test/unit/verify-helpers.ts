/** What the verification tests (verify.test.ts, verify-device.test.ts) share: a trusted operator and envelope edits. */
import {
  canonicalBytes,
  createOperatorSigner,
  fromBase64,
  type GeneratedOperatorKey,
  type OperatorSigner,
  type TrustRoot,
  toBase64,
  type VerifyContext,
  type verifyEnvelope,
} from '../../protocols/index.ts'
import { exampleOperator, NOW } from '../fixtures/messages.ts'

/** A fresh operator key, the trust root holding it, its signer, and a context trusting it at NOW. */
export function operatorFixture(): {
  op: GeneratedOperatorKey
  root: TrustRoot
  signer: OperatorSigner
  ctx: VerifyContext
} {
  const { op, root } = exampleOperator()
  const signer = createOperatorSigner(op.privateKeyPem)
  return { op, root, signer, ctx: { trust: root, now: NOW } }
}

/** Parsed JSON the tests poke at. */
// biome-ignore lint/suspicious/noExplicitAny: tests poke at arbitrary JSON
export type Json = Record<string, any>
/** The parsed wire envelope. */
export const decode = (b: Uint8Array): Json => JSON.parse(Buffer.from(b).toString('utf8'))
/** Edits the parsed envelope and re-encodes it canonically. */
export function tamper(wire: Uint8Array, edit: (env: Json) => void): Uint8Array {
  const env = decode(wire)
  edit(env)
  return canonicalBytes(env)
}
/** The base64 text with one bit of byte `index` flipped. */
export function flipBase64Byte(b64: string, index: number): string {
  const bytes = fromBase64(b64)
  bytes[index] ^= 0x01
  return toBase64(bytes)
}
/** `OK` or the refusal's code. */
export function code(r: ReturnType<typeof verifyEnvelope>): string {
  return r.ok ? 'OK' : r.error.code
}
