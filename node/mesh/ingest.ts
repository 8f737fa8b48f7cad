/**
 * The one path every received or published wire message takes into the node: verify, then store.
 * Gossip validators and anti-entropy both call it, so a message is accepted by the same checks
 * whichever way it came. Concurrent arrivals of the same bytes are verified once.
 *
 * Messages are named by id (hash of canonical content and signer): bytes already held are a
 * duplicate at once (by their wire hash); other bytes are verified, and an envelope that verifies
 * to an id already held is a duplicate too (another encoding of a known message is not stored).
 *
 * Refusals are remembered only when they are final: never a transient one (the signer not
 * enrolled yet, a rotation short of signatures, a date ahead of this clock, a key this node's
 * trust root does not hold yet, an expired root), so a report that arrives before its signer's
 * enrollment is fetched again by the next anti-entropy round. Final refusals are remembered by
 * wire hash, and by id only when the refusal came after the signature check (a forger cannot make
 * this node refuse the id of a message it cannot sign).
 */
import { sha256Hex } from '../../protocols/encoding.ts'
import { type VerificationCode, VerificationError } from '../../protocols/errors.ts'
import type { Logger } from '../logger.ts'
import type { MessageStore } from './message-store.ts'
import { StoreQuotaError } from './store-errors.ts'
import type { MeshVerifier, MessageSource, StoredMessage, VerifiedWire } from './types.ts'

/** Outcome of one ingest: new, already known (duplicate), or refused with its typed error. */
export type IngestResult =
  | { status: 'accepted'; value: VerifiedWire }
  | { status: 'duplicate'; digest: string }
  | { status: 'rejected'; digest: string; error: VerificationError | StoreQuotaError; signer?: string }

/** Refusals of one (peer, code): the first REFUSAL_LOG_BURST of each interval are logged (each is counted). */
const REFUSAL_LOG_INTERVAL_MS = 60_000
const REFUSAL_LOG_BURST = 8
/** Peers whose last refusal log time is remembered. */
const REFUSAL_LOG_PEERS = 1024

/** Refusals that a later state (an enrollment, a rotation, the clock) may turn into acceptance. */
const TRANSIENT: ReadonlySet<VerificationCode> = new Set([
  'ERR_NOT_ENROLLED',
  'ERR_THRESHOLD',
  'ERR_FUTURE',
  'ERR_UNKNOWN_SIGNER',
  'ERR_EXPIRED',
])

/** Options of the ingest pipeline. */
export interface IngestInit {
  /** How many refused digests to remember (so anti-entropy does not fetch them again). */
  rejectedCacheSize?: number
}

/** What ingest uses. */
export interface IngestComponents {
  store: MessageStore
  verify: MeshVerifier
  logger: Logger
  now?: () => number
}

/** Verifies and stores wire messages; counts what it did. */
export class Ingest {
  private readonly store: MessageStore
  private readonly verify: MeshVerifier
  private readonly log: Logger
  private readonly now: () => number
  private readonly inflight = new Map<string, Promise<IngestResult>>()
  /** Final refusals by wire hash, and by id when authenticated (see the header). */
  private readonly rejectedWire = new Map<string, string>()
  private readonly rejectedIds = new Map<string, string>()
  private readonly rejectedMax: number
  /** Counters by outcome and source (for /status and tests). */
  readonly counters = { accepted: 0, duplicate: 0, rejected: 0, quota: 0 }
  /** Rejections by error code (a closed set: the verification codes and ERR_QUOTA). */
  readonly rejectedByCode = new Map<string, number>()
  /** Refusal log lines by peer and code in the current interval (a flood logs a few, not one per message). */
  private readonly logged = new Map<string, { since: number; lines: number }>()

  constructor(components: IngestComponents, init: IngestInit) {
    this.store = components.store
    this.verify = components.verify
    this.log = components.logger
    this.now = components.now ?? Date.now
    this.rejectedMax = init.rejectedCacheSize ?? 10_000
  }

  /** Whether the message with this id was refused for good recently. */
  wasRejected(digest: string): boolean {
    return this.rejectedIds.has(digest)
  }

