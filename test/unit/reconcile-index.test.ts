/**
 * The store's sorted reconciliation index (node/mesh/reconcile-index.ts): after any sequence of
 * additions and removals, its snapshot is the set built from scratch, health reports past the
 * window left out.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { keyOf, ReconcileIndex } from '../../node/mesh/reconcile-index.ts'
import type { StoredMessage } from '../../node/mesh/types.ts'
import { ReconcileSet } from '../../protocols/reconcile.ts'

const TYPES = ['TrustRoot', 'ReleaseManifest', 'OperatorCommand', 'HealthReport'] as const

function message(n: number): StoredMessage {
  const type = TYPES[n % TYPES.length]
  return {
    digest: createHash('sha256').update(String(n)).digest('hex'),
    type,
    message: { type, seq: n % 7 },
    receivedAt: n,
  } as unknown as StoredMessage
}

describe('reconciliation index', () => {
  test('property: after random additions and removals the snapshot is the set built from scratch', () => {
    const op = fc.record({ add: fc.boolean(), n: fc.nat(60) })
    fc.assert(
      fc.property(fc.array(fc.array(op, { maxLength: 30 }), { maxLength: 6 }), fc.nat(60), (batches, since) => {
        const ix = new ReconcileIndex()
        const held = new Map<string, StoredMessage>()
        for (const batch of batches) {
          for (const { add, n } of batch) {
            const m = message(n)
            if (add && !held.has(m.digest)) {
              held.set(m.digest, m)
              ix.add(m, m.type === 'HealthReport' ? m.receivedAt : Number.POSITIVE_INFINITY)
            } else if (!add && held.has(m.digest)) {
              held.delete(m.digest)
              ix.remove(m)
            }
          }
          const want = [...held.values()].filter((m) => m.type !== 'HealthReport' || m.receivedAt >= since)
          const fresh = new ReconcileSet(want.map((m) => ({ key: keyOf(m), id: m.digest })))
          const snap = ix.snapshot(since)
          assert.deepEqual(snap.keys, fresh.keys)
          assert.equal(snap.fingerprint(0, snap.size), fresh.fingerprint(0, fresh.size))
        }
      }),
      { numRuns: 300 },
    )
  })
})
