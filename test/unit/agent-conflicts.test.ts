/**
 * Agent releases that share a version or a seq follow the rule of model manifests (issue 13,
 * "One sequence authority"; protocols/rollout/conflicts.ts, one implementation): the node's
 * verifier holds every validly signed agent release whose version or seq it already holds
 * (whatever the arrival order), the set resolves alike on every node (the same packages twice: a
 * duplicate; other packages under one version, or two versions under one seq: both conflicted),
 * and the rollout controller refuses conflicted versions for good (never admitted; refused for the
 * agent updater, which then goes back from one it runs).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { silentLogger } from '../../node/logger.ts'
import { createFleetVerifier } from '../../node/mesh/fleet-verifier.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import type { VerifyOutcome } from '../../node/mesh/types.ts'
import { resolveAgentReleases } from '../../node/rollout/agent-releases.ts'
import { AGENT_LINEAGE } from '../../protocols/agent/constants.ts'
import type { AgentRelease } from '../../protocols/index.ts'
import { signOperatorMessage } from '../../protocols/signing/index.ts'
import { examplePolicy, SHA_A, SHA_B } from '../fixtures/messages.ts'
import { makeFleet } from '../mesh/fixtures.ts'
import { add, ONE_STAGE, setup, ticks } from './rollout-fakes.ts'

const fleet = makeFleet()

function agent(version: string, seq: number, sha256 = SHA_A): AgentRelease {
  const now = Date.now()
  return {
    type: 'AgentRelease',
    v: 1,
    fleet: fleet.id,
    version,
    seq,
    packages: [
      {
        arch: 'x64',
        name: `llmesh-${version}-linux-x64.tar.gz`,
        size: 1000,
        sha256,
        chunks: {
          feed: SHA_B,
          feed_length: 1,
          chunking: { algo: 'fastcdc', min: 16_384, avg: 65_536, max: 262_144 },
          chunks: [{ hash: sha256, block: 0, size: 1000 }],
        },
      },
    ],
    min_agent_version: version,
    policy: examplePolicy(),
    provenance: { approved_by: [] },
    created_at: now - 1000 + seq,
    expires_at: now + 86_400_000,
  }
}

/** A node: its store and verifier; `take` verifies and stores like ingest does. */
function node(store = new MessageStore({ logger: silentLogger() }, {})) {
  const verify = createFleetVerifier({ trust: fleet.trust, store })
  const take = (bytes: Uint8Array): string => {
    const r = verify(bytes, Date.now()) as VerifyOutcome
    if (!r.ok) return r.error.code
    store.add(r.value, bytes)
    return 'accepted'
  }
  const outcome = () =>
    resolveAgentReleases(store.list('AgentRelease')).conflicts.map((c) => [c.version, c.outcome, c.reason ?? null])
  return { store, take, outcome }
}

/** Every order of a list. */
function orders<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs]
  return xs.flatMap((x, i) => orders([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]))
}

describe('agent releases sharing a version or a seq, in any arrival order', () => {
  test('two versions under one seq: every node holds both and refuses both (reason seq)', async () => {
    const a = await signOperatorMessage(agent('0.9.1', 3), fleet.signer)
    const b = await signOperatorMessage(agent('0.9.2', 3, SHA_B), fleet.signer)
    const older = await signOperatorMessage(agent('0.9.0', 2), fleet.signer)
    for (const order of orders([a, b, older])) {
      const n = node()
      const got = order.map((m) => n.take(m))
      // the one refusal allowed: 0.9.0 at seq 2 after a seq-3 release, a plain rollback
      const olderAt = order.indexOf(older)
      assert.deepEqual(
        got.filter((_, i) => i !== olderAt),
        ['accepted', 'accepted'],
        'both releases of seq 3 are held',
      )
      assert.equal(got[olderAt], olderAt === 0 ? 'accepted' : 'ERR_ROLLBACK')
      assert.deepEqual(n.outcome(), [
        ['0.9.1', 'conflicted', 'seq'],
        ['0.9.2', 'conflicted', 'seq'],
      ])
    }
  })

  test('one version with other packages: conflicted (reason file); the same packages twice: a duplicate', async () => {
    const a = await signOperatorMessage(agent('0.9.1', 3), fleet.signer)
    const b = await signOperatorMessage(agent('0.9.1', 4, SHA_B), fleet.signer)
    for (const order of orders([a, b])) {
      const n = node()
      assert.deepEqual(
        order.map((m) => n.take(m)),
        ['accepted', 'accepted'],
      )
      assert.deepEqual(n.outcome(), [['0.9.1', 'conflicted', 'file']])
    }
    const dup = await signOperatorMessage(agent('0.9.1', 4), fleet.signer)
    for (const order of orders([a, dup])) {
      const n = node()
      for (const m of order) n.take(m)
      const r = resolveAgentReleases(n.store.list('AgentRelease'))
      assert.deepEqual(n.outcome(), [['0.9.1', 'duplicate', null]])
      assert.deepEqual(
        r.releases.map((x) => x.manifest.seq),
        [3],
        'the lowest seq counts',
      )
    }
  })

  test('a node restarted over its store keeps the agent rollback floor', async () => {
    const n = node()
    const five = await signOperatorMessage(agent('0.9.5', 5), fleet.signer)
    assert.equal(n.take(five), 'accepted')
    const restarted = node(n.store)
    assert.equal(restarted.take(await signOperatorMessage(agent('0.9.4', 4), fleet.signer)), 'ERR_ROLLBACK')
    assert.equal(restarted.take(await signOperatorMessage(agent('0.9.6', 6), fleet.signer)), 'accepted')
  })
})

describe('the rollout controller and conflicted agent releases', () => {
  test('both versions of one seq are conflicted, never admitted, refused for the updater', async (t) => {
    const s = await setup()
    await s.controller.start()
    t.after(() => s.controller.stop())
    const one = { ...agent('0.9.1', 3), policy: ONE_STAGE }
    add(s.store, one)
    await ticks(s.controller, 2)
    assert.equal(s.controller.agent.agentTarget(), '0.9.1', 'admitted while it is the only one')
    add(s.store, { ...agent('0.9.2', 3, SHA_B), policy: ONE_STAGE })
    await ticks(s.controller, 2)
    const st = s.controller.statusJson()
    assert.deepEqual(
      st.conflicts.map((c) => [c.model, c.version, c.outcome, c.reason]),
      [
        [AGENT_LINEAGE, '0.9.1', 'conflicted', 'seq'],
        [AGENT_LINEAGE, '0.9.2', 'conflicted', 'seq'],
      ],
    )
    assert.deepEqual(st.errors.map((e) => [e.version, e.code]).sort(), [
      ['0.9.1', 'ERR_RELEASE_CONFLICT'],
      ['0.9.2', 'ERR_RELEASE_CONFLICT'],
    ])
    assert.equal(s.controller.agent.agentTarget(), null)
    assert.equal(s.controller.agent.isRefused(`${AGENT_LINEAGE}@0.9.1`), true)
    assert.equal(s.controller.agent.isAborted(`${AGENT_LINEAGE}@0.9.1`), false)
    assert.equal(
      st.releases.some((r) => r.model === AGENT_LINEAGE),
      false,
      'no conflicted version is rolled out',
    )
  })
})
