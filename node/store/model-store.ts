/**
 * The artifact store: one corestore under `<data>/store`, one hypercore feed per model lineage.
 * The seed owns each lineage's writable feed (`model/<name>`) and appends only chunks the feed
 * does not hold yet, so a release's chunk list points at existing blocks for reused chunks.
 * Devices open a lineage read-only by the feed key from a manifest; blocks they fetch persist
 * in the corestore, so they survive restarts and are served to other peers.
 */
import { join } from 'node:path'
import type Corestore from 'corestore'
import type Hypercore from 'hypercore'
import { blockRuns } from './block-runs.ts'
import { FETCH_HOTSWAP, FETCH_INFLIGHT, lineageName, STORE_DIR } from './constants.ts'
import { FileBlocks, type FileChunk } from './file-blocks.ts'
import { type AppendOptions, type AppendResult, appendChunks, lineageHashIndex } from './lineage-append.ts'
import { installPeerChoice, type PeerChoiceInit } from './peer-choice.ts'
import { attachToStreams, openCorestore, storeHoldsData, streamCount } from './store-open.ts'

/** Options of the store. */
export interface ModelStoreInit {
  /** The node's data directory; the corestore lives in `<dataDir>/store`. */
  dataDir: string
  /**
   * Let hypercore re-request in-flight blocks from other idle peers ("hotswap", its endgame mode).
   * Default `FETCH_HOTSWAP` (off): on a LAN every block then crosses the wire once; measured on a
   * 34-block delta with 4 devices, hotswap made devices receive up to 2.3× the delta's bytes.
   * Turn it on for fleets with very uneven links, where a slow peer would stall the tail.
   */
  hotswap?: boolean
  /** hypercore's in-flight request range per peer, [min, max]; default `FETCH_INFLIGHT` (see constants.ts). */
  inflight?: readonly [number, number]
  /**
   * Peer choice of downloads (peer-choice.ts): an origin (a peer with the whole feed, e.g. the seed)
   * is asked only for blocks no other downloading peer holds, a few at a time. Default on; false:
   * hypercore's own choice (random peer per block, full in-flight range to every peer).
   */
  peerChoice?: PeerChoiceInit | false
  /**
   * `start()` opens the corestore only if it already holds data; otherwise it is opened by the
   * first `feed()`/`lineage()`/`open()` (hypercore, corestore and RocksDB are not even loaded until
   * then; store-open.ts). Default false (opened at start); device daemons set `STORE_OPEN_ON_DEMAND`.
   */
  openOnDemand?: boolean
}

/**
 * A block a peer sent failed hypercore's verification (Merkle proof against the signed tree):
 * hypercore did not store it and stopped asking that peer for this feed.
 */
export interface InvalidBlock {
  /** Feed key, hex. */
  feed: string
  /** Block index asked for, when the request was a block request. */
  block: number | null
  /** The replication stream it came on (hypercore's noise stream): the replicator maps it to a peer. */
  stream: unknown
  /** hypercore's error code (e.g. INVALID_CHECKSUM) or message. */
  error: string
}

/** The corestore of a node, with per-lineage chunk indexes. */
export class ModelStore {
  readonly dir: string
  private corestore: Corestore | null = null
  private readonly feeds = new Map<string, Hypercore>()
  private readonly feedsOpening = new Map<string, Promise<Hypercore>>()
  private readonly lineages = new Map<string, Hypercore>()
  private readonly hashIndex = new Map<string, Map<string, number>>()
  private starting: Promise<void> | null = null
  private started = false
  private readonly openOnDemand: boolean
  private readonly openListeners = new Set<() => void>()
  private announced = false
  private readonly hotswap: boolean
  private readonly inflight: readonly [number, number]
  private readonly peerChoice: PeerChoiceInit | false
  private readonly invalidListeners = new Set<(e: InvalidBlock) => void>()
  /** Blocks received from and sent to peers (verified blocks stored / blocks served), all feeds. */
  readonly blocks = { in: 0, out: 0 }
  /** Maps a hypercore replication stream to the remote peer's id; set by the replicator. */
  peerOfStream: (stream: unknown) => string | undefined = () => undefined
  /**
   * Fleet peers this node is connected to: each has a replication session now or will have one
   * soon (a store opened on demand dials its sessions only as its first feed opens); set by the
   * replicator. Peer choice's start grace counts these, not only the streams already open.
   */
  peersExpected: () => number = () => 0
  /** Blocks whose bytes live in installed files instead of the corestore (see file-blocks.ts). */
  readonly files = new FileBlocks()

