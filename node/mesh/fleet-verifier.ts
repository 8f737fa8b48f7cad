/**
 * The mesh's verifier: `verifyEnvelope` from protocols/ with the node's context — the fleet's
 * trust root (or a newer one accepted since), the clock, the rollback floor per (type, key) kept
 * from every accepted message, and revocations (a revoked device's messages are refused; an
 * unenrolled device's are accepted, and rollout decisions count only enrolled devices).
 */
import { SeqTracker, type TrustRoot, verifyEnvelope } from '../../protocols/index.ts'
import type { MessageStore } from './message-store.ts'
import type { MeshVerifier, VerifyOutcome } from './types.ts'

/** What the verifier needs. */
export interface FleetVerifierInit {
  /** The trust root from the fleet directory. */
  trust: TrustRoot
  store: MessageStore
}

/**
 * Builds the verifier and keeps its rollback tracker fed from the store (messages loaded from disk
 * and every newly accepted one).
 */
export function createFleetVerifier(init: FleetVerifierInit): MeshVerifier {
  const { store } = init
  const seq = new SeqTracker()
  for (const type of ['TrustRoot', 'ReleaseManifest', 'DeviceEnrollment', 'HealthReport'] as const) {
    for (const m of store.list(type)) seq.record(m.message, m.digest)
  }
  store.on('message', (m) => seq.record(m.message, m.digest))
  const trust = (): TrustRoot => {
    const newer = store.latestTrustRoot()
    return newer !== undefined && newer.version > init.trust.version ? newer : init.trust
  }
  return (bytes: Uint8Array, now: number): VerifyOutcome => {
    const res = verifyEnvelope(bytes, {
      trust: trust(),
      now,
      highestSeq: seq.highestSeq,
      seenDigest: seq.seenDigest,
      deviceStatus: (device) => (store.revocationOf(device) !== undefined ? 'revoked' : 'enrolled'),
    })
    if (!res.ok) return res
    return { ok: true, value: { digest: res.digest, type: res.type, message: res.message, signer: res.signer } }
  }
}
