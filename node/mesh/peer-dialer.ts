/**
 * Finding peers for the mesh node: dials bootstrap addresses, peers that mDNS discovers, and peers
 * the node knew and lost. libp2p 3 does not auto-dial discoveries, and raises `peer:discovery` only
 * for peers new to its peer store, so an mDNS-only mesh would never heal after a partition without
 * `redialKnown`. Dials stop once the node has `dialTargetPeers` peers; every failure is a debug
 * line (a peer that is away is normal), never a throw.
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { DIAL_TARGET_PEERS, REDIAL_KNOWN_PER_ROUND } from '../constants.ts'
import type { Logger } from '../logger.ts'
import type { MeshLibp2p } from './host.ts'

/** What the dialer uses: the host while the node runs (undefined otherwise). */
export interface PeerDialerComponents {
  host: () => MeshLibp2p | undefined
  logger: Logger
}

/** Options of the dialer. */
export interface PeerDialerInit {
  /** Multiaddrs to dial at start and to redial when disconnected. */
  bootstrap?: string[]
  /** Dial discovered peers only below this many connected peers (DIAL_TARGET_PEERS). */
  dialTargetPeers?: number
}

export class PeerDialer {
  private readonly c: PeerDialerComponents
  private readonly init: PeerDialerInit

  constructor(components: PeerDialerComponents, init: PeerDialerInit) {
    this.c = components
    this.init = init
  }

  /** Dials every bootstrap address the node is not connected to. */
  dialBootstrap(): void {
    const node = this.c.host()
    if (node === undefined) return
    for (const addr of this.init.bootstrap ?? []) {
      let ma: ReturnType<typeof multiaddr>
      try {
        ma = multiaddr(addr)
      } catch (err) {
        this.c.logger.warn({ err, addr }, 'bad bootstrap address')
        continue
      }
      const id = ma.getComponents().find((c) => c.name === 'p2p')?.value
      if (id !== undefined && node.getConnections(peerIdFromString(id)).length > 0) continue
      node.dial(ma).catch((err) => this.c.logger.debug({ err, addr }, 'bootstrap dial failed'))
    }
  }

  /** Redials a few peers the node knew and lost (a partition, a reboot), below the target. */
  async redialKnown(): Promise<void> {
    const node = this.c.host()
    if (node === undefined || this.enough(node)) return
    const known = (await node.peerStore.all()).filter(
      (p) => p.addresses.length > 0 && !p.id.equals(node.peerId) && node.getConnections(p.id).length === 0,
    )
    for (const p of known.sort(() => Math.random() - 0.5).slice(0, REDIAL_KNOWN_PER_ROUND)) {
      void this.dialPeer(p.id, 'redial')
    }
  }

  /** Dials one discovered or known peer, unless connected or at the target. */
  async dialPeer(peer: PeerId, via: string): Promise<void> {
    const node = this.c.host()
    if (node === undefined || node.getConnections(peer).length > 0 || this.enough(node)) return
    try {
      await node.dial(peer)
      this.c.logger.debug({ peer: peer.toString(), via }, 'dialed discovered peer')
    } catch (err) {
      this.c.logger.debug({ err, peer: peer.toString(), via }, 'dial of discovered peer failed')
    }
  }

  private enough(node: MeshLibp2p): boolean {
    const peers = new Set(node.getConnections().map((c) => c.remotePeer.toString()))
    return peers.size >= (this.init.dialTargetPeers ?? DIAL_TARGET_PEERS)
  }
}
