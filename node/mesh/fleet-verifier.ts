/**
 * The mesh's verifier: `verifyEnvelope` from protocols/ with the node's context — the trust root
 * in force, the clock, the rollback floor per (type, key) kept from every accepted message, and
 * revocations (a revoked device's messages are refused; an unenrolled device's are accepted, and
 * rollout decisions count only enrolled devices). A second valid manifest of a model@version
 * already held passes the rollback check (see `secondManifest`).
 *
 * Trust roots move only by TUF-style rotation, never by "the newest root in the store":
 * - the root in force starts as the fleet directory's (itself verified along its signed chain);
 * - each envelope of the fleet directory's chain is known and accepted as is (so a node can hand
 *   the chain on to peers that hold an older fleet directory);
 * - an envelope for root v(current+1) is pooled with the other envelopes of the same payload seen
 *   so far; `applyRootRotation` decides, once enough signatures of the old AND the new keys are in
 *   the pool, and only then does the root in force change. An envelope that does not complete a
 *   rotation yet is kept (bounded) and answered with `ERR_THRESHOLD`, which the gossip validator
 *   ignores rather than punishes, because it may simply have arrived before its co-signatures.
 */

import { MAX_SIZE } from '../../protocols/constants.ts'
import {
  applyRootRotation,
  parseJsonBytes,
  SeqTracker,
  sha256Hex,
  TrustRoot,
  VerificationError,
  type VerifyResult,
  verifyEnvelope,
  WireEnvelope,
} from '../../protocols/index.ts'
import type { MessageStore } from './message-store.ts'
import type { MeshVerifier, VerifyOutcome } from './types.ts'

/** At most this many distinct pending root payloads are pooled. */
const MAX_PENDING_ROOTS = 8
/** At most this many envelopes per pending root payload. */
const MAX_ENVELOPES_PER_ROOT = 32

/** What the verifier needs. */
export interface FleetVerifierInit {
  /** The trust root from the fleet directory. */
  trust: TrustRoot
  /** The fleet directory's signed chain (`chain[i]` = envelopes of root v(i+1)), if known. */
  chain?: readonly (readonly Uint8Array[])[]
  store: MessageStore
}

/** The verifier, plus the trust root it holds in force. */
export interface FleetVerifier extends MeshVerifier {
  /** The trust root in force (changes only through a valid rotation). */
  trust(): TrustRoot
}

/** Decodes the TrustRoot an operator envelope carries, without checking signatures. */
function peekRoot(bytes: Uint8Array): { root: TrustRoot; payloadDigest: string } | undefined {
  const parsed = parseJsonBytes(bytes, MAX_SIZE.TrustRoot)
  if (!parsed.ok) return undefined
  const env = WireEnvelope.safeParse(parsed.value)
  if (!env.success || env.data.kind !== 'operator' || env.data.type !== 'TrustRoot') return undefined
  const p = (env.data.bundle as { dsseEnvelope?: { payload?: unknown } }).dsseEnvelope?.payload
  if (typeof p !== 'string') return undefined
  const payload = Buffer.from(p, 'base64')
  try {
    const root = TrustRoot.safeParse(JSON.parse(payload.toString('utf8')))
    return root.success ? { root: root.data, payloadDigest: sha256Hex(payload) } : undefined
  } catch {
    return undefined
  }
}

/**
 * Builds the verifier and keeps its rollback tracker fed from the store (messages loaded from disk
 * and every newly accepted one).
 */
