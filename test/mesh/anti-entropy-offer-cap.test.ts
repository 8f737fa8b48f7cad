/**
 * Anti-entropy version 2 against an empty peer past 20,000 messages (node/mesh/anti-entropy-rounds.ts):
 * the initiator offers at most one round's worth of ids (ANTI_ENTROPY_MAX_MESSAGES), so its offer
 * stays a valid control frame (an uncapped offer of every id would pass ANTI_ENTROPY_MAX_DIGESTS
 * and be refused as a schema error); each round moves at most that many messages, none twice, and
 * the empty peer holds everything after ⌈n / 2,000⌉ rounds.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ANTI_ENTROPY_MAX_DIGESTS, ANTI_ENTROPY_MAX_MESSAGES } from '../../protocols/anti-entropy.ts'
import { scaled } from '../helpers/index.ts'
import { connect, enrollment, healthReport, makeFleet, startNode, type TestNode, waitFor } from './fixtures.ts'

const DEVICES = 12
const REPORTS_EACH = 1_710

describe('anti-entropy offers to an empty peer past 20,000 messages', () => {
  const fleet = makeFleet()
  const nodes: TestNode[] = []
  after(async () => {
    await Promise.all(nodes.map((n) => n.node.stop()))
  })

  test('every round offers and sends at most 2,000 messages, none twice, until the empty peer holds all', async () => {
    // a round of 2,000 messages takes long on a loaded machine: the round deadline is scaled
    const ae = { intervalMs: 3_600_000, timeoutMs: scaled(60_000) }
    const full = await startNode(fleet, { init: { antiEntropy: ae } })
    // the empty peer's budget lets one peer send it everything in a minute (the default would spread
    // it over minutes), frames and CPU: ingesting 20,000 reports costs more than the default 10 s of
    // CPU a minute on a loaded machine, and a blocked peer's next round is aborted (a CI-like run at
    // load 20 failed so: "Cannot write to a stream that is closed")
    const budget = { frames: 100_000, cpuMs: 600_000 }
    const empty = await startNode(fleet, { init: { antiEntropy: { ...ae, budget } } })
    nodes.push(full, empty)
    const now = Date.now()
    for (let d = 0; d < DEVICES; d++) {
      const key = await generateKeyPair('Ed25519')
      const enrolled = await full.node.ingest.ingest(
        await enrollment(fleet, peerIdFromPrivateKey(key).toString()),
        'local',
      )
      assert.equal(enrolled.status, 'accepted')
      // all of a device's reports in flight at once: their appends share group commits (one at a
      // time, 20,532 fsyncs took most of this test's minute)
      const wires = await Promise.all(
        Array.from({ length: REPORTS_EACH }, (_, i) => healthReport(fleet, key, i + 1, now - i - 1)),
      )
      const results = await Promise.all(wires.map((w) => full.node.ingest.ingest(w, 'local')))
      for (const [i, r] of results.entries()) assert.equal(r.status, 'accepted', `report ${i + 1} of device ${d}`)
    }
    const total = full.store.syncDigests().length
    assert.equal(total, DEVICES * (REPORTS_EACH + 1))
    assert.ok(total > ANTI_ENTROPY_MAX_DIGESTS, `${total} messages: more ids than one frame may list`)

    const sent: number[] = []
    full.node.antiEntropy.on('sync', (r) => sent.push(r.sent))
    await connect(full, empty)
    const round = full.node.antiEntropy
    await waitFor(() => sent.length === 1 || round.counters.failures > 0, 60_000, 'the round on connect')
    // an uncapped offer (every id) is refused by the empty peer: the round fails
    assert.deepEqual([sent.length, round.counters.failures], [1, 0], 'the first round went through')
    const rounds = Math.ceil(total / ANTI_ENTROPY_MAX_MESSAGES)
    while (sent.length < rounds) await round.sync(empty.node.libp2p.peerId)
    assert.deepEqual(sent, [...Array(rounds - 1).fill(ANTI_ENTROPY_MAX_MESSAGES), total % ANTI_ENTROPY_MAX_MESSAGES])
    await waitFor(
      () => empty.store.size === total,
      30_000,
      'the empty peer to hold everything',
      () => ({
        held: empty.store.size,
        rejections: Object.fromEntries(empty.node.ingest.rejectedByCode),
      }),
    )
    assert.equal(empty.node.antiEntropy.counters.failures, 0)
    assert.equal(empty.node.antiEntropy.budgets.counters.invalidFrames, 0)
    // in sync: one more round sends nothing
    const again = await round.sync(empty.node.libp2p.peerId)
    assert.deepEqual([again.sent, again.received], [0, 0])
  })
})
