/** The message store's in-memory indexes: by id, wire hash, type, model, device and reconciliation key. */
import { sha256Hex } from '../../protocols/encoding.ts'
import { type ClaimFacts, inviteOfClaim } from '../../protocols/membership/index.ts'
import type { InviteClaim } from '../../protocols/schemas/index.ts'
import { ReconcileIndex } from './reconcile-index.ts'
import type { AnyMessage, StoredMessage } from './types.ts'

/** Device id a message is about, if any. */
function deviceOf(m: AnyMessage): string | undefined {
  return 'device' in m ? m.device : undefined
}

/** Model a message is about, if any. */
function modelOf(m: AnyMessage): string | undefined {
  return 'model' in m ? m.model : undefined
}

/**
 * The time retention judges a health report by: its window's end, but never later than its
 * arrival here (the verifier bounds the window to now + skew; records older than that bound are
 * not trusted to be).
 */
export function reportTime(m: StoredMessage): number {
  return Math.min((m.message as { window: { end: number } }).window.end, m.receivedAt)
}

function addTo(index: Map<string, Set<string>>, key: string | undefined, digest: string): void {
  if (key === undefined) return
  const set = index.get(key)
  if (set === undefined) index.set(key, new Set([digest]))
  else set.add(digest)
}

/** Stored messages by id, with the indexes the store's queries use. */
export class MessageIndex {
  readonly byDigest = new Map<string, StoredMessage>()
  readonly byType = new Map<string, Set<string>>()
  readonly byModel = new Map<string, Set<string>>()
  readonly byDevice = new Map<string, Set<string>>()
  /** Enrollments, revocations and invite claims per device (the verifier asks at every device message). */
  readonly adminOf = new Map<string, Set<string>>()
  /** sha256 of stored wire bytes → id: the fast path for bytes already held. */
  readonly byWire = new Map<string, string>()
  /** Invite claims with their decoded invite, by claim id; and claim ids per invite id. */
  readonly claims = new Map<string, ClaimFacts>()
  readonly claimsOfInvite = new Map<string, Set<string>>()
  /** Messages and wire bytes held per (signer, type) of device messages: what quotas count. */
  readonly usage = new Map<string, { count: number; bytes: number }>()
  /** Wire bytes of every message held. */
  wireBytes = 0
  /** Every message by reconciliation key (anti-entropy). */
  readonly reconcile = new ReconcileIndex()

  /** The messages of an index entry. */
  collect(set: Set<string> | undefined): StoredMessage[] {
    if (set === undefined) return []
    const out: StoredMessage[] = []
    for (const d of set) {
      const m = this.byDigest.get(d)
      if (m !== undefined) out.push(m)
    }
    return out
  }

  index(m: StoredMessage): void {
    this.byDigest.set(m.digest, m)
    this.wireBytes += m.bytes.byteLength
    this.use(m, 1)
    this.byWire.set(sha256Hex(m.bytes), m.digest)
    this.reconcile.add(m, m.type === 'HealthReport' ? reportTime(m) : Number.POSITIVE_INFINITY)
    if (m.type === 'DeviceEnrollment' || m.type === 'Revocation' || m.type === 'InviteClaim')
      addTo(this.adminOf, deviceOf(m.message), m.digest)
    if (m.type === 'InviteClaim') {
      const invite = inviteOfClaim(m.message as InviteClaim)
      if (invite !== undefined) {
        this.claims.set(m.digest, { digest: m.digest, claim: m.message as InviteClaim, invite })
        addTo(this.claimsOfInvite, invite.id, m.digest)
      }
    }
    addTo(this.byType, m.type, m.digest)
    addTo(this.byModel, modelOf(m.message), m.digest)
    addTo(this.byDevice, deviceOf(m.message), m.digest)
  }

  unindex(m: StoredMessage): void {
    if (!this.byDigest.delete(m.digest)) return
    this.wireBytes -= m.bytes.byteLength
    this.use(m, -1)
    this.byWire.delete(sha256Hex(m.bytes))
    this.reconcile.remove(m)
    const admin = deviceOf(m.message)
    if (admin !== undefined) this.adminOf.get(admin)?.delete(m.digest)
    const claim = this.claims.get(m.digest)
    if (claim !== undefined) {
      this.claims.delete(m.digest)
      this.claimsOfInvite.get(claim.invite.id)?.delete(m.digest)
    }
    this.byType.get(m.type)?.delete(m.digest)
    const model = modelOf(m.message)
    if (model !== undefined) this.byModel.get(model)?.delete(m.digest)
    const device = deviceOf(m.message)
    if (device !== undefined) this.byDevice.get(device)?.delete(m.digest)
  }

  private use(m: StoredMessage, sign: 1 | -1): void {
    if (m.type !== 'HealthReport' && m.type !== 'Verdict') return
    const key = usageKey(m.signer, m.type)
    const u = this.usage.get(key) ?? { count: 0, bytes: 0 }
    u.count += sign
    u.bytes += sign * m.bytes.byteLength
    if (u.count === 0) this.usage.delete(key)
    else this.usage.set(key, u)
  }
}

/** The key of a (signer, type) in `MessageIndex.usage`. */
export function usageKey(signer: string, type: string): string {
  return `${signer}\0${type}`
}
