/**
 * Range-based set reconciliation (protocols/reconcile.ts): random sets with random differences
 * converge, a session costs O(d · log n) bytes and not O(n), frames are refused when hostile.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { decodeFrame } from '../../protocols/anti-entropy.ts'
import {
  Initiator,
  RECONCILE_LEAF,
  RECONCILE_MAX_ROUNDS,
  ReconcileSet,
  reconcileKey,
  respond,
} from '../../protocols/reconcile.ts'
import { NextFrame, QueryFrame, ReplyFrame } from '../../protocols/reconcile-frames.ts'
import { runSession } from '../../protocols/reconcile-session.ts'

const enc = new TextEncoder()
const id = (n: number, salt = 0) => createHash('sha256').update(`${salt}:${n}`).digest('hex')
const item = (n: number, salt = 0) => {
  const i = id(n, salt)
  return { key: reconcileKey(n % 8, n % 5, i), id: i }
}
type Item = ReturnType<typeof item>

/** Sessions (work per session `work`) with transfers until both sides hold the union; returns the sessions run. */
function converge(a: Item[], b: Item[], work: number, maxSessions: number): number {
  const A = new Map(a.map((x) => [x.id, x]))
  const B = new Map(b.map((x) => [x.id, x]))
  for (let s = 1; s <= maxSessions; s++) {
    const ini = new Initiator(new ReconcileSet(A.values()), work)
    const r = runSession(ini, new ReconcileSet(B.values()))
    for (const x of r.need) A.set(x, B.get(x) as Item)
    for (const x of r.give) B.set(x, A.get(x) as Item)
    if (A.size === B.size && [...A.keys()].every((k) => B.has(k))) return s
  }
  return Number.POSITIVE_INFINITY
}

/** Two sets of `n` shared items, plus `onlyA` and `onlyB` of their own. */
function sets(n: number, onlyA: number, onlyB: number, salt = 0) {
  const shared = Array.from({ length: n }, (_, k) => item(k, salt))
  const a = [...shared, ...Array.from({ length: onlyA }, (_, k) => item(k, salt + 1))]
  const b = [...shared, ...Array.from({ length: onlyB }, (_, k) => item(k, salt + 2))]
  return { a, b }
}

