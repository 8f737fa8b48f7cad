/**
 * One encoding per signature. An ECDSA signature (r, s) has a twin (r, n - s) that verifies just as
 * well, so anyone could re-encode an operator message without its key; llmesh accepts only the
 * low-S form (s <= n/2, as Bitcoin's BIP 62 and Ethereum's EIP-2 do) in strict DER, and its signer
 * produces only that form. An Ed25519 signature must carry a reduced scalar (S < L, RFC 8032
 * §5.1.7); OpenSSL refuses the others too, the check here keeps the rule whatever verifies.
 */

/** Order of the P-256 group. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n
const P256_HALF_N = P256_N >> 1n
/** Order of the Ed25519 base point. */
const ED25519_L = (1n << 252n) + 27742317777372353535851937790883648493n

function toBigInt(bytes: Uint8Array): bigint {
  return bytes.byteLength === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`)
}

/** Reads one strict-DER INTEGER at `at`: minimal length and content, positive. */
function readInteger(der: Uint8Array, at: number): { value: bigint; next: number } | undefined {
  if (der[at] !== 0x02) return undefined
  const len = der[at + 1]
  if (len === undefined || len === 0 || len > 33 || at + 2 + len > der.byteLength) return undefined
  const body = der.subarray(at + 2, at + 2 + len)
  if (body[0] & 0x80) return undefined // negative
  if (len > 1 && body[0] === 0 && !(body[1] & 0x80)) return undefined // non-minimal
  return { value: toBigInt(body), next: at + 2 + len }
}

/** (r, s) of a strict-DER ECDSA signature, or undefined when it is not strict DER. */
export function parseEcdsaDer(der: Uint8Array): { r: bigint; s: bigint } | undefined {
  if (der.byteLength < 8 || der.byteLength > 72 || der[0] !== 0x30 || der[1] !== der.byteLength - 2) return undefined
  const r = readInteger(der, 2)
  if (r === undefined) return undefined
  const s = readInteger(der, r.next)
  if (s === undefined || s.next !== der.byteLength) return undefined
  return { r: r.value, s: s.value }
}

function encodeInteger(v: bigint): Uint8Array {
  let hex = v.toString(16)
  if (hex.length % 2 === 1) hex = `0${hex}`
  let body = Buffer.from(hex, 'hex')
  if (body[0] & 0x80) body = Buffer.concat([Buffer.from([0]), body])
  return Buffer.concat([Buffer.from([0x02, body.byteLength]), body])
}

/** Whether a P-256 ECDSA signature is strict DER with 0 < r < n and 0 < s <= n/2. */
export function isLowSEcdsa(der: Uint8Array): boolean {
  const rs = parseEcdsaDer(der)
  return rs !== undefined && rs.r > 0n && rs.r < P256_N && rs.s > 0n && rs.s <= P256_HALF_N
}

/** The low-S twin of a P-256 ECDSA DER signature (the same signature when already low-S). */
export function toLowSEcdsa(der: Uint8Array): Uint8Array {
  const rs = parseEcdsaDer(der)
  if (rs === undefined) throw new TypeError('not a strict-DER ECDSA signature')
  if (rs.s <= P256_HALF_N) return der
  const r = encodeInteger(rs.r)
  const s = encodeInteger(P256_N - rs.s)
  return new Uint8Array(Buffer.concat([Buffer.from([0x30, r.byteLength + s.byteLength]), r, s]))
}

/** Whether an Ed25519 signature is 64 bytes with a reduced scalar S < L. */
export function isCanonicalEd25519(sig: Uint8Array): boolean {
  if (sig.byteLength !== 64) return false
  const s = toBigInt(Buffer.from(sig.subarray(32)).reverse())
  return s < ED25519_L
}
