/**
 * DDSketch-style mergeable quantile sketch (the `Sketch` wire schema). A positive value v lands in
 * bucket i = ceil(log_gamma(v)), gamma = (1+alpha)/(1-alpha), i.e. bucket i holds (gamma^(i-1), gamma^i].
 * Answering a quantile with 2*gamma^i/(gamma+1) is within a relative error alpha of every value in
 * the bucket. Merging adds bucket counts, so it is commutative and associative (exactly, for counts
 * and bins; `sum` is a float sum and is only approximately associative).
 */
import { InvalidInputError } from '../errors.ts'
import type { Sketch } from '../schemas/health.ts'
import { SKETCH_ALPHA, SKETCH_MIN_VALUE } from './constants.ts'

/** An empty sketch with relative accuracy `alpha`. */
export function newSketch(alpha: number = SKETCH_ALPHA): Sketch {
  if (!(alpha > 0 && alpha <= 0.5)) throw new InvalidInputError(`sketch alpha must be in (0, 0.5], got ${alpha}`)
  return { alpha, count: 0, sum: 0, min: 0, max: 0, zero: 0, bins: [] }
}

function gammaOf(alpha: number): number {
  return (1 + alpha) / (1 - alpha)
}

/** Bucket index of a value above SKETCH_MIN_VALUE. */
export function bucketIndex(alpha: number, value: number): number {
  const lg = Math.log(gammaOf(alpha))
  let i = Math.ceil(Math.log(value) / lg)
  // Guard against float error at bucket boundaries: keep gamma^(i-1) < v <= gamma^i.
  if (value > Math.exp(i * lg)) i += 1
  else if (value <= Math.exp((i - 1) * lg)) i -= 1
  return i === 0 ? 0 : i // never -0
}

/** Representative value of bucket i: within relative error alpha of anything in the bucket. */
export function bucketValue(alpha: number, index: number): number {
  const gamma = gammaOf(alpha)
  return (2 * gamma ** index) / (gamma + 1)
}

/** Returns a new sketch with `value` (>= 0, finite) added `count` times. Does not mutate `s`. */
export function addValue(s: Sketch, value: number, count = 1): Sketch {
  if (!Number.isFinite(value) || value < 0) throw new InvalidInputError(`sketch values must be finite and >= 0`)
  if (!Number.isInteger(count) || count <= 0) throw new InvalidInputError('sketch count must be a positive integer')
  const out: Sketch = {
    alpha: s.alpha,
    count: s.count + count,
    sum: s.sum + value * count,
    min: s.count === 0 ? value : Math.min(s.min, value),
    max: s.count === 0 ? value : Math.max(s.max, value),
    zero: s.zero,
    bins: s.bins.map(([i, c]) => [i, c] as [number, number]),
  }
  if (value <= SKETCH_MIN_VALUE) {
    out.zero += count
    return out
  }
  const idx = bucketIndex(s.alpha, value)
  const at = out.bins.findIndex(([i]) => i >= idx)
  if (at === -1) out.bins.push([idx, count])
  else if (out.bins[at][0] === idx) out.bins[at][1] += count
  else out.bins.splice(at, 0, [idx, count])
  return out
}

/** Returns a sketch with bins sorted by index, duplicate indexes summed and empty bins removed. */
export function normalizeSketch(s: Sketch): Sketch {
  const byIndex = new Map<number, number>()
  for (const [i, c] of s.bins) if (c > 0) byIndex.set(i, (byIndex.get(i) ?? 0) + c)
  const bins = [...byIndex.entries()].sort((a, b) => a[0] - b[0]) as Array<[number, number]>
  return { alpha: s.alpha, count: s.count, sum: s.sum, min: s.min, max: s.max, zero: s.zero, bins }
}

/** The wire form: normalized (sorted sparse bins). */
export function toWire(s: Sketch): Sketch {
  return normalizeSketch(s)
}

/** Merges sketches of the same alpha. Throws InvalidInputError on differing alphas. */
export function mergeSketches(...sketches: Sketch[]): Sketch {
  if (sketches.length === 0) return newSketch()
  const alpha = sketches[0].alpha
  const byIndex = new Map<number, number>()
  let count = 0
  let sum = 0
  let zero = 0
  let min = Number.POSITIVE_INFINITY
  let max = Number.NEGATIVE_INFINITY
  for (const s of sketches) {
    if (s.alpha !== alpha) throw new InvalidInputError(`cannot merge sketches with alpha ${alpha} and ${s.alpha}`)
    if (s.count === 0) continue
    // The count is recomputed from the buckets, so a sketch whose `count` disagrees with its bins
    // (a buggy or lying reporter) cannot shift the merged quantiles.
    count += s.zero
    sum += s.sum
    zero += s.zero
    min = Math.min(min, s.min)
    max = Math.max(max, s.max)
    for (const [i, c] of s.bins) {
      byIndex.set(i, (byIndex.get(i) ?? 0) + c)
      count += c
    }
  }
  if (count === 0) return newSketch(alpha)
  const bins = [...byIndex.entries()].sort((a, b) => a[0] - b[0]) as Array<[number, number]>
  return { alpha, count, sum, min, max, zero, bins }
}

/**
 * The q-quantile (0 <= q <= 1) of the values added, within relative error alpha of the exact
 * lower quantile x[floor(q * (count - 1))] of the sorted values. Null for an empty sketch.
 */
export function quantile(s: Sketch, q: number): number | null {
  if (s.count === 0) return null
  if (!(q >= 0 && q <= 1)) throw new InvalidInputError(`quantile must be in [0, 1], got ${q}`)
  const rank = Math.floor(q * (s.count - 1))
  if (rank < s.zero) return 0
  let seen = s.zero
  const bins = s.bins.length > 1 && !isSorted(s.bins) ? normalizeSketch(s).bins : s.bins
  for (const [i, c] of bins) {
    seen += c
    if (seen > rank) return clamp(bucketValue(s.alpha, i), s.min, s.max)
  }
  return s.max
}

function isSorted(bins: Sketch['bins']): boolean {
  for (let k = 1; k < bins.length; k++) if (bins[k - 1][0] >= bins[k][0]) return false
  return true
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi)
}
