/**
 * The libp2p host of bench/distribution.ts's seed and device: TCP on loopback, Noise as every llmesh host runs it
 * (node/mesh/noise-crypto.ts `meshNoise`: libsodium, decrypting in place), yamux as every llmesh host
 * runs it (node/mesh/muxer.ts), and
 * with `psk` the fleet's private network (@libp2p/pnet, as node/mesh/host.ts runs every node).
 */
import { generateKey, preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { meshMuxer } from '../node/mesh/muxer.ts'
import { meshNoise } from '../node/mesh/noise-crypto.ts'
import '../node/mesh/pnet-cipher-fix.ts'

/** A new swarm key file's bytes, hex (to hand to the device process). */
export function benchPsk(): string {
  const key = new Uint8Array(95)
  generateKey(key)
  return Buffer.from(key).toString('hex')
}

/** A started host listening on 127.0.0.1; inside the private network of `pskHex` when given. */
export async function benchHost(pskHex?: string): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [meshNoise()],
    streamMuxers: [meshMuxer()],
    ...(pskHex === undefined ? {} : { connectionProtector: preSharedKey({ psk: Buffer.from(pskHex, 'hex') }) }),
  })
}
