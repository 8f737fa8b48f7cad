/**
 * mDNS peer discovery for libp2p: @libp2p/mdns (its packets, answers and parsing, unchanged on the
 * wire) with the query schedule and the answer filter of mdns-rules.ts in front of it.
 *
 * @libp2p/mdns queries at a fixed interval and hands every answer it hears to libp2p, which merges
 * it into the peer store. Every node answers every query by multicast, so on a LAN of N nodes each
 * one handled N·(N−1) answers per interval: 14 a second at 9 nodes and 5 s (a share of each idle
 * daemon's CPU in the test beds, docs/benchmarks.md), 1,980 a second at 100, and every one of them
 * is a multicast packet on the site's Wi-Fi. Here the inner discovery's own timer is parked (it only
 * sends its first query at start), this module runs the backing-off schedule, and the inner
 * discovery's `peer` events pass through the filter before libp2p sees them. Counted in `stats`
 * (`llmesh_mdns_*` in /metrics).
 */
import type { ComponentLogger, Libp2pEvents, PeerDiscovery, PeerInfo, TypedEventTarget } from '@libp2p/interface'
import { peerDiscoverySymbol, TypedEventEmitter } from '@libp2p/interface'
import { type MulticastDNSComponents, mdns } from '@libp2p/mdns'
import type { Multiaddr } from '@multiformats/multiaddr'
import {
  MDNS_FORWARD_WINDOW_MS,
  MDNS_FORWARDS_PER_WINDOW,
  MDNS_INTERVAL_MS,
  MDNS_MAX_ADDRS,
  MDNS_MAX_INTERVAL_MS,
  MDNS_PEERS_MAX,
  MDNS_REFRESH_MS,
} from '../constants.ts'
import { MdnsAnswerFilter, type MdnsOutcome, nextQueryInterval } from './mdns-rules.ts'

/** The longest delay a Node timer takes (a larger one fires at once). */
const TIMER_MAX_MS = 2 ** 31 - 1

/** Counters of one node's mDNS discovery. */
export class MdnsStats {
  /** Queries sent. */
  queries = 0
  /** Queries that threw (the socket closed or failed); the schedule goes on. */
  queryFailures = 0
  /** Answers heard about other peers, by what became of them. */
  readonly answers: Record<MdnsOutcome, number> = { new: 0, changed: 0, refreshed: 0, repeat: 0, limited: 0 }
}

/** Options of the discovery. */
export interface MdnsDiscoveryInit {
  serviceTag: string
  /** First (and restart) query interval, ms. */
  intervalMs?: number
  /** Longest query interval, ms. */
  maxIntervalMs?: number
  /** Where the counters go (the mesh node reads them for /metrics). */
  stats?: MdnsStats
  /** The inner discovery (tests: a fake); @libp2p/mdns by default. */
  inner?: (components: MulticastDNSComponents) => PeerDiscovery
  /** Clock, ms (tests). */
  now?: () => number
}

/** What the discovery uses of libp2p's components. */
export interface MdnsDiscoveryComponents extends MulticastDNSComponents {
  logger: ComponentLogger
  addressManager: MulticastDNSComponents['addressManager'] & { getAddresses(): Multiaddr[] }
  connectionManager: { getConnections(): unknown[] }
  events: TypedEventTarget<Libp2pEvents>
}

/** The parts of @libp2p/mdns's discovery this module drives. */
interface InnerMdns extends PeerDiscovery {
  start?(): Promise<void> | void
  stop?(): Promise<void> | void
  mdns?: { query(q: { questions: Array<{ name: string; type: 'PTR' }> }): void }
}

/** The discovery: a libp2p peer-discovery module (list it in `peerDiscovery`). */
export class MdnsDiscovery extends TypedEventEmitter<{ peer: CustomEvent<PeerInfo> }> {
  readonly [peerDiscoverySymbol] = this
  readonly [Symbol.toStringTag] = 'llmesh-mdns'
  readonly stats: MdnsStats
  private readonly c: MdnsDiscoveryComponents
  private readonly init: MdnsDiscoveryInit
  private readonly inner: InnerMdns
  private readonly filter = new MdnsAnswerFilter({
    refreshMs: MDNS_REFRESH_MS,
    maxPeers: MDNS_PEERS_MAX,
    perWindow: MDNS_FORWARDS_PER_WINDOW,
    windowMs: MDNS_FORWARD_WINDOW_MS,
  })
  private readonly now: () => number
  private timer: NodeJS.Timeout | undefined
  private interval: number | undefined
  private ownAddrs = ''
  private started = false
  private readonly log: ReturnType<ComponentLogger['forComponent']>

