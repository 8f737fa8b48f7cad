/**
 * The mesh's /metrics series on two real loopback nodes (node/mesh/mesh-metrics.ts): peers, gossip
 * and ingest outcomes, anti-entropy rounds, and the process's default metrics; each fault driven
 * (a refused message) moves its series. The exposition passes `promtool check metrics` (when
 * installed; required under CI=true).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { createMeshMetrics } from '../../node/mesh/mesh-metrics.ts'
import { fleetTopic, TOPIC_ROLLOUT } from '../../protocols/index.ts'
import { scaled } from '../helpers/index.ts'
import { command, connect, makeFleet, startNode, type TestNode, waitFor, waitForMesh } from './fixtures.ts'

const PROMTOOL = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool'

/** `name{labels}` → value. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line)
    if (m?.[1] === name) out.set(m[2] ?? '', Number(m[3]))
  }
  return out
}

describe('mesh metrics of real nodes', { timeout: scaled(60_000) }, () => {
  const fleet = makeFleet()
  const nodes: TestNode[] = []
  before(async () => {
    for (let i = 0; i < 2; i++) nodes.push(await startNode(fleet, { init: { antiEntropy: { intervalMs: 300 } } }))
    await connect(nodes[1], nodes[0])
    await waitForMesh(nodes, fleetTopic(TOPIC_ROLLOUT, fleet.id))
  })
  after(async () => {
    await Promise.all(nodes.map((n) => n.node.stop()))
  })

  test('peers, gossip and ingest outcomes, anti-entropy rounds and default process metrics move', async () => {
    const metrics = createMeshMetrics(nodes[1].node)
    const scrape = () => metrics.registry.metrics()
    let text = await scrape()
    assert.equal(samples(text, 'llmesh_mesh_peers').get(''), 1)
    assert.ok((samples(text, 'process_start_time_seconds').get('') ?? 0) > 1_700_000_000)
    const accepted0 = samples(text, 'llmesh_gossip_messages_total').get('{outcome="accepted"}') ?? 0
    const rejected0 = samples(text, 'llmesh_ingest_messages_total').get('{outcome="rejected"}') ?? 0

    await nodes[0].node.publish(await command(fleet))
    await waitFor(
      async () =>
        (samples(await scrape(), 'llmesh_gossip_messages_total').get('{outcome="accepted"}') ?? 0) > accepted0,
      scaled(10_000),
      'gossip accepted moves',
    )
    const res = await nodes[1].node.ingest.ingest(new TextEncoder().encode('{"not":"a message"}'), 'local')
    assert.equal(res.status, 'rejected')
    text = await scrape()
    assert.equal(samples(text, 'llmesh_ingest_messages_total').get('{outcome="rejected"}'), rejected0 + 1)
    assert.equal(res.status === 'rejected' && res.error.code, 'ERR_SCHEMA')
    assert.equal(samples(text, 'llmesh_ingest_rejections_total').get('{code="ERR_SCHEMA"}'), 1, 'counted by its code')
    // the same bytes again: refused from the cache, and still counted under their code
    await nodes[1].node.ingest.ingest(new TextEncoder().encode('{"not":"a message"}'), 'local')
    assert.equal(samples(await scrape(), 'llmesh_ingest_rejections_total').get('{code="ERR_SCHEMA"}'), 2)
    await waitFor(
      async () => (samples(await scrape(), 'llmesh_anti_entropy_rounds_total').get('') ?? 0) > 0,
      scaled(15_000),
      'anti-entropy rounds',
    )
    text = await scrape()
    assert.ok(samples(text, 'llmesh_anti_entropy_failures_total').has('{kind="round"}'))
    // every node here speaks version 2
    assert.ok((samples(text, 'llmesh_anti_entropy_protocol_rounds_total').get('{version="2"}') ?? 0) > 0)
    assert.equal(samples(text, 'llmesh_anti_entropy_protocol_rounds_total').get('{version="1"}'), 0)

    if (!existsSync(PROMTOOL)) {
      assert.notEqual(process.env.CI, 'true', `promtool is required under CI (${PROMTOOL})`)
      return
    }
    const out = await new Promise<string>((done) => {
      const child = execFile(PROMTOOL, ['check', 'metrics'], { timeout: 30_000 }, (_e, o, e) => done(`${o}${e}`))
      child.stdin?.end(text)
    })
    assert.equal(out.trim(), '', out)
  })

  test('a stopped node reports no peers and no mesh counters', async () => {
    const t = await startNode(fleet)
    const metrics = createMeshMetrics(t.node)
    await t.node.stop()
    const text = await metrics.registry.metrics()
    assert.equal(samples(text, 'llmesh_mesh_peers').get(''), 0)
    assert.equal(samples(text, 'llmesh_gossip_messages_total').size, 0)
  })
})
