/**
 * Several valid manifests for one model@version (protocols/rollout/conflicts.ts): same file →
 * the lowest (seq, digest) counts; different files → the version is conflicted. The outcome
 * depends only on the set of manifests (never on arrival order) and, per release, only on that
 * release's own manifests.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { canonicalBytes, canonicalJson, sha256Hex } from '../../protocols/encoding.ts'
import {
  conflictError,
  ERR_RELEASE_CONFLICT,
  newRolloutState,
  ReleaseConflictError,
  resolveReleases,
  type SignedRelease,
  stateForManifest,
} from '../../protocols/rollout/index.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { exampleRelease } from '../fixtures/messages.ts'

const FILE_A = 'a'.repeat(64)
const FILE_B = 'b'.repeat(64)

function signed(over: Partial<ReleaseManifest>, sha = FILE_A): SignedRelease {
  const base = exampleRelease()
  const manifest = exampleRelease({ ...over, file: { ...base.file, sha256: sha } })
  return { manifest, digest: sha256Hex(canonicalBytes(manifest)) }
}

describe('resolveReleases', () => {
  test('one manifest per release: every release, no conflict', () => {
    const a = signed({ model: 'tiny', version: '1.0.0', seq: 1 })
    const b = signed({ model: 'tiny', version: '1.1.0', seq: 2 })
    const r = resolveReleases([b, a])
    assert.deepEqual(
      r.releases.map((x) => x.digest),
      [a.digest, b.digest],
    )
    assert.deepEqual(r.conflicts, [])
  })

  test('the same file published twice: the lowest seq counts, the other is ignored', () => {
    const s1 = signed({ model: 'tiny', version: '1.0.0', seq: 1, created_at: 1000 })
    const s2 = signed({ model: 'tiny', version: '1.0.0', seq: 2, created_at: 2000 })
    const other = signed({ model: 'other', version: '2.0.0', seq: 1 })
    const r = resolveReleases([s2, other, s1])
    assert.deepEqual(
      r.releases.map((x) => x.digest),
      [other.digest, s1.digest],
    )
    assert.equal(r.conflicts.length, 1)
    assert.equal(r.conflicts[0].outcome, 'duplicate')
    assert.equal(r.conflicts[0].chosen, s1.digest)
    assert.deepEqual(
      r.conflicts[0].manifests.map((m) => m.seq),
      [1, 2],
    )
  })

  test('different files under one version: conflicted, refused, the other model untouched', () => {
    const s1 = signed({ model: 'tiny', version: '1.0.0', seq: 1 }, FILE_A)
    const s2 = signed({ model: 'tiny', version: '1.0.0', seq: 2 }, FILE_B)
    const other = signed({ model: 'other', version: '2.0.0', seq: 1 })
    const r = resolveReleases([s1, s2, other, s1])
    assert.deepEqual(
      r.releases.map((x) => x.digest),
      [other.digest],
    )
    assert.deepEqual(
      r.conflicts.map((c) => [c.model, c.version, c.outcome, c.chosen]),
      [['tiny', '1.0.0', 'conflicted', undefined]],
    )
    const err = new ReleaseConflictError('tiny@1.0.0', [s1.digest, s2.digest])
    assert.equal(err.code, ERR_RELEASE_CONFLICT)
    assert.match(err.message, /tiny@1\.0\.0 has 2 valid manifests/)
  })

  test('two versions of one model with one seq (two operator nodes): both conflicted, reason seq', () => {
    const a = signed({ model: 'tiny', version: '1.1.0', seq: 5 }, FILE_A)
    const b = signed({ model: 'tiny', version: '1.5.0', seq: 5 }, FILE_B)
    const before = signed({ model: 'tiny', version: '1.0.0', seq: 4 })
    const after = signed({ model: 'tiny', version: '1.2.0', seq: 6 })
    const other = signed({ model: 'other', version: '1.1.0', seq: 5 }) // another model may use seq 5
    for (const order of [
      [a, b, before, after, other],
      [after, b, other, before, a],
    ]) {
      const r = resolveReleases(order)
      assert.deepEqual(r.releases.map((x) => `${x.manifest.model}@${x.manifest.version}`).sort(), [
        'other@1.1.0',
        'tiny@1.0.0',
        'tiny@1.2.0',
      ])
      assert.deepEqual(
        r.conflicts.map((c) => [c.version, c.outcome, c.reason, c.seq_shared_with]),
        [
          ['1.1.0', 'conflicted', 'seq', ['1.5.0']],
          ['1.5.0', 'conflicted', 'seq', ['1.1.0']],
        ],
      )
    }
    const err = conflictError(resolveReleases([a, b]).conflicts[0])
    assert.equal(err.code, ERR_RELEASE_CONFLICT)
    assert.match(err.message, /tiny@1\.1\.0 shares its seq with version 1\.5\.0/)
  })

  test('the same version and file signed twice with one seq stays a harmless duplicate', () => {
    const s1 = signed({ model: 'tiny', version: '1.0.0', seq: 3, created_at: 1000 })
    const s2 = signed({ model: 'tiny', version: '1.0.0', seq: 3, created_at: 2000 })
    const r = resolveReleases([s2, s1])
    assert.equal(r.releases.length, 1)
    assert.deepEqual(
      r.conflicts.map((c) => [c.outcome, c.reason, c.seq_shared_with]),
      [['duplicate', undefined, undefined]],
    )
  })

  test('a duplicate version whose seq another version also uses is conflicted', () => {
    const s1 = signed({ model: 'tiny', version: '1.0.0', seq: 3 })
    const s2 = signed({ model: 'tiny', version: '1.0.0', seq: 4 })
    const clash = signed({ model: 'tiny', version: '2.0.0', seq: 4 }, FILE_B)
    const r = resolveReleases([s1, s2, clash])
    assert.deepEqual(r.releases, [])
    assert.deepEqual(
      r.conflicts.map((c) => [c.version, c.outcome, c.reason]),
      [
        ['1.0.0', 'conflicted', 'seq'],
        ['2.0.0', 'conflicted', 'seq'],
      ],
    )
  })

  test('property: the outcome depends only on the set (any order, any repetition)', () => {
    const manifest = fc.record({
      model: fc.constantFrom('a', 'b'),
      version: fc.constantFrom('1.0.0', '1.0.0+gguf-q4_0', '2.0.0'),
      seq: fc.integer({ min: 1, max: 4 }),
      file: fc.constantFrom(FILE_A, FILE_B),
      created_at: fc.integer({ min: 0, max: 3 }),
    })
    fc.assert(
      fc.property(
        fc
          .array(manifest, { minLength: 1, maxLength: 12 })
          .chain((ms) =>
            fc.tuple(fc.constant(ms), fc.shuffledSubarray(ms, { minLength: ms.length, maxLength: ms.length })),
          ),
        fc.nat(),
        ([ms, shuffled], dup) => {
          const mk = (x: (typeof ms)[number]) =>
            signed({ model: x.model, version: x.version, seq: x.seq, created_at: x.created_at }, x.file)
          const once = resolveReleases(ms.map(mk))
          const again = shuffled.map(mk)
          again.push(again[dup % again.length]) // a message received twice
          assert.equal(canonicalJson(resolveReleases(again)), canonicalJson(once))
        },
      ),
      { numRuns: 500 },
    )
  })

  test('property: a release’s outcome never depends on another release’s manifests, unless they share a model and seq', () => {
    const one = fc.record({ seq: fc.integer({ min: 1, max: 4 }), file: fc.constantFrom(FILE_A, FILE_B) })
    fc.assert(
      fc.property(fc.array(one, { minLength: 1, maxLength: 4 }), fc.array(one, { maxLength: 6 }), (mine, others) => {
        const a = mine.map((x) => signed({ model: 'a', version: '1.0.0', seq: x.seq }, x.file))
        // the other version of model a has seqs of its own (5–8); model b may reuse any
        const b = others.map((x, i) =>
          signed({ model: i % 2 ? 'a' : 'b', version: '9.0.0', seq: i % 2 ? x.seq + 4 : x.seq }, x.file),
        )
        const pick = (r: ReturnType<typeof resolveReleases>) =>
          canonicalJson({
            releases: r.releases.filter((x) => x.manifest.version === '1.0.0').map((x) => x.digest),
            conflicts: r.conflicts.filter((c) => c.version === '1.0.0'),
          })
        assert.equal(pick(resolveReleases([...b, ...a])), pick(resolveReleases(a)))
      }),
      { numRuns: 300 },
    )
  })
})

describe('stateForManifest', () => {
  test('keeps the facts of this manifest, drops those kept for another manifest of the version', () => {
    const m = exampleRelease({ model: 'tiny', version: '1.0.0', created_at: 1000 })
    const stages = m.policy.stages.map((s) => s.name)
    const mine = newRolloutState('tiny@1.0.0', stages, 1000)
    assert.equal(stateForManifest(mine, m), mine)
    assert.equal(stateForManifest(undefined, m), undefined)
    assert.equal(stateForManifest(newRolloutState('tiny@1.0.0', stages, 2000), m), undefined)
    assert.equal(stateForManifest(newRolloutState('tiny@1.0.0', ['full'], 1000), m), undefined)
    assert.equal(stateForManifest(newRolloutState('tiny@2.0.0', stages, 1000), m), undefined)
  })
})
