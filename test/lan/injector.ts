/**
 * Test-only injector for LAN tests: a bare mesh peer (fresh identity, mDNS off) that dials the
 * given nodes and publishes raw bytes on fleet topics WITHOUT verifying them first, so tests can
 * send forged, malformed and oversized messages. With `--dial-only` it reports whether each dial
 * succeeded (a host without the join secret must fail). Prints JSON lines on stdout; stays up
 * until SIGTERM so the receivers keep its connection (and score) around.
 *
 *   node test/lan/injector.ts --fleet <dir> [--psk <swarm.key>] --dial <ma>… [--dial-only]
 *        [--publish <topic-base>=<file>…] [--subscribers-wait-ms 10000] [--min-subscribers 1]
 *        [--dial-attempts 3] [--dial-timeout-ms 5000]
 *
 * `--min-subscribers N` waits (up to the wait) until N peers subscribe to a topic before publishing
 * on it, so that every dialed node gets the message straight from the injector. Gossipsub
 * graylists a peer after its second invalid message (score -20 × n², threshold -80): a test that
 * must see each forgery refused sends at most two invalid ones per injector.
 *
 * `--identity <identity.key>` runs the peer with that private key (e.g. an enrolled device's, its
 * daemon stopped) instead of a fresh one; `--flood-health-ms N` then publishes maximum-size health
 * reports signed by that key as fast as it can for N ms (test/lan/flood-reports.ts), printing
 * `flood-started`, `flood` progress and `flood-done` with the counts. The flood waits for the
 * peers' gossipsub streams to drain below FLOOD_BUFFER_BYTES before each report: gossipsub aborts a
 * stream whose write buffer passes its limit, and publish then reaches nobody (flood-reports.ts).
 */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { generateKeyPair, privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { loadFleet } from '../../node/fleet/index.ts'
import { silentLogger } from '../../node/logger.ts'
import { createFleetVerifier } from '../../node/mesh/fleet-verifier.ts'
import { MeshNode } from '../../node/mesh/mesh-node.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { TOPIC_HEALTH } from '../../protocols/constants.ts'
import { fleetTopic } from '../../protocols/index.ts'
import { floodReports } from './flood-reports.ts'

const { values } = parseArgs({
  options: {
    fleet: { type: 'string' },
    psk: { type: 'string' },
    dial: { type: 'string', multiple: true, default: [] },
    'dial-only': { type: 'boolean', default: false },
    publish: { type: 'string', multiple: true, default: [] },
    'subscribers-wait-ms': { type: 'string', default: '10000' },
    'min-subscribers': { type: 'string', default: '1' },
    identity: { type: 'string' },
    'flood-health-ms': { type: 'string' },
    'dial-attempts': { type: 'string', default: '3' },
    'dial-timeout-ms': { type: 'string', default: '5000' },
  },
})

/** Bytes a peer's gossipsub stream may hold unsent before the flood waits for it to drain. */
const FLOOD_BUFFER_BYTES = 1024 * 1024

/** gossipsub's outbound streams (not in its public interface). */
interface OutboundStreams {
  streamsOutbound: Map<string, { rawStream: { writeBufferLength: number; status: string } }>
}

const out = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ ...o, time: Date.now() })}\n`)
}

const fleet = await loadFleet(values.fleet as string)
const psk = values.psk === undefined ? fleet.swarmKey : new Uint8Array(await readFile(values.psk))
const privateKey =
  values.identity === undefined
    ? await generateKeyPair('Ed25519')
    : privateKeyFromProtobuf(new Uint8Array(await readFile(values.identity)))
const logger = silentLogger()
const store = new MessageStore({ logger }, {})
const node = new MeshNode(
  { store, verify: createFleetVerifier({ trust: fleet.root, store }), logger },
  {
    fleet: fleet.root.fleet,
    psk,
    privateKey,
    listen: ['/ip4/0.0.0.0/tcp/0'],
    mdns: false,
    antiEntropy: { intervalMs: 3_600_000 },
  },
)
await node.start()
out({ event: 'started', peerId: node.libp2p.peerId.toString() })
let dialed = 0
// a loaded bed answers late: outside --dial-only (which must see refusals fast), a timed-out dial is retried
const attempts = values['dial-only'] ? 1 : Number(values['dial-attempts'])
for (const addr of values.dial) {
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      await node.libp2p.dial((await import('@multiformats/multiaddr')).multiaddr(addr), {
        signal: AbortSignal.timeout(Number(values['dial-timeout-ms'])),
      })
      dialed++
      out({ event: 'dial', addr, ok: true, attempt })
      break
    } catch (err) {
      if (attempt < attempts && (err as Error).name === 'TimeoutError') continue
      out({ event: 'dial', addr, ok: false, error: (err as Error).name, message: (err as Error).message })
    }
  }
}
if (!values['dial-only'] && dialed > 0) {
  const pubsub = node.libp2p.services.pubsub
  const waitMs = Number(values['subscribers-wait-ms'])
  const minSubscribers = Number(values['min-subscribers'])
  for (const spec of values.publish) {
    const eq = spec.indexOf('=')
    const topic = fleetTopic(spec.slice(0, eq), fleet.root.fleet)
    const end = Date.now() + waitMs
    while (pubsub.getSubscribers(topic).length < minSubscribers && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50))
    }
    const bytes = new Uint8Array(await readFile(spec.slice(eq + 1)))
    try {
      const r = await pubsub.publish(topic, bytes)
      out({ event: 'published', topic, file: spec.slice(eq + 1), recipients: r.recipients.length })
    } catch (err) {
      out({ event: 'publish-failed', topic, error: (err as Error).message })
    }
  }
  if (values['flood-health-ms'] !== undefined) {
    const topic = fleetTopic(TOPIC_HEALTH, fleet.root.fleet)
    const end = Date.now() + waitMs
    while (pubsub.getSubscribers(topic).length < minSubscribers && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50))
    }
    out({ event: 'flood-started', subscribers: pubsub.getSubscribers(topic).length })
    const streams = (pubsub as unknown as OutboundStreams).streamsOutbound
    const floodEnd = Date.now() + Number(values['flood-health-ms'])
    const drained = () => [...streams.values()].every((s) => s.rawStream.writeBufferLength <= FLOOD_BUFFER_BYTES)
    const counts = await floodReports((bytes) => pubsub.publish(topic, bytes), {
      fleet: fleet.root.fleet,
      key: privateKey,
      durationMs: Number(values['flood-health-ms']),
      ready: async () => {
        while (!drained() && Date.now() < floodEnd) await new Promise((r) => setTimeout(r, 5))
      },
      progress: (c) => out({ event: 'flood', ...c }),
    })
    out({ event: 'flood-done', ...counts })
  }
}
out({ event: 'done' })
const stop = (): void => {
  void node.stop().then(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
