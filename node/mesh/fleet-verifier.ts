/**
 * The mesh's verifier: `verifyEnvelope` from protocols/ with the node's context — the trust root
 * in force, the clock, the rollback floor per (type, key) kept from every accepted message, and
 * the enrollment status of devices: a device message is accepted only from a device that holds a
 * valid, unrevoked enrollment here (`ERR_NOT_ENROLLED`, `ERR_REVOKED`), checked before any crypto.
 * A second valid manifest of a model@version (or agent release of a version) already held, or
 * one sharing a held seq, passes the rollback check (see `secondManifest`).
 *
 * Trust roots move only by TUF-style rotation, never by "the newest root in the store":
 * - the root in force starts as the fleet directory's (itself verified along its signed chain);
 * - each envelope of the fleet directory's chain is known and accepted as is (so a node can hand
 *   the chain on to peers that hold an older fleet directory);
 * - an envelope for root v(current+1) is verified on its own first, against the current root's
 *   keys or the candidate root's own keys; one that fails is refused with its error (gossip
 *   penalises the sender). A verified one joins its payload's pool (rotation-pool.ts: one envelope
 *   per key, per-peer quotas), and `applyRootRotation` decides once a threshold of the old AND the
 *   new keys is in; only then does the root in force change. A verified envelope that does not
 *   complete a rotation yet is answered `ERR_THRESHOLD`, which gossip ignores rather than
 *   punishes: it may simply have arrived before its co-signatures.
 */

import { MAX_SIZE } from '../../protocols/constants.ts'
import {
  applyRootRotation,
  claimAdmissible,
  inviteOfClaim,
  parseJsonBytes,
  SeqTracker,
  sha256Hex,
  TrustRoot,
  tryFromBase64,
  type VerificationCode,
  VerificationError,
  type VerifyResult,
  verifyEnvelope,
  WireEnvelope,
} from '../../protocols/index.ts'
import type { MessageStore } from './message-store.ts'
import { RotationPool, type RotationPoolInit } from './rotation-pool.ts'
import type { MeshVerifier, VerifyOutcome } from './types.ts'

