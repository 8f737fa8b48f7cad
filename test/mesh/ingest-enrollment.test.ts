/**
 * Only enrolled, unrevoked devices' messages are stored or forwarded, and the order of arrival
 * never loses an honest report: one that arrives before its signer's enrollment is refused, not
 * remembered, and the next anti-entropy round brings it.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { silentLogger } from '../../node/logger.ts'
import { createFleetVerifier } from '../../node/mesh/fleet-verifier.ts'
import { Ingest } from '../../node/mesh/ingest.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import {
  canonicalBytes,
  fleetTopic,
  type Revocation,
  signDeviceMessage,
  signOperatorMessage,
  TOPIC_HEALTH,
  toBase64,
  type Verdict,
  wireMessageId,
} from '../../protocols/index.ts'
import {
  connect,
  enrollment,
  healthReport,
  makeFleet,
  startNode,
  type TestNode,
  waitFor,
  waitForMesh,
} from './fixtures.ts'

const logger = silentLogger()

function verdict(fleet: string, device: string, now: number, padding: number): Verdict {
  return {
    type: 'Verdict',
    v: 1,
    fleet,
    device,
    model: 'tiny',
    version: '1.0.0',
    stage: 0,
    outcome: 'promote',
    decided_at: now,
    window: { start: now - 60_000, end: now },
    evidence: [],
    figures: [],
    reason: 'x'.repeat(padding),
  } as unknown as Verdict
}

describe('ingest: enrolled signers only', () => {
  const nodes: TestNode[] = []
  after(async () => {
    await Promise.all(nodes.map((n) => n.node.stop()))
  })

  test('an unknown key is refused before any crypto; enrolled is accepted; revoked is refused for good', async () => {
    const fleet = makeFleet()
    const store = new MessageStore({ logger }, {})
    const ingest = new Ingest({ store, verify: createFleetVerifier({ trust: fleet.trust, store }), logger }, {})
    const key = await generateKeyPair('Ed25519')
    const device = peerIdFromPrivateKey(key).toString()
    const report = await healthReport(fleet, key, 1)

    const first = await ingest.ingest(report, 'gossip', device)
    assert.equal(first.status, 'rejected')
    assert.equal(first.status === 'rejected' ? first.error.code : '', 'ERR_NOT_ENROLLED')
    assert.equal(store.size, 0)
    // a ~500 KB envelope with a junk signature from an unknown key: refused as unenrolled, so
    // nothing (not even the signature) was worked on
    const big = canonicalBytes({
      kind: 'device',
      type: 'Verdict',
      signer: device,
      payload: toBase64(Buffer.alloc(380 * 1024, 0x41)),
      sig: toBase64(Buffer.alloc(64, 1)),
    })
    assert.ok(big.byteLength > 500_000)
    const t0 = performance.now()
    const r = await ingest.ingest(big, 'gossip', device)
    assert.equal(r.status === 'rejected' ? r.error.code : r.status, 'ERR_NOT_ENROLLED')
    assert.ok(performance.now() - t0 < 200, 'refused cheaply')
    assert.equal(store.size, 0)

    // once enrolled, the very same bytes are accepted: the first refusal was not remembered
    assert.equal((await ingest.ingest(await enrollment(fleet, device), 'local')).status, 'accepted')
    assert.equal((await ingest.ingest(report, 'gossip', device)).status, 'accepted')
    const v = await signDeviceMessage(verdict(fleet.id, device, Date.now(), 10), key)
    assert.equal((await ingest.ingest(v, 'gossip', device)).status, 'accepted')

    const revocation: Revocation = {
      type: 'Revocation',
      v: 1,
      fleet: fleet.id,
      device,
      reason: 'stolen',
      issued_at: Date.now(),
    }
    assert.equal((await ingest.ingest(await signOperatorMessage(revocation, fleet.signer), 'local')).status, 'accepted')
    const after2 = await ingest.ingest(await healthReport(fleet, key, 2), 'gossip', device)
    assert.equal(after2.status === 'rejected' ? after2.error.code : after2.status, 'ERR_REVOKED')
  })

  test('two envelopes of one message (ECDSA signs the same payload twice) are stored once', async () => {
    const fleet = makeFleet()
    const store = new MessageStore({ logger }, {})
    const ingest = new Ingest({ store, verify: createFleetVerifier({ trust: fleet.trust, store }), logger }, {})
    const e = {
      type: 'DeviceEnrollment' as const,
      v: 1 as const,
      fleet: fleet.id,
      device: peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString(),
      tags: [],
      capabilities: { arch: 'x64' as const, ram_mb: 1024, device_type: 'test' },
      issued_at: Date.now(),
    }
    const a = await signOperatorMessage(e, fleet.signer)
    let b = await signOperatorMessage(e, fleet.signer)
    while (Buffer.compare(a, b) === 0) b = await signOperatorMessage(e, fleet.signer)
    const first = await ingest.ingest(a, 'gossip', 'p1')
    assert.equal(first.status, 'accepted')
    const second = await ingest.ingest(b, 'gossip', 'p2')
    assert.equal(second.status, 'duplicate')
    assert.equal(second.status === 'duplicate' ? second.digest : '', wireMessageId(a))
    assert.equal(store.size, 1)
    assert.equal(Buffer.compare(store.list('DeviceEnrollment')[0].bytes, a), 0, 'the first encoding is kept')
    assert.equal((await ingest.ingest(a, 'gossip', 'p3')).status, 'duplicate')
  })

  test('a report dated ahead of this clock is refused now and accepted once time has caught up', async () => {
    const fleet = makeFleet()
    let now = Date.now()
    const store = new MessageStore({ logger, now: () => now }, {})
    const ingest = new Ingest(
      { store, verify: createFleetVerifier({ trust: fleet.trust, store }), logger, now: () => now },
      {},
    )
    const key = await generateKeyPair('Ed25519')
    const device = peerIdFromPrivateKey(key).toString()
    assert.equal((await ingest.ingest(await enrollment(fleet, device, now), 'local')).status, 'accepted')
    const ahead = await healthReport(fleet, key, 1, now + 10 * 60_000)
    const early = await ingest.ingest(ahead, 'gossip', device)
    assert.equal(early.status === 'rejected' ? early.error.code : early.status, 'ERR_FUTURE')
    assert.equal(ingest.wasRejected(wireMessageId(ahead) as string), false, 'not remembered')
    now += 10 * 60_000
    assert.equal((await ingest.ingest(ahead, 'anti-entropy', device)).status, 'accepted')
  })

  test('an expired enrollment no longer admits its device', async () => {
    const fleet = makeFleet()
    let now = Date.now()
    const store = new MessageStore({ logger, now: () => now }, {})
    const ingest = new Ingest(
      { store, verify: createFleetVerifier({ trust: fleet.trust, store }), logger, now: () => now },
      {},
    )
    const key = await generateKeyPair('Ed25519')
    const device = peerIdFromPrivateKey(key).toString()
    const e = {
      type: 'DeviceEnrollment' as const,
      v: 1 as const,
      fleet: fleet.id,
      device,
      tags: [],
      capabilities: { arch: 'x64' as const, ram_mb: 1024, device_type: 'test' },
      issued_at: now,
      expires_at: now + 60_000,
    }
    assert.equal((await ingest.ingest(await signOperatorMessage(e, fleet.signer), 'local')).status, 'accepted')
    assert.equal((await ingest.ingest(await healthReport(fleet, key, 1, now), 'local')).status, 'accepted')
    now += 120_000
    const late = await ingest.ingest(await healthReport(fleet, key, 2, now), 'local')
    assert.equal(late.status === 'rejected' ? late.error.code : late.status, 'ERR_NOT_ENROLLED')
  })

  test('a report that arrives before its enrollment is fetched again by anti-entropy; gossip ignores, never forwards', async () => {
    const fleet = makeFleet()
    const a = await startNode(fleet, { init: { antiEntropy: { intervalMs: 3_600_000 } } })
    const b = await startNode(fleet, { init: { antiEntropy: { intervalMs: 3_600_000 } } })
    const stranger = await startNode(fleet, { init: { antiEntropy: { intervalMs: 3_600_000 } } })
    nodes.push(a, b, stranger)
    const key = await generateKeyPair('Ed25519')
    const device = peerIdFromPrivateKey(key).toString()
    const enrolled = await enrollment(fleet, device)
    const report = await healthReport(fleet, key, 1)
    await a.node.publish(enrolled)
    await a.node.publish(report)

    // B hears the report first (as from a fast gossip path): refused, not remembered
    const early = await b.node.ingest.ingest(report, 'gossip', a.id)
    assert.equal(early.status === 'rejected' ? early.error.code : early.status, 'ERR_NOT_ENROLLED')
    assert.equal(b.node.ingest.wasRejected(wireMessageId(report) as string), false)
    await b.node.ingest.ingest(enrolled, 'gossip', a.id)
    assert.ok(b.store.isEnrolled(device))
    // A starts the round, so B (the responder) decides what it wants: it must want the report
    await connect(b, a)
    const peerB = b.node.libp2p.peerId
    await waitFor(() => a.node.libp2p.getConnections(peerB).length > 0, 10_000, 'connection')
    await a.node.antiEntropy.sync(peerB)
    await waitFor(() => b.store.has(wireMessageId(report) as string), 10_000, 'the report at B')

    // an unenrolled device's own report on gossip: ignored (not punished), not stored, not forwarded
    await connect(stranger, b)
    const topic = fleetTopic(TOPIC_HEALTH, fleet.id)
    await waitForMesh([stranger], topic)
    const sizeA = a.store.size
    const sizeB = b.store.size
    const ignored = b.node.gossip.counters.ignored
    const rejected = b.node.gossip.counters.rejected
    const own = await healthReport(fleet, stranger.key, 1)
    await stranger.node.libp2p.services.pubsub.publish(topic, own)
    await waitFor(() => b.node.gossip.counters.ignored > ignored, 10_000, 'the stranger report ignored')
    assert.equal(b.node.gossip.counters.rejected, rejected)
    assert.equal(b.store.size, sizeB)
    assert.equal(a.store.size, sizeA, 'not forwarded to A')
    // its own node refuses to publish it at all
    await assert.rejects(
      stranger.node.publish(own),
      (err: Error & { code?: string }) => err.code === 'ERR_NOT_ENROLLED',
    )
  })
})