  constructor(init: ModelStoreInit) {
    this.dir = join(init.dataDir, STORE_DIR)
    this.hotswap = init.hotswap ?? FETCH_HOTSWAP
    this.inflight = init.inflight ?? FETCH_INFLIGHT
    this.peerChoice = init.peerChoice ?? {}
    this.openOnDemand = init.openOnDemand ?? false
  }

  /** Calls `fn` for every block a peer sent that failed verification. Returns the unsubscribe. */
  onInvalidBlock(fn: (e: InvalidBlock) => void): () => void {
    this.invalidListeners.add(fn)
    return () => this.invalidListeners.delete(fn)
  }

  /** The libp2p id of the peer behind a hypercore peer object (as in its `download` event), if known. */
  peerOf(from: unknown): string | undefined {
    const stream = (from as { stream?: unknown } | null)?.stream
    return stream === undefined ? undefined : this.peerOfStream(stream)
  }

  /** Reports verification failures and applies the in-flight range and hotswap settings (hypercore 11 has no public option for them). */
  private tune(core: Hypercore): void {
    const feed = core.key.toString('hex')
    this.files.attach(core)
    attachToStreams(this.store, core)
    core.on('download', () => this.blocks.in++)
    core.on('upload', () => this.blocks.out++)
    core.on('verification-error', (err: Error & { code?: string }, req: unknown, _res: unknown, from: unknown) => {
      const block = (req as { block?: { index?: number } } | null)?.block?.index ?? null
      const stream = (from as { stream?: unknown } | null)?.stream
      for (const fn of this.invalidListeners) fn({ feed, block, stream, error: err.code ?? err.message })
    })
    const inner = (
      core as unknown as {
        core?: { replicator?: { _updateHotswap?: unknown; setInflightRange?: (min: number, max: number) => void } }
      }
    ).core
    inner?.replicator?.setInflightRange?.(this.inflight[0], this.inflight[1])
    if (inner?.replicator && this.peerChoice !== false)
      installPeerChoice(
        inner.replicator,
        { seeding: () => core.writable, sessions: () => this.replicationSessions() },
        this.peerChoice,
      )
    if (!this.hotswap && inner?.replicator && typeof inner.replicator._updateHotswap === 'function') {
      inner.replicator._updateHotswap = () => {}
    }
    this.announce() // a store opened on demand: its sessions start now that its first feed is open
  }

  /**
   * Replication sessions this node has or is about to have, whatever feeds they carry: the streams
   * open on the corestore, or the connected fleet peers (`peersExpected`) if more (peer choice's
   * start grace: holders are about to join while sessions outnumber the feed's peers).
   */
  replicationSessions(): number {
    return Math.max(this.peersExpected(), this.corestore === null ? 0 : streamCount(this.corestore))
  }

  /** Opens the corestore, or with `openOnDemand` and nothing stored yet, lets its first use open it. Idempotent. */
  async start(): Promise<void> {
    this.started = true
    if (this.starting !== null || !this.openOnDemand || (await storeHoldsData(this.dir))) await this.open()
  }

  /** Opens the corestore now (loading hypercore and RocksDB) and runs the `onOpen` listeners. Idempotent. */
  async open(): Promise<void> {
    await this.openStore()
    this.announce()
  }

  private async openStore(): Promise<void> {
    this.starting ??= openCorestore(this.dir).then((cs) => {
      this.corestore = cs
    })
    await this.starting
  }

  /** Runs the `onOpen` listeners once per opening of the corestore. */
  private announce(): void {
    if (this.announced || this.corestore === null) return
    this.announced = true
    for (const fn of this.openListeners) fn()
  }

  /** Whether the corestore is open (`store` usable). */
  get isOpen(): boolean {
    return this.corestore !== null
  }

