/**
 * Canonical encoding: every signed payload and every wire envelope is JSON canonicalized by
 * RFC 8785 (JCS: sorted keys, no insignificant whitespace, ECMAScript number formatting), UTF-8.
 * The same value always encodes to the same bytes, so digests and signatures are reproducible.
 */
import { createHash } from 'node:crypto'
import canonicalizeImport from 'canonicalize'
import { VerificationError } from './errors.ts'

const canonicalize = canonicalizeImport as unknown as (value: unknown) => string | undefined

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** RFC 8785 canonical JSON string of a value. Throws on values JSON cannot represent. */
export function canonicalJson(value: unknown): string {
  const out = canonicalize(value)
  if (out === undefined) throw new TypeError('value has no JSON representation')
  return out
}

/** RFC 8785 canonical JSON bytes of a value. */
export function canonicalBytes(value: unknown): Uint8Array {
  return encoder.encode(canonicalJson(value))
}

/**
 * Parses UTF-8 JSON bytes, refusing anything over `maxSize` before parsing.
 * Returns a typed error instead of throwing.
 */
export function parseJsonBytes(
  bytes: Uint8Array,
  maxSize: number,
): { ok: true; value: unknown } | { ok: false; error: VerificationError } {
  if (bytes.byteLength > maxSize) {
    return {
      ok: false,
      error: new VerificationError(
        'ERR_OVERSIZED',
        `message of ${bytes.byteLength} bytes exceeds the limit of ${maxSize}`,
      ),
    }
  }
  try {
    return { ok: true, value: JSON.parse(decoder.decode(bytes)) }
  } catch (err) {
    return { ok: false, error: new VerificationError('ERR_SCHEMA', `not valid UTF-8 JSON: ${(err as Error).message}`) }
  }
}

/** Hex sha256 of bytes. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Base64 (standard alphabet, padded). */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

/**
 * Decodes standard, padded base64 strictly: the text must be exactly what `toBase64` makes of the
 * decoded bytes (no whitespace, no missing or extra padding, no non-zero bits in the last
 * character's unused low bits), so one byte string has one text. Throws a TypeError otherwise.
 */
export function fromBase64(text: string): Uint8Array {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new TypeError('invalid base64')
  }
  const bytes = Buffer.from(text, 'base64')
  if (bytes.toString('base64') !== text) throw new TypeError('non-canonical base64')
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** `fromBase64` as a result: the bytes, or undefined when the text is not canonical base64. */
export function tryFromBase64(text: unknown): Uint8Array | undefined {
  if (typeof text !== 'string') return undefined
  try {
    return fromBase64(text)
  } catch {
    return undefined
  }
}

/** Whether bytes are UTF-8 JSON in RFC 8785 canonical form (what `canonicalBytes` makes of their value). */
export function isCanonicalJsonBytes(bytes: Uint8Array, value: unknown): boolean {
  try {
    return canonicalJson(value) === decoder.decode(bytes)
  } catch {
    return false
  }
}

/**
 * `value` with every array (at any depth) replaced by an exact-size copy; objects are kept and
 * updated in place. zod builds each array it outputs by pushing, and V8 gives a pushed array room
 * for 17 elements: a 2-element latency bin took ~170 bytes of heap. A verified message is kept
 * for days, so the verifier compacts what it returns: a maximum-size health report (64 KiB on the
 * wire, 5,573 bins) took 1,047 KiB of heap, compacted 394 KiB (`bench/report-heap.ts`).
 */
export function compactArrays<T>(value: T): T {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = compactArrays(value[i])
    return value.slice() as T
  }
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>
    for (const k of Object.keys(o)) {
      const v = o[k]
      if (v !== null && typeof v === 'object') o[k] = compactArrays(v)
    }
  }
  return value
}
