/**
 * The byte pipeline of one replication session: libp2p stream ↔ (WAN rate limiters) ↔ hypercore's
 * protocol stream. Version 2 (`PROTOCOL_REPLICATE`) frames hypercore's messages itself
 * (framed-stream.ts); version 1 (`PROTOCOL_REPLICATE_V1`, nodes not yet upgraded) runs hypercore's
 * own secret-stream inside the libp2p stream, as before.
 */
import type { Duplex } from 'node:stream'
import type { Stream } from '@libp2p/interface'
import type Corestore from 'corestore'
import { PROTOCOL_REPLICATE_V1 } from '../../protocols/constants.ts'
import { FramedStream } from './framed-stream.ts'
import { type ByteCounters, streamToDuplex } from './stream-duplex.ts'

/** What a session pipes through. */
export interface SessionPipeInit {
  store: Corestore
  stream: Stream
  initiator: boolean
  localPeer: string
  remotePeer: string
  /** Rate limiters of a WAN link, each way, or undefined. */
  limit?: { inbound: Duplex; outbound: Duplex }
  counters: ByteCounters[]
}

/** One session's streams. */
export interface SessionPipe {
  /** hypercore's protocol stream (corestore's replicate() result). */
  proto: Duplex
  /** The stream hypercore names a peer by (its `noiseStream`): maps invalid blocks to the peer. */
  noise: object | undefined
  /** Every stream of the pipe, to listen for errors and to destroy on close. */
  parts: Duplex[]
}

/** Builds the session's pipeline for the negotiated protocol. */
export function sessionPipe(init: SessionPipeInit): SessionPipe {
  const duplex = streamToDuplex(init.stream, ...init.counters)
  const limits = init.limit === undefined ? [] : [init.limit.inbound, init.limit.outbound]
  if (init.stream.protocol === PROTOCOL_REPLICATE_V1) {
    const proto = init.store.replicate(init.initiator)
    const noise = (proto as unknown as { noiseStream?: object }).noiseStream
    if (init.limit === undefined) duplex.pipe(proto).pipe(duplex)
    else duplex.pipe(init.limit.inbound).pipe(proto).pipe(init.limit.outbound).pipe(duplex)
    return { proto, noise, parts: [proto, duplex, ...limits] }
  }
  let input: Duplex = duplex
  let output: Duplex = duplex
  if (init.limit !== undefined) {
    input = duplex.pipe(init.limit.inbound)
    output = init.limit.outbound
    output.pipe(duplex)
  }
  const framed = new FramedStream({
    isInitiator: init.initiator,
    input,
    output,
    localPeer: init.localPeer,
    remotePeer: init.remotePeer,
  })
  const proto = init.store.replicate(framed)
  return { proto, noise: framed, parts: [framed, duplex, ...limits] }
}
