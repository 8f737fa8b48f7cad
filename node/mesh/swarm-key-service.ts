/**
 * Applies the operator's join-secret rotations on this node.
 *
 * How it works: each verified `SwarmKeyRotation` the store accepts (gossip, anti-entropy, or found
 * on disk at start) with an epoch above the one in force is opened with this node's own identity
 * key, written durably to `<data>/swarm-key.json` (swarm-key-state.ts) and scheduled: at its
 * `switch_at` the mesh node protects every new connection with the new key and closes its open
 * connections to peers the rotation was not sealed to (revoked, pending). Connections to
 * recipients stay up, so the mesh does not fall apart; peers whose clocks differ only fail new
 * dials for the skew, and the mesh node's redial loop reconnects them on the new key.
 * A node that is not a recipient (revoked, never enrolled) logs why and keeps its key: at the
 * switch every other node stops accepting it. Rotations are applied one at a time, in order; a
 * newer one replaces a switch still pending. Faults are counted, never thrown into the store.
 */
import type { PrivateKey } from '@libp2p/interface'
import type { SwarmKeyRotation } from '../../protocols/schemas/index.ts'
import { checkRotation, openSwarmKey, SwarmKeyError, swarmKeyFile } from '../../protocols/swarm-key/index.ts'
import type { Service } from '../daemon-context.ts'
import type { Logger } from '../logger.ts'
import type { MeshNode } from './mesh-node.ts'
import type { MessageStore } from './message-store.ts'
import { nextState, type ResolvedSwarmKey, type SwarmKeyState, writeSwarmKeyState } from './swarm-key-state.ts'
import type { StoredMessage } from './types.ts'

/** Counters of the service (read by /metrics and /status). */
export interface SwarmKeyCounts {
  /** Rotations switched to. */
  applied: number
  /** Rotations this node was not sealed to, or could not open or store (by code). */
  refused: Record<string, number>
}

/** What the service works with. */
export interface SwarmKeyServiceComponents {
  store: MessageStore
  mesh: MeshNode
  privateKey: PrivateKey
  self: string
  logger: Logger
}

/** Where it keeps its state and what it started with. */
export interface SwarmKeyServiceInit {
  dataDir: string
  /** The key resolved at start (resolveSwarmKey). */
  resolved: ResolvedSwarmKey
  /** The clock (tests). */
  now?: () => number
}

/** The join-secret rotation service of a node. */
export class SwarmKeyService implements Service {
  readonly counts: SwarmKeyCounts = { applied: 0, refused: {} }
  private readonly c: SwarmKeyServiceComponents
  private readonly dataDir: string
  private readonly now: () => number
  private epochValue: number
  private state: SwarmKeyState | undefined
  private pending: { epoch: number; at: number; psk: Uint8Array; keep: Set<string> | undefined } | undefined
  private timer: NodeJS.Timeout | undefined
  private queue: Promise<void> = Promise.resolve()
  private running = false
  private readonly onRotation = (m: StoredMessage<SwarmKeyRotation>): void => {
    this.queue = this.queue.then(() => this.apply(m.message))
  }

  constructor(components: SwarmKeyServiceComponents, init: SwarmKeyServiceInit) {
    this.c = components
    this.dataDir = init.dataDir
    this.now = init.now ?? Date.now
    this.epochValue = init.resolved.epoch
    this.state = init.resolved.state
    const p = init.resolved.pending
    if (p !== undefined) this.pending = { epoch: this.epochValue, at: p.at, psk: p.psk, keep: undefined }
  }

  /** The epoch received (switched to, or pending). */
  get epoch(): number {
    return this.epochValue
  }

  /** The `swarm_key` section of /status. */
  statusJson() {
    return {
      epoch: this.epochValue,
      switch_pending_at: this.pending?.at ?? null,
      applied: this.counts.applied,
      refused: { ...this.counts.refused },
    }
  }

  async start(): Promise<void> {
    if (this.running) return
    this.running = true
    this.c.store.on('swarmkey', this.onRotation)
    const newest = this.c.store
      .list('SwarmKeyRotation')
      .sort((a, b) => b.message.epoch - a.message.epoch)
      .at(0)
    if (newest !== undefined) this.onRotation(newest)
    this.schedule()
    await this.queue
  }

  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    this.c.store.off('swarmkey', this.onRotation)
    clearTimeout(this.timer)
    this.timer = undefined
    await this.queue
  }

  /** Opens, stores and schedules one rotation. Never throws. */
  private async apply(r: SwarmKeyRotation): Promise<void> {
    if (!this.running) return
    const log = this.c.logger.child({ epoch: r.epoch })
    try {
      checkRotation(r, this.epochValue)
      const key = openSwarmKey(r, this.c.self, this.c.privateKey.raw)
      const inForce = this.c.mesh.swarmKey
      const state = nextState(inForce, this.pending?.psk, { key, epoch: r.epoch, switchAt: r.switch_at }, this.state)
      await writeSwarmKeyState(this.dataDir, state)
      this.state = state
      this.epochValue = r.epoch
      const keep = new Set([...r.recipients.map((x) => x.device), this.c.self])
      this.pending = { epoch: r.epoch, at: r.switch_at, psk: swarmKeyFile(key), keep }
      log.info({ switch_at: new Date(r.switch_at).toISOString() }, 'received the fleet’s new join secret')
      this.schedule()
    } catch (err) {
      const code = err instanceof SwarmKeyError ? err.code : 'ERR_STATE_WRITE'
      if (code === 'ERR_STALE_EPOCH') return
      this.counts.refused[code] = (this.counts.refused[code] ?? 0) + 1
      if (code === 'ERR_NOT_RECIPIENT') {
        log.error(
          { switch_at: new Date(r.switch_at).toISOString(), hint: 'it needs the fleet directory’s current swarm.key' },
          'the fleet rotated its join secret without this device: it leaves the mesh at the switch',
        )
      } else {
        log.error({ err, code }, 'could not apply a join-secret rotation')
      }
    }
  }

  private schedule(): void {
    clearTimeout(this.timer)
    const p = this.pending
    if (p === undefined || !this.running) return
    this.timer = setTimeout(() => this.switchNow(), Math.max(0, p.at - this.now()))
    this.timer.unref()
  }

  private switchNow(): void {
    const p = this.pending
    if (p === undefined) return
    this.pending = undefined
    try {
      const closed = this.c.mesh.switchSwarmKey(p.psk, (peer) => p.keep === undefined || p.keep.has(peer))
      this.counts.applied++
      this.c.logger.info(
        { epoch: p.epoch, closed, late_ms: this.now() - p.at },
        'switched to the fleet’s new join secret',
      )
    } catch (err) {
      this.counts.refused.ERR_SWARM_KEY = (this.counts.refused.ERR_SWARM_KEY ?? 0) + 1
      this.c.logger.error({ err }, 'could not switch the join secret')
    }
  }
}