/** What the verifier needs. */
export interface FleetVerifierInit {
  /** The trust root from the fleet directory. */
  trust: TrustRoot
  /** The fleet directory's signed chain (`chain[i]` = envelopes of root v(i+1)), if known. */
  chain?: readonly (readonly Uint8Array[])[]
  store: MessageStore
  /** Quotas of pending rotations (defaults in node/mesh/constants.ts). */
  rotationPool?: RotationPoolInit
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
  const payload = tryFromBase64(p)
  if (payload === undefined) return undefined
  try {
    const root = TrustRoot.safeParse(JSON.parse(Buffer.from(payload).toString('utf8')))
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
  const pool = new RotationPool(init.rotationPool)

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
      deviceStatus: (device) =>
        store.revocationOf(device) !== undefined ? 'revoked' : store.isEnrolled(device, now) ? 'enrolled' : 'unknown',
    })

  const outcome = (res: VerifyResult): VerifyOutcome =>
    res.ok
      ? { ok: true, value: { digest: res.digest, type: res.type, message: res.message, signer: res.signer } }
      : { ok: false, error: res.error, id: res.id, claimedSigner: res.claimedSigner }

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

  /** Verifies one envelope of root `root` on its own, against `keys` (no rollback floor). */
  const alone = (bytes: Uint8Array, keys: TrustRoot['keys'], now: number): VerifyResult =>
    verifyEnvelope(bytes, { trust: { ...current, keys, expires_at: undefined }, now })

  const rotation = (bytes: Uint8Array, now: number, from: string): VerifyOutcome | undefined => {
    const peeked = peekRoot(bytes)
    if (peeked === undefined) return undefined // let verifyEnvelope say what is wrong
    const { root, payloadDigest } = peeked
    if (knownEnvelopes.has(sha256Hex(bytes))) return knownRoot(bytes, root.version, now)
    if (root.version <= current.version) {
      // a genuine envelope of a root already passed is an honest late copy: ignored; junk is refused
      const signedBy = roots.get(root.version) ?? roots.get(root.version - 1)
      if (signedBy !== undefined) {
        const own = knownRoot(bytes, root.version, now)
        if (!own.ok) return own
      }
      return refusal('ERR_ROLLBACK', `root v${root.version} is not newer than v${current.version}`)
    }
    if (root.version !== current.version + 1) {
      // its keys cannot be checked before v(current+1) is in force: not pooled, offered again later
      return refusal('ERR_THRESHOLD', `root v${root.version} waits for v${current.version + 1}`)
    }
    const byOld = alone(bytes, current.keys, now)
    const checked = byOld.ok ? byOld : alone(bytes, root.keys, now)
    if (!checked.ok) return { ok: false, error: byOld.ok ? checked.error : worse(byOld.error, checked.error) }
    const envelopes = pool.add(root, payloadDigest, checked.signer, byOld.ok, bytes, from)
    const res = applyRootRotation(current, envelopes, now)
    if (!res.ok) {
      if (res.error.code !== 'ERR_THRESHOLD') pool.drop(payloadDigest)
      return { ok: false, error: res.error }
    }
    const previous = current
    current = res.root
    roots.set(current.version, current)
    pool.settle(current.version)
    for (const env of envelopes) knownEnvelopes.add(sha256Hex(env))
    // Keep the co-signatures so that anti-entropy hands the whole rotation on.
    for (const env of envelopes) {
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

  for (const type of ['ReleaseManifest', 'AgentRelease', 'DeviceEnrollment', 'SwarmKeyRotation'] as const) {
    for (const m of store.list(type)) seq.record(m.message, m.digest)
  }
  // Re-apply rotations learnt before a restart, in version order.
  const stored = store.list('TrustRoot').sort((a, b) => a.message.version - b.message.version)
  for (const m of stored) if (m.message.version > current.version) rotation(m.bytes, Date.now(), 'disk')
  store.on('message', (m) => {
    if (m.type !== 'TrustRoot') seq.record(m.message, m.digest)
  })

  /**
   * A ReleaseManifest refused as a rollback is accepted when it is another valid manifest of a
   * model@version already held, or has the seq of a manifest of that model already held (two
   * operator nodes that allocated one seq): it installs nothing older, and holding it lets this
   * node resolve the release from the same set of manifests as every other node (protocols/
   * rollout/conflicts.ts), whatever order they arrived in. Any other lower seq stays refused.
   * An AgentRelease likewise, against the agent releases held (node/rollout/agent-releases.ts).
   */
  const secondManifest = (bytes: Uint8Array, now: number): VerifyResult | undefined => {
    // the same checks as `check` but the per-model seq (the point is to hold a lower seq)
    const res = verifyEnvelope(bytes, { trust: current, now, deviceStatus: () => 'unknown' })
    if (!res.ok) return undefined
    const m = res.message
    if (m.type !== 'AgentRelease' && m.type !== 'ReleaseManifest') return undefined
    const same = (r: { version: string; seq: number }) => r.version === m.version || r.seq === m.seq
    const held =
      m.type === 'AgentRelease'
        ? store.list('AgentRelease').some((r) => same(r.message))
        : store.releases().some((r) => r.message.model === m.model && same(r.message))
    return held ? res : undefined
  }

  /**
   * Membership rules on top of a verified message: a bare invite is never stored (it travels inside
   * the claims that present it), and a claim that can never win its invite is refused, so a leaked
   * invite cannot grow the store without bound (protocols/membership).
   */
  const membership = (res: Extract<VerifyResult, { ok: true }>): VerifyOutcome | undefined => {
    const m = res.message
    if (m.type === 'DeviceInvite')
      return refusal('ERR_UNKNOWN_TYPE', 'an invite travels only inside a claim', res.digest)
    if (m.type !== 'InviteClaim') return undefined
    const invite = inviteOfClaim(m)
    if (invite === undefined) return refusal('ERR_SCHEMA', 'the claim’s invite does not decode', res.digest)
    const held = store.claimsOf(invite.id)
    if (held.some((c) => c.digest === res.digest)) return undefined
    return claimAdmissible(held, { digest: res.digest, claim: m, invite })
      ? undefined
      : refusal('ERR_INVITE_USED', `invite ${invite.id} has more better-ranked claims than it can use`, res.digest)
  }

  const verifier = ((bytes: Uint8Array, now: number, from?: string): VerifyOutcome => {
    const rotated = rotation(bytes, now, from ?? 'local')
    if (rotated !== undefined) return rotated
    const res = check(bytes, current, now)
    if (!res.ok && res.error.code === 'ERR_ROLLBACK') return outcome(secondManifest(bytes, now) ?? res)
    if (res.ok) return membership(res) ?? outcome(res)
    return outcome(res)
  }) as FleetVerifier
  verifier.trust = () => current
  return verifier
}

function refusal(code: VerificationCode, message: string, id?: string): VerifyOutcome {
  return { ok: false, error: new VerificationError(code, message), ...(id === undefined ? {} : { id }) }
}

/**
 * Of the two refusals of an envelope checked against the old and the new keys, the telling one:
 * a key neither root holds is ERR_UNKNOWN_SIGNER under both, a key of one root with a bad
 * signature is ERR_BAD_SIGNATURE under that root.
 */
function worse(a: VerificationError, b: VerificationError): VerificationError {
  return a.code === 'ERR_UNKNOWN_SIGNER' ? b : a
}
