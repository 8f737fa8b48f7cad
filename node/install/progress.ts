/**
 * Progress of one release download, for /status, `llmesh status` and the log: bytes and blocks
 * held, rate (bytes/s over the last `PROGRESS_RATE_WINDOW_MS`), ETA, and the peers blocks came from.
 *
 * How it works: the fetcher reports every block that arrives (`block(bytes, peer)`); a 1 s tick
 * (unref'd) logs a line at each 10 % step and once when no byte has arrived for `PROGRESS_STALL_MS`
 * (a stall), and again when bytes flow after it. A stall also calls `onStall`, at its start and
 * again every `PROGRESS_STALL_REPEAT` stall periods while it lasts (the distribution restarts
 * replication sessions on it). `stop()` ends the tick.
 */
import type { Logger } from '../logger.ts'
import { PROGRESS_RATE_WINDOW_MS, PROGRESS_STALL_MS, PROGRESS_STALL_REPEAT, PROGRESS_TICK_MS } from './constants.ts'

/** The `downloading` entry of a model in /status. */
export interface DownloadStatus {
  version: string
  blocks_have: number
  blocks_total: number
  bytes_have: number
  bytes_total: number
  /** Bytes per second over the last few seconds. */
  rate_bps: number
  /** Seconds to go at that rate; null while nothing moves. */
  eta_s: number | null
  /** True while no byte has arrived for the stall threshold. */
  stalled: boolean
  /** Peers that sent blocks of this download (libp2p ids), with the bytes each sent. */
  peers: Array<{ peer: string; bytes: number }>
}

/** Bounded number of source peers listed (the rest are summed under `others`). */
const MAX_PEERS_SHOWN = 16

/** Tracks one download. */
export class DownloadProgress {
  private readonly s: DownloadStatus
  private readonly samples: Array<{ t: number; bytes: number }> = []
  private readonly peerBytes = new Map<string, number>()
  private lastByteAt: number
  private readonly startedAt: number
  private lastDecile: number
  private readonly timer: NodeJS.Timeout
  private readonly now: () => number
  private readonly stallMs: number
  private readonly logger: Logger
  private readonly onStall: (() => void) | undefined
  private lastStallSignal = 0

  constructor(
    logger: Logger,
    init: {
      model: string
      version: string
      blocksHave: number
      blocksTotal: number
      bytesHave: number
      bytesTotal: number
      /** Stall threshold, ms (default `PROGRESS_STALL_MS`). */
      stallMs?: number
      /** Called when a stall starts, and again every `PROGRESS_STALL_REPEAT` stall periods while it lasts. */
      onStall?: () => void
      now?: () => number
    },
  ) {
    this.now = init.now ?? Date.now
    this.stallMs = init.stallMs ?? PROGRESS_STALL_MS
    this.onStall = init.onStall
    this.s = {
      version: init.version,
      blocks_have: init.blocksHave,
      blocks_total: init.blocksTotal,
      bytes_have: init.bytesHave,
      bytes_total: init.bytesTotal,
      rate_bps: 0,
      eta_s: null,
      stalled: false,
      peers: [],
    }
    this.lastByteAt = this.now()
    this.startedAt = this.lastByteAt
    this.lastDecile = this.decile()
    this.logger = logger.child({ model: init.model, version: init.version })
    this.timer = setInterval(() => this.tick(), Math.min(PROGRESS_TICK_MS, this.stallMs))
    this.timer.unref()
  }

  /** A block of `bytes` arrived from `peer` (unknown when the stream is not mapped). */
  block(bytes: number, peer: string | undefined): void {
    const t = this.now()
    this.s.blocks_have++
    this.s.bytes_have += bytes
    this.samples.push({ t, bytes })
    this.lastByteAt = t
    const id = peer ?? 'unknown'
    this.peerBytes.set(id, (this.peerBytes.get(id) ?? 0) + bytes)
    if (this.s.stalled) {
      this.s.stalled = false
      this.logger.info(this.line(), 'download resumed')
    }
    const d = this.decile()
    if (d > this.lastDecile) {
      this.lastDecile = d
      this.logger.info(this.line(), `download ${d * 10}%`)
    }
  }

  /** Checks for a stall (also called by the tick). */
  tick(): void {
    const t = this.now()
    if (!this.s.stalled && this.s.bytes_have < this.s.bytes_total && t - this.lastByteAt >= this.stallMs) {
      this.s.stalled = true
      this.logger.warn(
        { ...this.line(), idle_s: Math.round((t - this.lastByteAt) / 1000) },
        'download stalled: no block arrived',
      )
      this.signalStall(t)
    } else if (this.s.stalled && t - this.lastStallSignal >= this.stallMs * PROGRESS_STALL_REPEAT) {
      this.signalStall(t)
    }
  }

  private signalStall(t: number): void {
    this.lastStallSignal = t
    try {
      this.onStall?.()
    } catch (err) {
      this.logger.error({ err }, 'stall handler failed')
    }
  }

  /** The current figures. */
  status(): DownloadStatus {
    const t = this.now()
    while (this.samples.length > 0 && this.samples[0].t < t - PROGRESS_RATE_WINDOW_MS) this.samples.shift()
    const inWindow = this.samples.reduce((n, x) => n + x.bytes, 0)
    const span = Math.max(1000, Math.min(PROGRESS_RATE_WINDOW_MS, t - this.startedAt))
    const rate = this.samples.length === 0 ? 0 : Math.round((inWindow * 1000) / span)
    const left = Math.max(0, this.s.bytes_total - this.s.bytes_have)
    const peers = [...this.peerBytes].sort((a, b) => b[1] - a[1]).map(([peer, bytes]) => ({ peer, bytes }))
    const shown = peers.slice(0, MAX_PEERS_SHOWN)
    const rest = peers.slice(MAX_PEERS_SHOWN).reduce((n, p) => n + p.bytes, 0)
    if (rest > 0) shown.push({ peer: 'others', bytes: rest })
    return {
      ...this.s,
      rate_bps: rate,
      eta_s: left === 0 ? 0 : rate > 0 ? Math.ceil(left / rate) : null,
      peers: shown,
    }
  }

  /** Ends the tick. */
  stop(): void {
    clearInterval(this.timer)
  }

  private decile(): number {
    return this.s.bytes_total === 0 ? 10 : Math.floor((this.s.bytes_have * 10) / this.s.bytes_total)
  }

  private line() {
    const st = this.status()
    return {
      bytes_have: st.bytes_have,
      bytes_total: st.bytes_total,
      rate_bps: st.rate_bps,
      eta_s: st.eta_s,
      peers: st.peers.map((p) => p.peer),
    }
  }
}
