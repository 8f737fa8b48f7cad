/**
 * Rollback protection. Each message type that can be superseded has a rollback key and a
 * sequence number: a receiver never accepts a lower sequence than the highest it has seen for
 * that key. Equal sequence numbers are accepted only for the very same message (same wire
 * digest) and flagged as a replay; a different message with the same sequence (equivocation) is
 * refused like a rollback, except a ReleaseManifest whose model@version or (model, seq) a node
 * already holds, or an AgentRelease whose version or seq it holds: the fleet verifier accepts it
 * so every node resolves the pair alike (node/mesh/fleet-verifier.ts, protocols/rollout/conflicts.ts).
 *
 * | type             | key      | sequence   |
 * |------------------|----------|------------|
 * | ReleaseManifest  | model    | seq        |
 * | AgentRelease     | `agent`  | seq        |
 * | TrustRoot        | fleet    | version    |
 * | DeviceEnrollment | device   | issued_at  |
 * | SwarmKeyRotation | fleet    | epoch      |
 *
 * OperatorCommand, Revocation and Verdict have no sequence: commands are ordered by
 * (issued_at, id), revocations are final, verdicts are re-evaluated from evidence. HealthReports
 * do not supersede each other: each covers its own window, a node that joins late must still
 * accept a device's earlier reports (verdicts cite them as evidence), and the gates collapse two
 * reports with one (device, seq) to the lower digest, so an equivocating device gains nothing.
 */
import { AGENT_SEQUENCE_KEY } from '../agent/constants.ts'
import type { DeviceMessage, MessageType, OperatorMessage } from '../schemas/index.ts'

/** The rollback key and sequence number of a message, if its type has one. */
export function sequenceOf(msg: OperatorMessage | DeviceMessage): { key: string; seq: number } | undefined {
  switch (msg.type) {
    case 'ReleaseManifest':
      return { key: msg.model, seq: msg.seq }
    case 'AgentRelease':
      return { key: AGENT_SEQUENCE_KEY, seq: msg.seq }
    case 'TrustRoot':
      return { key: msg.fleet, seq: msg.version }
    case 'DeviceEnrollment':
      return { key: msg.device, seq: msg.issued_at }
    case 'SwarmKeyRotation':
      return { key: msg.fleet, seq: msg.epoch }
    default:
      return undefined
  }
}

/**
 * In-memory highest-sequence tracker, usable directly as `VerifyContext.highestSeq` /
 * `VerifyContext.seenDigest`. Call `record()` with each accepted result. Persist `entries()` if
 * the node must remember across restarts (it must, for releases).
 */
export class SeqTracker {
  readonly #seen = new Map<string, { seq: number; digest: string }>()

  /** Highest sequence seen for (type, key). */
  highestSeq = (type: MessageType, key: string): number | undefined => this.#seen.get(`${type}\0${key}`)?.seq

  /** Wire digest of the message seen at the highest sequence for (type, key). */
  seenDigest = (type: MessageType, key: string): string | undefined => this.#seen.get(`${type}\0${key}`)?.digest

  /** Records an accepted message; returns false if it was not newer than what was seen. */
  record(msg: OperatorMessage | DeviceMessage, digest: string): boolean {
    const s = sequenceOf(msg)
    if (s === undefined) return false
    const id = `${msg.type}\0${s.key}`
    const cur = this.#seen.get(id)
    if (cur !== undefined && cur.seq >= s.seq) return false
    this.#seen.set(id, { seq: s.seq, digest })
    return true
  }

  /** Snapshot for persistence: [type, key, seq, digest]. */
  entries(): Array<[MessageType, string, number, string]> {
    return [...this.#seen].map(([id, v]) => {
      const [type, key] = id.split('\0') as [MessageType, string]
      return [type, key, v.seq, v.digest]
    })
  }

  /** Restores a snapshot made by `entries()`. */
  static from(entries: Array<[MessageType, string, number, string]>): SeqTracker {
    const t = new SeqTracker()
    for (const [type, key, seq, digest] of entries) t.#seen.set(`${type}\0${key}`, { seq, digest })
    return t
  }
}
