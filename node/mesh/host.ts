/**
 * The libp2p 3 host of a node: TCP, WebSockets, circuit relay v2, Noise, Yamux, identify, ping and
 * gossipsub (StrictSign), inside a private network keyed by the fleet's join secret (@libp2p/pnet):
 * a host without the secret cannot complete a connection, whatever the transport (relayed
 * connections are protected end to end too). mDNS discovery is optional (off in loopback tests and
 * benches) and stays on the LAN (multicast is never routed).
 *
 * WAN links: WebSockets (`/ws` listen addresses, `--ws-port`) for sites behind HTTP-only
 * firewalls; the circuit relay transport dials `/p2p-circuit` addresses and, when a node listens
 * on `/p2p-circuit`, reserves a slot on a relay it is connected to (a node behind NAT). A node is a
 * relay server only with `relayServer` (`--relay-server`), bounded by reservations, circuits, and
 * each relayed connection's bytes and duration (node/mesh/constants.ts); relayed connections are
 * therefore "limited" in libp2p's terms, and the fleet's protocols (gossipsub, anti-entropy,
 * replication) are registered to run on them.
 */
import { type CircuitRelayService, circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { type GossipSub, gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { ConnectionGater, ConnectionProtector, PrivateKey } from '@libp2p/interface'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p, type Libp2p } from 'libp2p'
import { MAX_WIRE_SIZE } from '../../protocols/constants.ts'
import './frame-decoder-fix.ts'
import './pnet-cipher-fix.ts'
import { MAX_CONNECTIONS, PING_TIMEOUT_MIN_MS } from '../constants.ts'
import { type MdnsStats, mdnsDiscovery } from '../discovery/mdns-discovery.ts'
import {
  RELAY_DATA_LIMIT_BYTES,
  RELAY_DURATION_LIMIT_MS,
  RELAY_MAX_CIRCUITS,
  RELAY_MAX_INBOUND_CIRCUITS,
  RELAY_MAX_RESERVATIONS,
  RELAY_RESERVATION_TTL_MS,
} from './constants.ts'
import { meshMuxer } from './muxer.ts'
import { meshNoise } from './noise-crypto.ts'

/** Services the host runs. */
export type MeshServices = {
  pubsub: GossipSub
  identify: ReturnType<ReturnType<typeof identify>>
  ping: ReturnType<ReturnType<typeof ping>>
  /** Present on a relay server (`relayServer`). */
  relay?: CircuitRelayService
}

/** The libp2p node type of a mesh host. */
export type MeshLibp2p = Libp2p<MeshServices>

/** mDNS service tag of llmesh peers (distinct from IPFS's `_p2p._udp.local`). */
export const MDNS_SERVICE_TAG = '_llmesh._udp.local'

/** Options of the host. */
export interface MeshHostInit {
  privateKey: PrivateKey
  /** The fleet's join secret: a libp2p swarm key file's bytes (`/key/swarm/psk/1.0.0/…`). */
  psk: Uint8Array
  /** A protector to use instead of one built from `psk` (a switchable key, switchable-psk.ts). */
  protector?: ConnectionProtector
  /** Refuses connections (revoked peers, revocation-gate.ts). */
  connectionGater?: ConnectionGater
  listen: string[]
  /** Fleet-scoped topic names, given peer-score parameters (invalid messages weigh heavily). */
  topics: string[]
  mdns?: boolean
  /** First mDNS query interval, ms (MDNS_INTERVAL_MS); the intervals then back off (mdns-discovery.ts). */
  mdnsIntervalMs?: number
  /** Counters of the mDNS discovery (read for /metrics). */
  mdnsStats?: MdnsStats
  /** Act as a circuit relay v2 server for nodes behind NAT (bounded; default false). */
  relayServer?: boolean
  maxConnections?: number
  /** libp2p connection monitor (pings; aborts unresponsive connections by default). */
  connectionMonitor?: { enabled?: boolean; pingInterval?: number; abortConnectionOnPingFailure?: boolean }
}

/** Score parameters per topic: only invalid messages and first deliveries count, so a quiet fleet
 * (few messages) never penalises honest peers for delivery deficits. */
function topicScore() {
  return {
    topicWeight: 1,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 100,
    firstMessageDeliveriesWeight: 1,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 50,
    meshMessageDeliveriesWeight: 0,
    meshMessageDeliveriesDecay: 0.5,
    meshMessageDeliveriesCap: 100,
    meshMessageDeliveriesThreshold: 1,
    meshMessageDeliveriesWindow: 10,
    meshMessageDeliveriesActivation: 5000,
    meshFailurePenaltyWeight: 0,
    meshFailurePenaltyDecay: 0.5,
    invalidMessageDeliveriesWeight: -20,
    invalidMessageDeliveriesDecay: 0.99,
  }
}

/** Creates (does not start) the libp2p host. */
export async function createMeshHost(init: MeshHostInit): Promise<MeshLibp2p> {
  const topics = Object.fromEntries(init.topics.map((t) => [t, topicScore()]))
  const relay =
    init.relayServer === true
      ? {
          relay: circuitRelayServer({
            reservations: {
              maxReservations: RELAY_MAX_RESERVATIONS,
              reservationTtl: RELAY_RESERVATION_TTL_MS,
              applyDefaultLimit: true,
              defaultDataLimit: RELAY_DATA_LIMIT_BYTES,
              defaultDurationLimit: RELAY_DURATION_LIMIT_MS,
            },
            maxInboundHopStreams: RELAY_MAX_CIRCUITS,
            maxOutboundStopStreams: RELAY_MAX_CIRCUITS,
          }),
        }
      : {}
  const node = await createLibp2p({
    start: false,
    privateKey: init.privateKey,
    addresses: { listen: init.listen },
    transports: [
      tcp(),
      webSockets(),
      circuitRelayTransport({
        maxInboundStopStreams: RELAY_MAX_INBOUND_CIRCUITS,
        maxOutboundStopStreams: RELAY_MAX_CIRCUITS,
      }),
    ],
    connectionEncrypters: [meshNoise()],
    streamMuxers: [meshMuxer()],
    connectionProtector:
      init.protector === undefined ? preSharedKey({ psk: init.psk }) : () => init.protector as ConnectionProtector,
    ...(init.connectionGater === undefined ? {} : { connectionGater: init.connectionGater }),
    connectionManager: { maxConnections: init.maxConnections ?? MAX_CONNECTIONS },
    // Edge boards saturated by a model transfer answer pings late: judging a link dead after the
    // default ~5 s dropped replication sessions mid-transfer (fan-out bench). Allow 30 s.
    connectionMonitor: init.connectionMonitor ?? { pingTimeout: { minTimeout: PING_TIMEOUT_MIN_MS } },
    peerDiscovery:
      init.mdns === true
        ? [mdnsDiscovery({ serviceTag: MDNS_SERVICE_TAG, intervalMs: init.mdnsIntervalMs, stats: init.mdnsStats })]
        : [],
    services: {
      ...relay,
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        globalSignaturePolicy: 'StrictSign',
        emitSelf: false,
        allowPublishToZeroTopicPeers: true,
        ignoreDuplicatePublishError: true,
        // a node behind NAT reaches the fleet only through a relay (a limited connection)
        runOnLimitedConnection: true,
        // the largest message plus protobuf framing
        maxInboundDataLength: MAX_WIRE_SIZE + 64 * 1024,
        maxOutboundBufferSize: 4 * (MAX_WIRE_SIZE + 64 * 1024),
        scoreParams: {
          topics,
          // one fleet often sits behind one address (NAT, loopback benches): membership is gated by pnet
          IPColocationFactorWeight: 0,
        },
      }),
    },
  })
  return node as MeshLibp2p
}
