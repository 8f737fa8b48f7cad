/**
 * A second valid manifest of a model@version the node already holds is accepted whatever its seq
 * (node/mesh/fleet-verifier.ts), so every node ends up with the same set of manifests for that
 * release, and resolves it the same way (protocols/rollout/conflicts.ts), in any arrival order.
 * A lower seq for a version the node does not hold is still a rollback (ERR_ROLLBACK).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { silentLogger } from '../../node/logger.ts'
import { createFleetVerifier } from '../../node/mesh/fleet-verifier.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import type { VerifyOutcome } from '../../node/mesh/types.ts'
import { resolveReleases } from '../../protocols/rollout/index.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { signOperatorMessage } from '../../protocols/signing/index.ts'
import { exampleRelease } from '../fixtures/messages.ts'
import { makeFleet } from '../mesh/fixtures.ts'

const fleet = makeFleet()

async function signed(version: string, seq: number, sha256: string): Promise<Uint8Array> {
  const base = exampleRelease()
  const m: ReleaseManifest = {
    ...base,
    fleet: fleet.id,
    model: 'tiny',
    version,
    seq,
    created_at: Date.now() - 1000 + seq,
    expires_at: Date.now() + 86_400_000,
    file: { ...base.file, sha256 },
  }
  return signOperatorMessage(m, fleet.signer)
}

/** A node: its store and verifier; `take` verifies and stores like ingest does. */
function node() {
  const store = new MessageStore({ logger: silentLogger() }, {})
  const verify = createFleetVerifier({ trust: fleet.trust, store })
  const take = (bytes: Uint8Array): string => {
    const r = verify(bytes, Date.now()) as VerifyOutcome
    if (!r.ok) return r.error.code
    store.add(r.value, bytes)
    return 'accepted'
  }
  const outcome = () =>
    resolveReleases(store.releases().map((r) => ({ manifest: r.message, digest: r.digest }))).conflicts.map((c) => [
      `${c.model}@${c.version}`,
      c.outcome,
    ])
  return { store, take, outcome }
}

describe('manifests of one model@version in any order', () => {
  test('the higher seq first, then the lower: both held, the same outcome as in seq order', async () => {
    const s1 = await signed('1.0.0', 1, 'a'.repeat(64))
    const s2 = await signed('1.0.0', 2, 'b'.repeat(64))
    const inOrder = node()
    assert.deepEqual([inOrder.take(s1), inOrder.take(s2)], ['accepted', 'accepted'])
    const reversed = node()
    assert.deepEqual([reversed.take(s2), reversed.take(s1)], ['accepted', 'accepted'])
    assert.deepEqual(reversed.outcome(), [['tiny@1.0.0', 'conflicted']])
    assert.deepEqual(reversed.outcome(), inOrder.outcome())
  })

  test('a lower seq for a version not held is still a rollback; a replay is still a replay', async () => {
    const n = node()
    assert.equal(n.take(await signed('2.0.0', 5, 'a'.repeat(64))), 'accepted')
    assert.equal(n.take(await signed('1.0.0', 3, 'b'.repeat(64))), 'ERR_ROLLBACK')
    assert.equal(n.take(await signed('3.0.0', 4, 'c'.repeat(64))), 'ERR_ROLLBACK')
    assert.equal(n.store.releases().length, 1)
  })
})