export function createFleetVerifier(init: FleetVerifierInit): FleetVerifier {
  const { store } = init
  const seq = new SeqTracker()
  let current = init.trust
  /** Roots of the known chain by version, and the digests of their envelopes. */
  const roots = new Map<number, TrustRoot>([[current.version, current]])
  const knownEnvelopes = new Set<string>()
  const pending = new Map<string, Uint8Array[]>()

  for (const step of init.chain ?? []) {
    for (const env of step) {
      knownEnvelopes.add(sha256Hex(env))
      const peeked = peekRoot(env)
      if (peeked !== undefined && !roots.has(peeked.root.version)) roots.set(peeked.root.version, peeked.root)
    }
  }

  const check = (bytes: Uint8Array, trust: TrustRoot, now: number): VerifyResult =>
    verifyEnvelope(bytes, {
      trust,
      now,
      highestSeq: seq.highestSeq,
      seenDigest: seq.seenDigest,
      deviceStatus: (device) => (store.revocationOf(device) !== undefined ? 'revoked' : 'enrolled'),
    })

  const outcome = (res: VerifyResult): VerifyOutcome =>
    res.ok ? { ok: true, value: { digest: res.digest, type: res.type, message: res.message, signer: res.signer } } : res

  /** Verifies an envelope of a root of the known chain, under its own root or its predecessor. */
  const knownRoot = (bytes: Uint8Array, version: number, now: number): VerifyOutcome => {
    for (const v of [version, version - 1]) {
      const trust = roots.get(v)
      if (trust === undefined) continue
      const res = verifyEnvelope(bytes, { trust: { ...trust, expires_at: undefined }, now })
      if (res.ok) return outcome(res)
    }
    return {
      ok: false,
      error: new VerificationError('ERR_UNKNOWN_SIGNER', `root v${version} envelope is not signed by its chain`),
    }
  }

  const rotation = (bytes: Uint8Array, now: number): VerifyOutcome | undefined => {
    const peeked = peekRoot(bytes)
    if (peeked === undefined) return undefined // let verifyEnvelope say what is wrong
    const { root, payloadDigest } = peeked
    if (knownEnvelopes.has(sha256Hex(bytes))) return knownRoot(bytes, root.version, now)
    if (root.version <= current.version) {
      return {
        ok: false,
        error: new VerificationError('ERR_ROLLBACK', `root v${root.version} is not newer than v${current.version}`),
      }
    }
    const pool = pending.get(payloadDigest) ?? []
    if (!pool.some((b) => Buffer.compare(b, bytes) === 0) && pool.length < MAX_ENVELOPES_PER_ROOT) pool.push(bytes)
    if (!pending.has(payloadDigest)) {
      if (pending.size >= MAX_PENDING_ROOTS) pending.delete(pending.keys().next().value as string)
      pending.set(payloadDigest, pool)
    }
    if (root.version !== current.version + 1) {
      return {
        ok: false,
        error: new VerificationError('ERR_THRESHOLD', `root v${root.version} waits for v${current.version + 1}`),
      }
    }
    const res = applyRootRotation(current, pool, now)
    if (!res.ok) {
      if (res.error.code !== 'ERR_THRESHOLD') pool.splice(pool.indexOf(bytes), 1)
      return { ok: false, error: res.error }
    }
    const previous = current
    current = res.root
    roots.set(current.version, current)
    pending.delete(payloadDigest)
    for (const env of pool) knownEnvelopes.add(sha256Hex(env))
    // Keep the co-signatures so that anti-entropy hands the whole rotation on.
    for (const env of pool) {
      if (env === bytes) continue
      const other = knownRoot(env, current.version, now)
      if (other.ok && !store.has(other.value.digest)) store.add(other.value, env)
    }
    const mine = knownRoot(bytes, current.version, now)
    if (mine.ok) {
      seq.record(mine.value.message, mine.value.digest)
      return mine
    }
    current = previous
    return mine
  }

  for (const type of ['ReleaseManifest', 'DeviceEnrollment'] as const) {
    for (const m of store.list(type)) seq.record(m.message, m.digest)
  }
  // Re-apply rotations learnt before a restart, in version order.
  const stored = store.list('TrustRoot').sort((a, b) => a.message.version - b.message.version)
  for (const m of stored) if (m.message.version > current.version) rotation(m.bytes, Date.now())
  store.on('message', (m) => {
    if (m.type !== 'TrustRoot') seq.record(m.message, m.digest)
  })

  /**
   * A ReleaseManifest refused as a rollback is accepted when it is another valid manifest of a
   * model@version already held: it installs nothing older, and holding it lets this node resolve
   * the release from the same set of manifests as every other node (protocols/rollout/
   * conflicts.ts), whatever order they arrived in. A lower seq for any other version stays refused.
   */
  const secondManifest = (bytes: Uint8Array, now: number): VerifyResult | undefined => {
    const res = verifyEnvelope(bytes, {
      trust: current,
      now,
      deviceStatus: (device) => (store.revocationOf(device) !== undefined ? 'revoked' : 'enrolled'),
    })
    if (!res.ok || res.message.type !== 'ReleaseManifest') return undefined
    const m = res.message
    return store.releases().some((r) => r.message.model === m.model && r.message.version === m.version)
      ? res
      : undefined
  }

  const verifier = ((bytes: Uint8Array, now: number): VerifyOutcome => {
    const rotated = rotation(bytes, now)
    if (rotated !== undefined) return rotated
    const res = check(bytes, current, now)
    if (!res.ok && res.error.code === 'ERR_ROLLBACK') return outcome(secondManifest(bytes, now) ?? res)
    return outcome(res)
  }) as FleetVerifier
  verifier.trust = () => current
  return verifier
}