  /**
   * Calls `fn` each time the corestore has been opened: by `open()`, or when opened by a first
   * `feed()`/`lineage()`, once that feed is open (the replicator then attaches its waiting sessions
   * and dials the others, so corestore attaches the open feed to each new session as it does when
   * a peer connects to a store already open). Returns the unsubscribe.
   */
  onOpen(fn: () => void): () => void {
    this.openListeners.add(fn)
    return () => this.openListeners.delete(fn)
  }

  /** Opens the corestore on first use between `start()` and `stop()`; `store` throws otherwise, as before. */
  private async opened(): Promise<void> {
    if (this.corestore === null && this.started) await this.openStore()
  }

  /** Closes every feed and the corestore. Idempotent. */
  async stop(): Promise<void> {
    this.started = false
    this.announced = false
    if (this.starting === null) return
    await this.starting.catch(() => {})
    const cs = this.corestore
    this.corestore = null
    this.starting = null
    this.feeds.clear()
    this.lineages.clear()
    this.hashIndex.clear()
    if (cs !== null) await cs.close()
    await this.files.close()
  }

  /**
   * An installed, verified file now holds the blocks of `chunks`: reads of them come from it, and
   * (on a read-only feed, unless `strip` is false) their bytes leave the corestore, so the model is
   * on disk once. Returns the blocks stripped. The seed's writable lineage keeps its blocks.
   */
  async adoptFile(feedHex: string, path: string, chunks: readonly FileChunk[], strip = true): Promise<number> {
    this.files.register(feedHex, path, chunks)
    const core = await this.feed(feedHex)
    if (core.writable || !strip) return 0
    const runs = blockRuns(chunks.map((c) => c.block))
    await this.files.strip(core, runs)
    return runs.reduce((n, [a, b]) => n + b - a, 0)
  }

  /** `path` is about to be removed: its blocks are no longer read from it. */
  releaseFile(feedHex: string, path: string): void {
    this.files.unregister(feedHex, path)
  }

  /** The underlying corestore (for replication). Throws before `start()`. */
  get store(): Corestore {
    if (this.corestore === null) throw new Error('model store is not started')
    return this.corestore
  }

  /** The writable lineage feed of a model (seed side). */
  async lineage(model: string): Promise<Hypercore> {
    let core = this.lineages.get(model)
    if (core === undefined) {
      await this.opened()
      core = this.store.get({ name: lineageName(model) })
      await core.ready()
      this.tune(core)
      this.lineages.set(model, core)
      this.feeds.set(core.key.toString('hex'), core)
    }
    return core
  }

  /** A lineage feed by its public key (hex), read-only unless this node owns it. */
  async feed(keyHex: string): Promise<Hypercore> {
    const open = this.feeds.get(keyHex)
    if (open !== undefined) return open
    // callers at the same time share one opening (a feed tuned twice would count its blocks twice)
    let opening = this.feedsOpening.get(keyHex)
    if (opening === undefined) {
      opening = (async () => {
        await this.opened()
        const core = this.store.get({ key: Buffer.from(keyHex, 'hex') })
        await core.ready()
        this.tune(core)
        this.feeds.set(keyHex, core)
        return core
      })().finally(() => this.feedsOpening.delete(keyHex))
      this.feedsOpening.set(keyHex, opening)
    }
    return opening
  }

  /** sha256 → block of every block of the lineage (built by hashing the local blocks once). */
  private async indexOf(model: string): Promise<Map<string, number>> {
    let idx = this.hashIndex.get(model)
    if (idx === undefined) {
      idx = await lineageHashIndex(await this.lineage(model))
      this.hashIndex.set(model, idx)
    }
    return idx
  }

  /**
   * Chunks `path` and appends to the model's lineage feed only the chunks it does not hold.
   * Chunk parameters: `opts.chunking`, else the lineage's own (a new lineage gets the new-lineage
   * default; lineage-chunking.ts). `onProgress(bytesDone)` is called as the file is read.
   */
  async appendFile(model: string, path: string, opts: AppendOptions = {}): Promise<AppendResult> {
    const core = await this.lineage(model)
    return appendChunks(core, await this.indexOf(model), path, opts)
  }
}
