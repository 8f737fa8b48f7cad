/**
 * Trust-root rotation, as TUF rotates root metadata: root N+1 is accepted only when it is
 * signed by a threshold of root N's keys AND a threshold of its own keys, its version is exactly
 * N+1 (so versions only grow, and a device that missed rotations applies them in order with
 * `applyRootChain`), it names the same fleet, and it has not expired. The current root's own
 * expiry does not block a rotation (that is how a frozen device recovers).
 *
 * Each signature is a separate operator wire envelope (one Sigstore bundle per key, as a bundle
 * carries exactly one signature) over the same canonical TrustRoot payload. Envelopes that carry
 * a different payload (mix-and-match), bad signatures and unknown keys count for nothing.
 */
import { CLOCK_SKEW_MS, MAX_SIZE, PAYLOAD_TYPE_OPERATOR } from '../constants.ts'
import { parseJsonBytes, sha256Hex, tryFromBase64 } from '../encoding.ts'
import { type VerificationCode, VerificationError } from '../errors.ts'
import { type OperatorKey, TrustRoot } from '../schemas/index.ts'
import { openOperatorBundle } from '../signing/open-bundle.ts'
import { WireEnvelope } from '../wire.ts'

/** Outcome of a rotation. */
export type RotationResult = { ok: true; root: TrustRoot } | { ok: false; error: VerificationError }

const fail = (code: VerificationCode, message: string): RotationResult => ({
  ok: false,
  error: new VerificationError(code, message),
})

interface Signed {
  payloadDigest: string
  payload: Uint8Array
  bundle: unknown
}

function decode(wire: Uint8Array): Signed | undefined {
  const parsed = parseJsonBytes(wire, MAX_SIZE.TrustRoot)
  if (!parsed.ok) return undefined
  const env = WireEnvelope.safeParse(parsed.value)
  if (!env.success || env.data.kind !== 'operator' || env.data.type !== 'TrustRoot') return undefined
  const p = (env.data.bundle as { dsseEnvelope?: { payload?: unknown } }).dsseEnvelope?.payload
  if (typeof p !== 'string') return undefined
  const payload = tryFromBase64(p)
  if (payload === undefined) return undefined
  return { payloadDigest: sha256Hex(payload), payload, bundle: env.data.bundle }
}

/** keyids among `keys` with a valid signature over `payloadDigest` in `signed`. */
function validSigners(signed: Signed[], payloadDigest: string, keys: readonly OperatorKey[]): Set<string> {
  const out = new Set<string>()
  for (const s of signed) {
    if (s.payloadDigest !== payloadDigest) continue
    const opened = openOperatorBundle(s.bundle, keys)
    if (opened.ok && opened.payloadType === PAYLOAD_TYPE_OPERATOR) out.add(opened.keyid)
  }
  return out
}

/** Parses the TrustRoot the envelopes carry; all must carry the same one. */
function candidate(
  wire: readonly Uint8Array[],
): { signed: Signed[]; root: TrustRoot; digest: string } | RotationResult {
  if (!Array.isArray(wire) || wire.length === 0) return fail('ERR_SCHEMA', 'no signed trust root given')
  const signed: Signed[] = []
  for (const w of wire) {
    const s = w instanceof Uint8Array ? decode(w) : undefined
    if (s === undefined) return fail('ERR_SCHEMA', 'not a signed TrustRoot envelope')
    signed.push(s)
  }
  const digest = signed[0].payloadDigest
  if (signed.some((s) => s.payloadDigest !== digest)) {
    return fail('ERR_SCHEMA', 'the envelopes sign different trust roots (mix-and-match)')
  }
  const json = parseJsonBytes(signed[0].payload, MAX_SIZE.TrustRoot)
  if (!json.ok) return { ok: false, error: json.error }
  const root = TrustRoot.safeParse(json.value)
  if (!root.success) return fail('ERR_SCHEMA', `bad TrustRoot: ${root.error.issues[0]?.message ?? 'invalid'}`)
  if (new Set(root.data.keys.map((k) => k.keyid)).size !== root.data.keys.length) {
    return fail('ERR_SCHEMA', 'TrustRoot lists a key twice')
  }
  if (root.data.threshold > root.data.keys.length) return fail('ERR_SCHEMA', 'TrustRoot threshold exceeds its keys')
  return { signed, root: root.data, digest }
}

function checkOwnSignatures(
  signed: Signed[],
  digest: string,
  root: TrustRoot,
  now: number,
  checkExpiry = true,
): RotationResult {
  const own = validSigners(signed, digest, root.keys)
  if (own.size < root.threshold) {
    return fail(
      'ERR_THRESHOLD',
      `root v${root.version} carries ${own.size} of the ${root.threshold} signatures of its own keys`,
    )
  }
  if (checkExpiry && root.expires_at !== undefined && root.expires_at <= now) {
    return fail('ERR_EXPIRED', `root v${root.version} has expired`)
  }
  if (root.created_at > now + CLOCK_SKEW_MS) return fail('ERR_FUTURE', `root v${root.version} is dated in the future`)
  return { ok: true, root }
}

/**
 * Verifies a self-signed trust root (first root of a fleet, trusted on first use from the fleet
 * directory): its envelopes carry a threshold of signatures of its own keys and it is unexpired
 * (`checkExpiry` false skips the expiry, for the first root of a longer chain).
 */
export function verifyRootSelfSigned(wire: readonly Uint8Array[], now: number, checkExpiry = true): RotationResult {
  const c = candidate(wire)
  if ('ok' in c) return c
  return checkOwnSignatures(c.signed, c.digest, c.root, now, checkExpiry)
}

/** Applies one rotation: returns the new root, or why it is refused. Never throws. */
export function applyRootRotation(current: TrustRoot, wire: readonly Uint8Array[], now: number): RotationResult {
  return rotate(current, wire, now, true)
}

function rotate(current: TrustRoot, wire: readonly Uint8Array[], now: number, checkExpiry: boolean): RotationResult {
  try {
    const c = candidate(wire)
    if ('ok' in c) return c
    const { signed, root, digest } = c
    if (root.fleet !== current.fleet)
      return fail('ERR_WRONG_FLEET', `root is for fleet ${root.fleet}, not ${current.fleet}`)
    if (root.version <= current.version) {
      return fail('ERR_ROLLBACK', `root v${root.version} is not newer than the current v${current.version}`)
    }
    if (root.version !== current.version + 1) {
      return fail('ERR_SCHEMA', `root v${root.version} skips versions: apply v${current.version + 1} first`)
    }
    const old = validSigners(signed, digest, current.keys)
    if (old.size < current.threshold) {
      return fail(
        'ERR_THRESHOLD',
        `root v${root.version} carries ${old.size} of the ${current.threshold} signatures of root v${current.version}'s keys`,
      )
    }
    return checkOwnSignatures(signed, digest, root, now, checkExpiry)
  } catch (err) {
    return fail('ERR_SCHEMA', `unverifiable rotation: ${(err as Error)?.message ?? String(err)}`)
  }
}

/**
 * Applies rotations in order (v+1, v+2, …); stops at the first refusal. As in TUF, only the
 * last root of the chain must be unexpired: intermediate roots may have expired meanwhile.
 */
export function applyRootChain(
  current: TrustRoot,
  chain: readonly (readonly Uint8Array[])[],
  now: number,
): RotationResult {
  let root = current
  for (const [i, step] of chain.entries()) {
    const r = rotate(root, step, now, i === chain.length - 1)
    if (!r.ok) return r
    root = r.root
  }
  return { ok: true, root }
}
