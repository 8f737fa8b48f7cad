/**
 * `--wan-rate`: a cap on the bytes a node moves over its WAN links (connections to another site).
 *
 * How it works: one token bucket per direction (send, receive) for the whole node, refilled at
 * the rate and holding at most WAN_BURST_BYTES. Replication sessions with WAN peers (wan-links.ts)
 * pass every chunk through `throttle(bucket)`, a Transform that cuts it into slices of at most the
 * burst and waits for each slice's tokens before passing it on. The receiving side's wait stops
 * reading, so the libp2p stream's flow control (yamux windows) slows the sender too: the cap holds
 * for bytes received as well as sent. Gossip and anti-entropy (small, signed messages) are not
 * throttled: they must cross even when a model transfer fills the link.
 */
import { Transform, type TransformCallback } from 'node:stream'
import { InvalidInputError } from '../../protocols/errors.ts'
import { WAN_BURST_BYTES, WAN_RATE_MIN } from './constants.ts'

/** Multipliers of the units `--wan-rate` accepts: bits per second (decimal) or bytes per second. */
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  kbit: 1000 / 8,
  mbit: 1000 ** 2 / 8,
  gbit: 1000 ** 3 / 8,
  kbps: 1000 / 8,
  mbps: 1000 ** 2 / 8,
  gbps: 1000 ** 3 / 8,
}

/**
 * Parses a rate: a number of bytes per second (`625000`), or with a unit: `5Mbit`, `500kbit`,
 * `1Gbit`, `5Mbps` (bits per second), `2MB`, `512KiB` (bytes per second); `/s` may follow. Throws
 * InvalidInputError below WAN_RATE_MIN bytes/s or on anything else.
 */
export function parseRate(text: string): number {
  const m = /^\s*(\d{1,12}(?:\.\d{1,6})?)\s*([a-z]*)(?:\/s)?\s*$/i.exec(String(text).slice(0, 64))
  const unit = m?.[2].toLowerCase()
  if (m === null || unit === undefined || !(unit in UNITS)) {
    throw new InvalidInputError(
      `expected a rate such as 5Mbit, 500kbit, 2MB or 625000 (bytes/s), got ${JSON.stringify(String(text).slice(0, 40))}`,
    )
  }
  const rate = Math.floor(Number(m[1]) * UNITS[unit])
  if (rate < WAN_RATE_MIN) throw new InvalidInputError(`a rate of at least ${WAN_RATE_MIN} bytes/s, got ${rate}`)
  return rate
}

/** A token bucket: `rate` bytes/s, at most `burst` bytes ahead. `now` and `sleep` are injectable (tests). */
export class TokenBucket {
  readonly rate: number
  readonly burst: number
  private tokens: number
  private last: number
  private queue: Promise<void> = Promise.resolve()
  private readonly now: () => number
  private readonly sleep: (ms: number) => Promise<void>

  constructor(
    rate: number,
    burst = WAN_BURST_BYTES,
    clock: { now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
  ) {
    if (!(rate > 0) || !(burst > 0)) throw new RangeError('rate and burst must be positive')
    this.rate = rate
    this.burst = burst
    this.now = clock.now ?? (() => performance.now())
    this.sleep = clock.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)))
    this.tokens = burst
    this.last = this.now()
  }

  /** Resolves once `n` (≤ burst) bytes may pass; callers are served in order. */
  take(n: number): Promise<void> {
    const want = Math.min(n, this.burst)
    const turn = this.queue.then(() => this.wait(want))
    this.queue = turn.catch(() => {})
    return turn
  }

  private async wait(n: number): Promise<void> {
    for (;;) {
      const t = this.now()
      this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.rate)
      this.last = t
      if (this.tokens >= n) {
        this.tokens -= n
        return
      }
      await this.sleep(Math.max(1, Math.ceil(((n - this.tokens) / this.rate) * 1000)))
    }
  }
}

/** A Transform that passes bytes no faster than `bucket` allows (slices of at most its burst). */
export function throttle(bucket: TokenBucket): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      void (async () => {
        for (let at = 0; at < chunk.byteLength; at += bucket.burst) {
          const slice = chunk.subarray(at, at + bucket.burst)
          await bucket.take(slice.byteLength)
          this.push(slice)
        }
      })().then(() => done(), done)
    },
  })
}

/** The two buckets of a node's `--wan-rate`. */
export interface WanRate {
  send: TokenBucket
  receive: TokenBucket
}

/** Buckets for `rate` bytes/s each way. */
export function wanRate(rate: number): WanRate {
  return { send: new TokenBucket(rate), receive: new TokenBucket(rate) }
}
