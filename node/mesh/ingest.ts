/**
 * The one path every received or published wire message takes into the node: verify, then store.
 * Gossip validators and anti-entropy both call it, so a message is accepted by the same checks
 * whichever way it came. Concurrent arrivals of the same bytes are verified once.
 */
import { sha256Hex } from '../../protocols/encoding.ts'
import type { VerificationError } from '../../protocols/errors.ts'
import type { Logger } from '../logger.ts'
import type { MessageStore } from './message-store.ts'
import type { MeshVerifier, MessageSource, StoredMessage, VerifiedWire } from './types.ts'

/** Outcome of one ingest: new, already known (duplicate), or refused with its typed error. */
export type IngestResult =
  | { status: 'accepted'; value: VerifiedWire }
  | { status: 'duplicate'; digest: string }
  | { status: 'rejected'; digest: string; error: VerificationError }

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
  private readonly rejected = new Map<string, string>()
  private readonly rejectedMax: number
  /** Counters by outcome and source (for /status and tests). */
  readonly counters = { accepted: 0, duplicate: 0, rejected: 0 }

  constructor(init: IngestInit, components: IngestComponents) {
    this.store = components.store
    this.verify = components.verify
    this.log = components.logger
    this.now = components.now ?? Date.now
    this.rejectedMax = init.rejectedCacheSize ?? 10_000
  }

  /** Whether this digest was refused recently. */
  wasRejected(digest: string): boolean {
    return this.rejected.has(digest)
  }

  /** Verifies `bytes` and stores them when valid and new. */
  async ingest(
    bytes: Uint8Array,
    source: MessageSource,
    from?: string,
    filter?: (v: VerifiedWire) => VerificationError | undefined,
  ): Promise<IngestResult> {
    const digest = sha256Hex(bytes)
    if (this.store.has(digest)) {
      this.counters.duplicate++
      return { status: 'duplicate', digest }
    }
    const pending = this.inflight.get(digest)
    if (pending !== undefined) {
      await pending
      this.counters.duplicate++
      return { status: 'duplicate', digest }
    }
    const p = this.run(digest, bytes, source, from, filter)
    this.inflight.set(digest, p)
    try {
      return await p
    } finally {
      this.inflight.delete(digest)
    }
  }

  private async run(
    digest: string,
    bytes: Uint8Array,
    source: MessageSource,
    from: string | undefined,
    filter: ((v: VerifiedWire) => VerificationError | undefined) | undefined,
  ): Promise<IngestResult> {
    let out = await this.verify(bytes, this.now())
    if (out.ok && filter !== undefined) {
      const error = filter(out.value)
      if (error !== undefined) out = { ok: false, error }
    }
    if (!out.ok) {
      this.counters.rejected++
      this.rejected.set(digest, out.error.code)
      if (this.rejected.size > this.rejectedMax) this.rejected.delete(this.rejected.keys().next().value as string)
      this.log.warn({ digest, source, from, code: out.error.code, reason: out.error.message }, 'message rejected')
      return { status: 'rejected', digest, error: out.error }
    }
    if (out.value.digest !== digest) {
      // The verifier names messages by the same sha256; a mismatch is a bug, not an attack.
      this.log.error({ digest, verifier: out.value.digest }, 'verifier digest differs from wire digest')
    }
    const value: VerifiedWire = { ...out.value, digest }
    if (!this.store.add(value, bytes)) {
      this.counters.duplicate++
      return { status: 'duplicate', digest }
    }
    this.counters.accepted++
    // operator messages and verdicts are rare: log them at info (tests read the acceptance time)
    const level = value.type === 'HealthReport' ? 'debug' : 'info'
    this.log[level]({ digest, type: value.type, source, from }, 'message accepted')
    return { status: 'accepted', value }
  }

  /** The stored form of an accepted digest. */
  stored(digest: string): StoredMessage | undefined {
    return this.store.get(digest)
  }
}