  constructor(components: MdnsDiscoveryComponents, init: MdnsDiscoveryInit) {
    super()
    this.c = components
    this.init = init
    this.stats = init.stats ?? new MdnsStats()
    this.now = init.now ?? Date.now
    this.log = components.logger.forComponent('llmesh:mdns')
    // the inner discovery's own timer never fires again after its first query (sent by its start)
    const make = init.inner ?? mdns({ serviceTag: init.serviceTag, interval: TIMER_MAX_MS })
    this.inner = make(components) as InnerMdns
    this.inner.addEventListener('peer', this.onPeer)
  }

  /** Starts the inner discovery (its first query) and the schedule. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    this.ownAddrs = this.addrsKey()
    this.c.events.addEventListener('self:peer:update', this.onSelfUpdate)
    this.c.events.addEventListener('peer:disconnect', this.onDisconnect)
    await this.inner.start?.()
    this.stats.queries++
    this.schedule()
  }

  /** Stops the schedule and the inner discovery. Idempotent. */
  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    clearTimeout(this.timer)
    this.timer = undefined
    this.interval = undefined
    this.c.events.removeEventListener('self:peer:update', this.onSelfUpdate)
    this.c.events.removeEventListener('peer:disconnect', this.onDisconnect)
    await this.inner.stop?.()
  }

  /** The interval the schedule waits now, ms (undefined when stopped). */
  get currentIntervalMs(): number | undefined {
    return this.interval
  }

  private schedule(restart = false): void {
    if (!this.started) return
    clearTimeout(this.timer)
    const lonely = this.c.connectionManager.getConnections().length === 0
    this.interval = nextQueryInterval(
      this.interval,
      restart || lonely,
      this.init.intervalMs ?? MDNS_INTERVAL_MS,
      this.init.maxIntervalMs ?? MDNS_MAX_INTERVAL_MS,
    )
    this.timer = setTimeout(this.query, this.interval)
    this.timer.unref?.()
  }

  private readonly query = (): void => {
    if (!this.started) return
    try {
      this.inner.mdns?.query({ questions: [{ name: this.init.serviceTag, type: 'PTR' }] })
      this.stats.queries++
    } catch (err) {
      this.stats.queryFailures++
      this.log.error('mdns query failed - %e', err)
    }
    this.schedule()
  }

  private readonly onPeer = (evt: CustomEvent<PeerInfo>): void => {
    const { id, multiaddrs } = evt.detail
    const addrs = multiaddrs.slice(0, MDNS_MAX_ADDRS)
    const outcome = this.filter.decide(id.toString(), addrsText(addrs), this.now())
    this.stats.answers[outcome]++
    if (outcome === 'repeat' || outcome === 'limited') return
    this.safeDispatchEvent('peer', { detail: { id, multiaddrs: addrs } })
  }

  private readonly onSelfUpdate = (): void => {
    const key = this.addrsKey()
    if (key === this.ownAddrs) return
    this.ownAddrs = key
    // our answer to our own query tells the others the new addresses: ask again soon
    this.schedule(true)
  }

  private readonly onDisconnect = (evt: CustomEvent<{ toString(): string }>): void => {
    this.filter.forget(evt.detail.toString())
    if (this.c.connectionManager.getConnections().length === 0) this.schedule(true)
  }

  private addrsKey(): string {
    return addrsText(this.c.addressManager.getAddresses())
  }
}

/** A set of addresses as one text, the same whatever their order. */
function addrsText(addrs: readonly Multiaddr[]): string {
  return addrs
    .map((a) => a.toString())
    .sort()
    .join(' ')
}

/** The discovery factory for libp2p's `peerDiscovery` list. */
export function mdnsDiscovery(
  init: MdnsDiscoveryInit,
): (components: MdnsDiscoveryComponents) => MdnsDiscovery & PeerDiscovery {
  return (components) => new MdnsDiscovery(components, init)
}