describe('range-based reconciliation', () => {
  test('property: two random sets with random differences always converge, each difference found once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 0, max: 1e6 }),
        (n, da, db, salt) => {
          const { a, b } = sets(n, da, db, salt)
          const r = runSession(new Initiator(new ReconcileSet(a), 10_000), new ReconcileSet(b))
          // with room for every difference, one session finds exactly the difference
          assert.deepEqual(new Set(r.need), new Set(b.slice(n).map((x) => x.id)))
          assert.deepEqual(new Set(r.give), new Set(a.slice(n).map((x) => x.id)))
          // with 25 differences per session, the sets converge in about d / 25 sessions
          assert.ok(converge(a, b, 25, Math.ceil((da + db) / 25) + 2) < Number.POSITIVE_INFINITY)
        },
      ),
      { numRuns: 60 },
    )
  })

  test('property: the bytes of a session are bounded by O(d · log n), not O(n)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20_000 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 40 }),
        (n, da, db) => {
          const { a, b } = sets(n, da, db)
          const r = runSession(new Initiator(new ReconcileSet(a), 10_000), new ReconcileSet(b))
          const bytes = r.bytesQuery + r.bytesReply
          const bound = 2_500 * (da + db + 1) * Math.log2(n + 2)
          assert.ok(bytes <= bound, `${bytes} bytes for n=${n}, d=${da + db} (bound ${Math.round(bound)})`)
          assert.ok(r.roundTrips <= Math.ceil(Math.log(n + 2) / Math.log(RECONCILE_LEAF / 2)) + 2, `${r.roundTrips}`)
        },
      ),
      { numRuns: 40 },
    )
  })

  test('equal sets of 100,000: one round trip of a few hundred bytes; 10 differences: a few dozen KiB', () => {
    const { a, b } = sets(100_000, 0, 0)
    const A = new ReconcileSet(a)
    const same = runSession(new Initiator(A, 2000), new ReconcileSet(b))
    assert.equal(same.roundTrips, 1)
    assert.ok(same.bytesQuery + same.bytesReply < 2_000, `${same.bytesQuery + same.bytesReply}`)
    const d = sets(100_000, 5, 5)
    const r = runSession(new Initiator(new ReconcileSet(d.a), 2000), new ReconcileSet(d.b))
    assert.equal(r.need.size + r.give.size, 10)
    // the old exchange sent every id: 6.7 MB
    assert.ok(r.bytesQuery + r.bytesReply < 64 * 1024, `${r.bytesQuery + r.bytesReply}`)
  })

  test('an empty side gets the first ids in key order (dependencies first), at most the round’s work', () => {
    const { b } = sets(5_000, 0, 0)
    const r = runSession(new Initiator(new ReconcileSet([]), 2000), new ReconcileSet(b))
    assert.equal(r.need.size, 2000)
    const sorted = [...b].sort((x, y) => (x.key < y.key ? -1 : 1)).map((x) => x.id)
    assert.deepEqual([...r.need], sorted.slice(0, 2000))
  })

  test('a diff asks only for what the responder wants (ids dropped by retention are not asked for)', () => {
    const { a, b } = sets(10, 3, 2)
    const dropped = a[11].id
    const reply = respond(new ReconcileSet(b), [{ i: a.map((x) => x.id) }], (x) => x !== dropped)
    assert.equal(reply.length, 1)
    assert.deepEqual(new Set(reply[0].m), new Set([a[10].id, a[12].id]))
    assert.deepEqual(new Set(reply[0].g), new Set(b.slice(10).map((x) => x.id)))
  })

  test('a responder whose fingerprints always differ costs a bounded session', () => {
    const ini = new Initiator(new ReconcileSet(sets(50_000, 0, 0).a), 2000)
    let query: ReturnType<Initiator['next']> = ini.first()
    let frames = 0
    while (query !== undefined) {
      frames++
      assert.ok(decodeFrame(enc.encode(JSON.stringify({ ranges: query })), QueryFrame).ok, 'every query decodes')
      const lying = Array.from({ length: 8_000 }, (_, k) => ({
        b: k.toString(16).padStart(8, '0'),
        f: id(k).slice(0, 32),
      }))
      query = ini.next(lying)
    }
    assert.equal(frames, RECONCILE_MAX_ROUNDS)
  })

  test('keys sort by rank, then sequence number, then id; a huge or bad seq is clamped', () => {
    assert.ok(reconcileKey(0, 99, 'f'.repeat(64)) < reconcileKey(1, 0, '0'.repeat(64)))
    assert.ok(reconcileKey(1, 2, 'f'.repeat(64)) < reconcileKey(1, 10, '0'.repeat(64)))
    assert.equal(reconcileKey(1, 2 ** 60, id(1)).length, 77)
    assert.equal(reconcileKey(1, -5, id(1)), reconcileKey(1, Number.NaN, id(1)))
  })

  test('hostile frames are refused by the schema: bounds that do not increase, two payloads, unknown keys', () => {
    const bad = [
      { ranges: [{ b: 'b' }, { b: 'a' }] },
      { ranges: [{}, { b: 'a' }] },
      { ranges: [{ b: 'a', f: '0'.repeat(32), i: [] }] },
      { ranges: [{ b: 'A' }] },
      { ranges: [{ b: 'a', x: 1 }] },
      { ranges: [{ b: 'a'.repeat(78) }] },
      { ranges: Array.from({ length: 8_193 }, (_, k) => ({ b: k.toString(16).padStart(4, '0') })) },
    ]
    for (const f of bad) {
      const r = decodeFrame(enc.encode(JSON.stringify(f)), QueryFrame)
      assert.ok(!r.ok && r.error.code === 'ERR_SCHEMA', JSON.stringify(f).slice(0, 80))
    }
    const diff = { ranges: [{ b: 'a', g: [id(1)], m: [] }] }
    assert.ok(!decodeFrame(enc.encode(JSON.stringify(diff)), QueryFrame).ok, 'a query carries no diff')
    assert.ok(decodeFrame(enc.encode(JSON.stringify(diff)), ReplyFrame).ok)
    assert.ok(decodeFrame(enc.encode(JSON.stringify({ want: [], offer: [id(2)] })), NextFrame).ok)
  })

  test('property: any query frame gets a reply that decodes, within the limits', () => {
    const set = new ReconcileSet(sets(2_000, 0, 0).a)
    const bound = fc.stringMatching(/^[0-9a-f]{1,6}$/)
    const range = fc.record(
      {
        b: bound,
        f: fc.stringMatching(/^[0-9a-f]{32}$/),
        i: fc.array(
          fc.nat(5000).map((n) => id(n)),
          { maxLength: 40 },
        ),
      },
      { requiredKeys: [] },
    )
    fc.assert(
      fc.property(fc.array(range, { maxLength: 50 }), (raw) => {
        const r = decodeFrame(enc.encode(JSON.stringify({ ranges: raw })), QueryFrame)
        if (!r.ok) return
        const reply = respond(set, r.value.ranges)
        assert.ok(decodeFrame(enc.encode(JSON.stringify({ ranges: reply })), ReplyFrame).ok)
      }),
      { numRuns: 1000 },
    )
  })
})