  /** Verifies `bytes` and stores them when valid and new. */
  async ingest(
    bytes: Uint8Array,
    source: MessageSource,
    from?: string,
    filter?: (v: VerifiedWire) => VerificationError | undefined,
  ): Promise<IngestResult> {
    const wire = sha256Hex(bytes)
    const held = this.store.heldWire(wire)
    if (held !== undefined) {
      this.counters.duplicate++
      return { status: 'duplicate', digest: held }
    }
    const refused = this.rejectedWire.get(wire)
    if (refused !== undefined) {
      this.countRejection(refused)
      return { status: 'rejected', digest: wire, error: this.cachedError(refused) }
    }
    const pending = this.inflight.get(wire)
    if (pending !== undefined) {
      const first = await pending
      if (first.status === 'rejected') {
        this.countRejection(first.error.code)
        return first
      }
      this.counters.duplicate++
      return { status: 'duplicate', digest: idOf(first) }
    }
    const p = this.run(wire, bytes, source, from, filter)
    this.inflight.set(wire, p)
    try {
      return await p
    } finally {
      this.inflight.delete(wire)
    }
  }

  private async run(
    wire: string,
    bytes: Uint8Array,
    source: MessageSource,
    from: string | undefined,
    filter: ((v: VerifiedWire) => VerificationError | undefined) | undefined,
  ): Promise<IngestResult> {
    const out = await this.verify(bytes, this.now(), from)
    if (!out.ok) {
      if (!TRANSIENT.has(out.error.code)) {
        remember(this.rejectedWire, wire, out.error.code, this.rejectedMax)
        if (out.id !== undefined) remember(this.rejectedIds, out.id, out.error.code, this.rejectedMax)
      }
      return this.refuse(out.id ?? wire, wire, out.error, source, from, out.claimedSigner)
    }
    // a topic filter judges where the message came from, not the message: never remembered
    const misplaced = filter?.(out.value)
    if (misplaced !== undefined) return this.refuse(out.value.digest, wire, misplaced, source, from)
    const value = out.value
    // resolves once durable; a write error (a full disk) throws: the message is not accepted
    let stored: boolean
    try {
      stored = await this.store.put(value, bytes)
    } catch (err) {
      if (!(err instanceof StoreQuotaError)) throw err
      this.counters.quota++
      return this.refuse(value.digest, wire, err, source, from, value.signer)
    }
    if (!stored) {
      this.counters.duplicate++
      return { status: 'duplicate', digest: value.digest }
    }
    this.counters.accepted++
    // operator messages and verdicts are rare: log them at info (tests read the acceptance time)
    const level = value.type === 'HealthReport' ? 'debug' : 'info'
    this.log[level]({ digest: value.digest, type: value.type, source, from }, 'message accepted')
    return { status: 'accepted', value }
  }

  /** Counts and logs a refusal: `digest` is the id when the signature was checked, else the wire hash. */
  private refuse(
    digest: string,
    wire: string,
    error: VerificationError | StoreQuotaError,
    source: MessageSource,
    from: string | undefined,
    signer?: string,
  ): IngestResult {
    this.countRejection(error.code)
    const key = `${from ?? source}\0${error.code}`
    const now = this.now()
    let seen = this.logged.get(key)
    if (seen === undefined || now - seen.since >= REFUSAL_LOG_INTERVAL_MS) {
      this.logged.delete(key)
      seen = { since: now, lines: 0 }
      this.logged.set(key, seen)
      if (this.logged.size > REFUSAL_LOG_PEERS) this.logged.delete(this.logged.keys().next().value as string)
    }
    if (seen.lines < REFUSAL_LOG_BURST) {
      seen.lines++
      const { code } = error
      const quiet =
        seen.lines === REFUSAL_LOG_BURST
          ? 'more refusals of this peer for this reason are only counted this minute'
          : undefined
      this.log.warn({ digest, wire, source, from, code, reason: error.message, quiet }, 'message rejected')
    }
    return signer === undefined ? { status: 'rejected', digest, error } : { status: 'rejected', digest, error, signer }
  }

  private countRejection(code: string): void {
    this.counters.rejected++
    this.rejectedByCode.set(code, (this.rejectedByCode.get(code) ?? 0) + 1)
  }

  private cachedError(code: string): VerificationError {
    return new VerificationError(code as VerificationCode, 'refused before (same bytes)')
  }

  /** The stored form of an accepted digest. */
  stored(digest: string): StoredMessage | undefined {
    return this.store.get(digest)
  }
}

/** The id an ingest result names. */
function idOf(r: IngestResult): string {
  return r.status === 'accepted' ? r.value.digest : r.digest
}

/** Adds to a bounded insertion-ordered cache, dropping the oldest entry past `max`. */
function remember(cache: Map<string, string>, key: string, code: string, max: number): void {
  cache.set(key, code)
  if (cache.size > max) cache.delete(cache.keys().next().value as string)
}
