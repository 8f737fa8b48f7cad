/**
 * The private-network protector of a host whose join secret can change while it runs: it hands
 * each new connection to @libp2p/pnet's protector for the key in force. `setKey` switches every
 * connection made from then on; connections already open keep the key they were made with (the
 * mesh node decides which of them to close, mesh-node.ts `switchSwarmKey`).
 */
import type { AbortOptions, ConnectionProtector, MessageStream } from '@libp2p/interface'
import { preSharedKey } from '@libp2p/pnet'
import './pnet-cipher-fix.ts'

/** A ConnectionProtector over a swappable pre-shared key. */
export class SwitchablePsk implements ConnectionProtector {
  private inner: ConnectionProtector
  private keyValue: Uint8Array

  /** `psk`: a libp2p swarm key file's bytes. */
  constructor(psk: Uint8Array) {
    this.keyValue = psk
    this.inner = preSharedKey({ psk })()
  }

  /** The swarm key file in force. */
  get key(): Uint8Array {
    return this.keyValue
  }

  /** Protects every later connection with `psk` (throws, keeping the old key, if it is not a swarm key). */
  setKey(psk: Uint8Array): void {
    this.inner = preSharedKey({ psk })()
    this.keyValue = psk
  }

  protect(connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    return this.inner.protect(connection, options)
  }
}
