/**
 * Keeps revoked devices off this node's mesh: a libp2p connection gater that refuses dials to, and
 * connections from, any peer the fleet has revoked (checked by peer id once the encryption
 * handshake names it, and again when the connection is upgraded), and a watcher that closes every
 * connection to a peer the moment its revocation is accepted. Gossip, anti-entropy and block
 * replication all ride these connections, so they stop serving the peer at once. Each refusal is
 * counted (`llmesh_mesh_revoked_refusals_total`).
 */
import type { ConnectionGater, PeerId } from '@libp2p/interface'
import type { Revocation } from '../../protocols/schemas/index.ts'
import type { Logger } from '../logger.ts'
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

/** Closes the connections to each peer whose revocation the store accepts. Returns the unwatch function. */
export function closeOnRevocation(
  store: MessageStore,
  libp2p: () => MeshLibp2p | undefined,
  counts: RevocationGateCounts,
  log: Logger,
): () => void {
  const onRevocation = (m: StoredMessage<Revocation>): void => {
    const node = libp2p()
    if (node === undefined) return
    const conns = node.getConnections().filter((c) => c.remotePeer.toString() === m.message.device)
    if (conns.length === 0) return
    counts.refused += conns.length
    log.info({ peer: m.message.device, connections: conns.length }, 'closing the connections of a revoked peer')
    for (const c of conns) c.abort(new Error('peer revoked by the fleet operator'))
  }
  store.on('revocation', onRevocation)
  return () => store.off('revocation', onRevocation)
}
