import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  addValue,
  mergeSketches,
  newSketch,
  normalizeSketch,
  quantile,
  toWire,
} from '../../protocols/rollout/sketch.ts'

function sketchOf(values: number[], alpha = 0.01) {
  let s = newSketch(alpha)
  for (const v of values) s = addValue(s, v)
  return s
}

function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(q * (sorted.length - 1))]
}

const latency = fc.oneof(fc.double({ min: 0.01, max: 1e6, noNaN: true }), fc.constant(0))
const device = fc.array(latency, { minLength: 0, maxLength: 60 })

describe('sketch', () => {
  test('merged sketches of 3 devices answer quantiles within alpha of the exact quantile', () => {
    fc.assert(
      fc.property(device, device, device, fc.double({ min: 0, max: 1, noNaN: true }), (a, b, c, q) => {
        fc.pre(a.length + b.length + c.length > 0)
        const merged = mergeSketches(sketchOf(a), sketchOf(b), sketchOf(c))
        const all = [...a, ...b, ...c]
        assert.equal(merged.count, all.length)
        const exact = exactQuantile(all, q)
        const est = quantile(merged, q)!
        assert.ok(Math.abs(est - exact) <= 0.01 * exact + 1e-12, `q=${q} exact=${exact} est=${est}`)
      }),
      { numRuns: 300 },
    )
  })

  test('merge is commutative and associative on counts and bins', () => {
    fc.assert(
      fc.property(device, device, device, (a, b, c) => {
        const [sa, sb, sc] = [sketchOf(a), sketchOf(b), sketchOf(c)]
        const strip = (s: ReturnType<typeof newSketch>) => ({ ...s, sum: 0 })
        assert.deepEqual(strip(mergeSketches(sa, sb)), strip(mergeSketches(sb, sa)))
        assert.deepEqual(
          strip(mergeSketches(mergeSketches(sa, sb), sc)),
          strip(mergeSketches(sa, mergeSketches(sb, sc))),
        )
        assert.deepEqual(strip(mergeSketches(sa, sb, sc)), strip(sketchOf([...a, ...b, ...c])))
      }),
      { numRuns: 200 },
    )
  })

  test('wire form has sorted unique bins and keeps quantiles', () => {
    const s = { ...sketchOf([5, 500, 50]), bins: [] as Array<[number, number]> }
    const raw = sketchOf([5, 500, 50])
    s.bins = [...raw.bins].reverse()
    s.bins.push([raw.bins[0][0], 2])
    s.count += 2
    const w = toWire(s)
    for (let k = 1; k < w.bins.length; k++) assert.ok(w.bins[k - 1][0] < w.bins[k][0])
    assert.equal(w.bins[0][1], 3)
    assert.deepEqual(normalizeSketch(raw), raw)
    assert.ok(Math.abs(quantile(s, 1)! - 500) <= 5)
  })

  test('empty sketch and bad input', () => {
    assert.equal(quantile(newSketch(), 0.5), null)
    assert.throws(() => addValue(newSketch(), -1), /finite/)
    assert.throws(() => mergeSketches(newSketch(0.01), newSketch(0.02)), /alpha/)
    assert.equal(quantile(sketchOf([0, 0, 0, 7]), 0.5), 0)
  })
})

test('merge recomputes count from the buckets', () => {
  const s = sketchOf([10, 20, 30])
  const liar = { ...s, count: 1000 }
  assert.equal(mergeSketches(liar).count, 3)
  assert.ok(Math.abs(quantile(mergeSketches(liar), 1)! - 30) <= 0.3)
})
