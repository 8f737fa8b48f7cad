/**
 * DSSE pre-authentication encoding (PAE), the bytes every llmesh signature covers:
 * `"DSSEv1" SP len(type) SP type SP len(payload) SP payload` (lengths in ASCII decimal bytes).
 * Binding the payload type into the signed bytes separates operator, in-toto and device domains.
 */
const encoder = new TextEncoder()

/** DSSE PAE of (payloadType, payload). */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = encoder.encode(payloadType)
  const head = encoder.encode(`DSSEv1 ${type.byteLength} `)
  const mid = encoder.encode(` ${payload.byteLength} `)
  const out = new Uint8Array(head.byteLength + type.byteLength + mid.byteLength + payload.byteLength)
  let at = 0
  for (const part of [head, type, mid, payload]) {
    out.set(part, at)
    at += part.byteLength
  }
  return out
}
