/**
 * Keeps revoked devices off this node's mesh: a libp2p connection gater that refuses dials to, and
 * connections from, any peer the fleet has revoked (checked by peer id once the encryption
 * handshake names it, and again when the connection is upgraded), and a watcher that closes every
 * connection to a peer once its revocation is accepted. Gossip, anti-entropy and block
 * replication all ride these connections, so they stop serving the peer then. Before the cut the
 * node runs one anti-entropy round with the peer (at most REVOCATION_NOTICE_MS): the revoked
 * device receives its own revocation, so it knows, logs it and stops voting, instead of being
 * silently cut off by every node at once and never told. Each refusal is counted
 * (`llmesh_mesh_revoked_refusals_total`).
 */
import type { ConnectionGater, PeerId } from '@libp2p/interface'
import type { Revocation } from '../../protocols/schemas/index.ts'
import { REVOCATION_NOTICE_MS } from '../constants.ts'
import type { Logger } from '../logger.ts'
import type { AntiEntropy } from './anti-entropy.ts'
import type { MeshLibp2p } from './host.ts'
import type { MessageStore } from './message-store.ts'
import type { StoredMessage } from './types.ts'

/** Counters of the gate (read by /metrics). */
export interface RevocationGateCounts {
  /** Connections refused or closed because the peer is revoked. */
  refused: number
}

/** The gater: `isRevoked(peer id)` decides; refusals are counted in `counts`. */
export function revocationGater(isRevoked: (peer: string) => boolean, counts: RevocationGateCounts): ConnectionGater {
  const deny = (peer: PeerId): boolean => {
    if (!isRevoked(peer.toString())) return false
    counts.refused++
    return true
  }
  return {
    denyDialPeer: deny,
    denyOutboundConnection: deny,
    denyInboundEncryptedConnection: deny,
    denyOutboundEncryptedConnection: deny,
    denyInboundUpgradedConnection: deny,
    denyOutboundUpgradedConnection: deny,
  }
}

/** What the watcher uses: the host and the anti-entropy service (undefined while stopped). */
export interface CloseOnRevocationComponents {
  store: MessageStore
  libp2p: () => MeshLibp2p | undefined
  antiEntropy: () => Pick<AntiEntropy, 'sync'> | undefined
  counts: RevocationGateCounts
  logger: Logger
}

/** Options of the watcher. */
export interface CloseOnRevocationInit {
  /** How long the connections stay open for the notice round (REVOCATION_NOTICE_MS). */
  noticeMs?: number
}

/**
 * Closes the connections to each peer whose revocation the store accepts, after one bounded
 * anti-entropy round that hands it the revocation. Returns the unwatch function.
 */
export function closeOnRevocation(c: CloseOnRevocationComponents, init: CloseOnRevocationInit = {}): () => void {
  const noticeMs = init.noticeMs ?? REVOCATION_NOTICE_MS
  const timers = new Set<NodeJS.Timeout>()
  const onRevocation = (m: StoredMessage<Revocation>): void => {
    const node = c.libp2p()
    if (node === undefined) return
    const peer = m.message.device
    const conns = node.getConnections().filter((x) => x.remotePeer.toString() === peer)
    if (conns.length === 0) return
    const cut = (): void => {
      const open = node.getConnections().filter((x) => x.remotePeer.toString() === peer)
      if (open.length === 0) return
      c.counts.refused += open.length
      c.logger.info({ peer, connections: open.length }, 'closing the connections of a revoked peer')
      for (const x of open) x.abort(new Error('peer revoked by the fleet operator'))
    }
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<void>((ok) => {
      timer = setTimeout(ok, noticeMs)
      timers.add(timer)
    })
    const notice = c.antiEntropy()?.sync(conns[0].remotePeer) ?? Promise.resolve()
    void Promise.race([
      notice.then(
        () => undefined,
        () => undefined,
      ),
      bound,
    ]).then(() => {
      if (timer !== undefined) {
        clearTimeout(timer)
        timers.delete(timer)
      }
      cut()
    })
  }
  c.store.on('revocation', onRevocation)
  return () => {
    c.store.off('revocation', onRevocation)
    for (const t of timers) clearTimeout(t)
    timers.clear()
  }
}
