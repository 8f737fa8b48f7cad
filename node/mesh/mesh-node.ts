/**
 * The mesh node: the libp2p host plus gossip, anti-entropy, the message store and peer finding
 * (peer-dialer.ts: mDNS discoveries, bootstrap addresses and lost peers are dialed).
 * WAN links (wan-links.ts): with `wanRate`, replication over connections to other sites is
 * throttled by one token bucket per direction for the whole node (wan-rate.ts).
 *
 * Start order: store.load → host.start → gossip → anti-entropy → dial bootstrap peers.
 * Stop order is the reverse. start()/stop() are idempotent; state is
 * 'idle' → 'starting' → 'running' → 'stopping' → 'stopped' (a stopped node can start again).
 */

import type { Duplex } from 'node:stream'
import type { Connection, PeerId, PeerInfo, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { fleetTopic, TOPIC_HEALTH, TOPIC_RELEASES, TOPIC_ROLLOUT } from '../../protocols/constants.ts'
import { BOOTSTRAP_REDIAL_MS, DEFAULT_LISTEN, PRUNE_INTERVAL_MS } from '../constants.ts'
import { MdnsStats } from '../discovery/mdns-discovery.ts'
import type { Logger } from '../logger.ts'
import { AntiEntropy, type AntiEntropyInit } from './anti-entropy.ts'
import { GossipService, type GossipServiceInit } from './gossip-service.ts'
import { createMeshHost, type MeshHostInit, type MeshLibp2p } from './host.ts'
import { Ingest, type IngestResult } from './ingest.ts'
import type { MessageStore } from './message-store.ts'
import { watchOwnRevocation } from './own-revocation.ts'
import { eitherGater, hostBans, type PeerBans, type PeerBansInit } from './peer-bans.ts'
import { PeerDialer } from './peer-dialer.ts'
import { closeOnRevocation, type RevocationGateCounts, revocationGater } from './revocation-gate.ts'
import { SwitchablePsk } from './switchable-psk.ts'
import type { MeshVerifier } from './types.ts'
import { WanLinks } from './wan-links.ts'
import { throttle, type WanRate, wanRate } from './wan-rate.ts'

/** Lifecycle state of a service. */
export type ServiceState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped'

/** Options of a mesh node. */
export interface MeshNodeInit {
  fleet: string
  /** The fleet's join secret (libp2p swarm key file bytes). */
  psk: Uint8Array
  privateKey: PrivateKey
  listen?: string[]
  /** libp2p mDNS discovery (default true). Never on in loopback tests. */
  mdns?: boolean
  mdnsIntervalMs?: number
  /** Multiaddrs to dial at start and to redial when disconnected. */
  bootstrap?: string[]
  bootstrapRedialMs?: number
  /** Dial discovered peers only below this many connections. */
  dialTargetPeers?: number
  antiEntropy?: AntiEntropyInit
  /** Per-peer gossip ingest budgets beyond the defaults (tests). */
  gossipBudget?: GossipServiceInit['budget']
  /** Temporary bans of peers under the graylist score (peer-bans.ts); false: none. */
  peerBans?: PeerBansInit | false
  /** Act as a circuit relay v2 server for nodes behind NAT (`--relay-server`; default false). */
  relayServer?: boolean
  /** Cap, bytes/s each way, on replication over WAN links (`--wan-rate`); absent: none. */
  wanRate?: number
  /** libp2p connection monitor options (benches with one busy event loop relax it). */
  connectionMonitor?: MeshHostInit['connectionMonitor']
}

/** What a mesh node uses. */
export interface MeshNodeComponents {
  store: MessageStore
  verify: MeshVerifier
  logger: Logger
}

/** libp2p host + gossip + anti-entropy over one message store. */
export class MeshNode {
  readonly store: MessageStore
  readonly ingest: Ingest
  /** Connections refused or closed for revoked peers (for /metrics). */
  readonly gateCounts: RevocationGateCounts = { refused: 0 }
  /** mDNS discovery's counters (queries sent, answers by outcome), across restarts of the host. */
  readonly mdnsStats = new MdnsStats()
  /** Peers banned for a gossip score under the graylist threshold. */
  readonly bans: PeerBans
  private readonly dialer: PeerDialer
  private readonly psk: SwitchablePsk
  private readonly init: MeshNodeInit
  private readonly log: Logger
  private readonly wanLinks = new WanLinks()
  private readonly wanBuckets: WanRate | undefined
  private libp2pNode: MeshLibp2p | undefined
  private gossipService: GossipService | undefined
  private ae: AntiEntropy | undefined
  private redial: NodeJS.Timeout | undefined
  private pruner: NodeJS.Timeout | undefined
  private unwatchRevocation: () => void = () => {}
  private unwatchRevoked: () => void = () => {}
  private stateValue: ServiceState = 'idle'
  private transition: Promise<void> = Promise.resolve()
  private readonly onDiscovery = (evt: CustomEvent<PeerInfo>): void => {
    void this.dialer.dialPeer(evt.detail.id, 'mdns')
  }

  constructor(components: MeshNodeComponents, init: MeshNodeInit) {
    this.init = init
    this.store = components.store
    this.log = components.logger
    this.psk = new SwitchablePsk(init.psk)
    this.wanBuckets = init.wanRate === undefined ? undefined : wanRate(init.wanRate)
    this.ingest = new Ingest({ store: this.store, verify: components.verify, logger: this.log }, {})
    this.dialer = new PeerDialer(
      { host: () => (this.stateValue === 'running' ? this.libp2pNode : undefined), logger: this.log },
      { bootstrap: init.bootstrap, dialTargetPeers: init.dialTargetPeers },
    )
    this.bans = hostBans(() => this.libp2pNode, this.log.child({ svc: 'peer-bans' }), init.peerBans || {})
  }

  get state(): ServiceState {
    return this.stateValue
  }

  /** The running libp2p node (throws before start). */
  get libp2p(): MeshLibp2p {
    if (this.libp2pNode === undefined) throw new Error('mesh node is not started')
    return this.libp2pNode
  }

  get gossip(): GossipService {
    if (this.gossipService === undefined) throw new Error('mesh node is not started')
    return this.gossipService
  }

  get antiEntropy(): AntiEntropy {
    if (this.ae === undefined) throw new Error('mesh node is not started')
    return this.ae
  }

  /** Peer ids of connected peers. */
  peers(): string[] {
    if (this.libp2pNode === undefined) return []
    return [...new Set(this.libp2pNode.getConnections().map((c) => c.remotePeer.toString()))].sort()
  }

  /** gossipsub score of each connected peer (negative: it sent invalid messages). */
  scores(): Record<string, number> {
    const pubsub = this.libp2pNode?.services.pubsub as unknown as { getScore(p: string): number } | undefined
    if (pubsub === undefined) return {}
    return Object.fromEntries(this.peers().map((p) => [p, Math.round(pubsub.getScore(p) * 1000) / 1000]))
  }

  /** Whether `conn` is a WAN link (another site, or relayed). */
  isWan(conn: Pick<Connection, 'remoteAddr'>): boolean {
    return this.wanLinks.isWan(conn.remoteAddr.toString())
  }

  /** `--wan-rate` limiters for a stream pipeline over `conn`, or undefined (not a WAN link, or no cap). */
  wanThrottle(conn: Pick<Connection, 'remoteAddr'>): { inbound: Duplex; outbound: Duplex } | undefined {
    if (this.wanBuckets === undefined || !this.isWan(conn)) return undefined
    return { inbound: throttle(this.wanBuckets.receive), outbound: throttle(this.wanBuckets.send) }
  }

  /** Listen multiaddrs including /p2p/<id>. */
  multiaddrs(): string[] {
    return this.libp2pNode?.getMultiaddrs().map((m) => m.toString()) ?? []
  }

  /** Verifies, stores and gossips wire bytes (throws the VerificationError if invalid). */
  publish(bytes: Uint8Array): Promise<IngestResult> {
    return this.gossip.publish(bytes)
  }

  /** Dials a multiaddr (with or without /p2p/). */
  async dial(addr: string): Promise<void> {
    await this.libp2p.dial(multiaddr(addr))
  }

  /** The join secret (swarm key file bytes) new connections are protected with. */
  get swarmKey(): Uint8Array {
    return this.psk.key
  }

  /**
   * Switches the join secret: every later connection (dialed or accepted) uses `psk`; open
   * connections to peers `keep` refuses are closed (they were made with the old key and may belong
   * to devices that did not get the new one). Returns how many connections were closed.
   */
  switchSwarmKey(psk: Uint8Array, keep: (peer: string) => boolean): number {
    this.psk.setKey(psk)
    const drop = (this.libp2pNode?.getConnections() ?? []).filter((c) => !keep(c.remotePeer.toString()))
    for (const c of drop) c.abort(new Error('the fleet switched its join secret'))
    return drop.length
  }

  start(): Promise<void> {
    this.transition = this.transition.then(() => this.doStart())
    return this.transition
  }

  stop(): Promise<void> {
    this.transition = this.transition.then(() => this.doStop())
    return this.transition
  }

  private async doStart(): Promise<void> {
    if (this.stateValue === 'running') return
    this.stateValue = 'starting'
    try {
      await this.store.load()
      this.unwatchRevocation = watchOwnRevocation(
        this.store,
        peerIdFromPrivateKey(this.init.privateKey).toString(),
        this.log,
      )
      this.unwatchRevoked = closeOnRevocation({
        store: this.store,
        libp2p: () => this.libp2pNode,
        antiEntropy: () => this.ae,
        counts: this.gateCounts,
        logger: this.log,
      })
      const topics = [TOPIC_RELEASES, TOPIC_HEALTH, TOPIC_ROLLOUT].map((t) => fleetTopic(t, this.init.fleet))
      const node = await createMeshHost({
        privateKey: this.init.privateKey,
        psk: this.init.psk,
        protector: this.psk,
        connectionGater: eitherGater(
          revocationGater((p) => this.store.revocationOf(p) !== undefined, this.gateCounts),
          this.bans.gater(),
        ),
        listen: this.init.listen ?? [DEFAULT_LISTEN],
        topics,
        mdns: this.init.mdns ?? true,
        mdnsIntervalMs: this.init.mdnsIntervalMs,
        mdnsStats: this.mdnsStats,
        relayServer: this.init.relayServer,
        connectionMonitor: this.init.connectionMonitor,
      })
      this.libp2pNode = node
      // a behaviour penalty (P7): the peer's gossip score drops by 10 × penalty²
      const penalize = (peer: PeerId, n: number, label: string): void =>
        (node.services.pubsub as unknown as Scored).score?.addPenalty(peer.toString(), n, label)
      this.gossipService = new GossipService(
        {
          pubsub: node.services.pubsub,
          ingest: this.ingest,
          logger: this.log.child({ svc: 'gossip' }),
          penalize: (peer, n) => penalize(peer, n, 'ingest_budget'),
        },
        { fleet: this.init.fleet, budget: this.init.gossipBudget },
      )
      this.ae = new AntiEntropy(
        {
          libp2p: node,
          store: this.store,
          ingest: this.ingest,
          logger: this.log.child({ svc: 'anti-entropy' }),
          penalize: (peer, n) => penalize(peer, n, 'broken_promise'),
        },
        this.init.antiEntropy ?? {},
      )
      node.addEventListener('peer:discovery', this.onDiscovery)
      await node.start()
      await this.gossipService.start()
      await this.ae.start()
      if (this.init.peerBans !== false) this.bans.start()
      this.stateValue = 'running'
      this.pruner = setInterval(() => this.store.prune(), PRUNE_INTERVAL_MS)
      this.pruner.unref()
      this.dialer.dialBootstrap()
      const every = this.init.bootstrapRedialMs ?? BOOTSTRAP_REDIAL_MS
      this.redial = setInterval(() => {
        this.dialer.dialBootstrap()
        void this.dialer.redialKnown()
      }, every)
      this.redial.unref()
    } catch (err) {
      this.stateValue = 'running'
      await this.doStop()
      throw err
    }
  }

  private async doStop(): Promise<void> {
    if (this.stateValue === 'idle' || this.stateValue === 'stopped') return
    this.stateValue = 'stopping'
    clearInterval(this.redial)
    clearInterval(this.pruner)
    this.bans.stop()
    this.unwatchRevocation()
    this.unwatchRevoked()
    this.redial = undefined
    this.pruner = undefined
    await this.ae?.stop()
    await this.gossipService?.stop()
    const node = this.libp2pNode
    if (node !== undefined) {
      node.removeEventListener('peer:discovery', this.onDiscovery)
      await node.stop()
    }
    await this.store.flush()
    this.libp2pNode = undefined
    this.gossipService = undefined
    this.ae = undefined
    this.stateValue = 'stopped'
  }
}

/** The gossipsub implementation's peer score (not in its public interface). */
interface Scored {
  score?: { addPenalty(peer: string, penalty: number, label: string): void }
}
