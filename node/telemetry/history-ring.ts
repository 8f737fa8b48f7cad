/**
 * A fixed-size ring of time buckets for one series: `slots` buckets of `stepMs` each, a
 * Float32Array per field. Bucket `k` (`k = floor(t / stepMs)`) lives at `k % slots`; its start
 * time is kept beside it, so a slot reused for a newer bucket is cleared first and a value older
 * than the ring's horizon is dropped. Memory is fixed at creation: `slots × (fields + 1) × 4` bytes
 * (+ 8 per slot for the bucket number), whatever arrives.
 *
 * Fields combine by `sum` (counts) or `max` (peaks); means are a sum divided by a count field.
 */

/** How a field combines values of one bucket. */
export type Combine = 'sum' | 'max'

/** The fields of a ring and how each combines. */
export type RingFields = Readonly<Record<string, Combine>>

/** A ring in JSON (persisted): data is base64 of each field's Float32Array, and of the bucket numbers. */
export interface RingJson {
  stepMs: number
  slots: number
  buckets: string
  fields: Record<string, string>
}

const EMPTY = -1

/** A ring of `slots` buckets of `stepMs`, one Float32Array per field. */
export class HistoryRing<F extends RingFields> {
  readonly stepMs: number
  readonly slots: number
  private readonly fields: F
  /** Bucket number held by each slot (EMPTY when none). Float64: bucket numbers exceed 2^24. */
  private readonly bucket: Float64Array
  private readonly data: Record<keyof F, Float32Array>
  /** The newest bucket number held (EMPTY when none). */
  private newestK = EMPTY

  constructor(fields: F, stepMs: number, slots: number) {
    this.fields = fields
    this.stepMs = stepMs
    this.slots = slots
    this.bucket = new Float64Array(slots).fill(EMPTY)
    this.data = Object.fromEntries(Object.keys(fields).map((k) => [k, new Float32Array(slots)])) as Record<
      keyof F,
      Float32Array
    >
  }

  /** Bytes this ring holds. */
  get bytes(): number {
    return this.slots * (8 + 4 * Object.keys(this.fields).length)
  }

  /** The slot of time `t` given the newest bucket seen is `newest`; undefined when too old. */
  private slotFor(t: number, newest: number): number | undefined {
    const k = Math.floor(t / this.stepMs)
    if (k <= newest - this.slots) return undefined
    const i = ((k % this.slots) + this.slots) % this.slots
    if (this.bucket[i] !== k) {
      if (this.bucket[i] > k) return undefined // a newer bucket already took the slot
      this.bucket[i] = k
      if (k > this.newestK) this.newestK = k
      for (const f of Object.keys(this.fields)) this.data[f as keyof F][i] = 0
    }
    return i
  }

  /** The newest bucket number held (EMPTY when none). */
  newest(): number {
    return this.newestK
  }

  /**
   * Adds `values` at time `t`; `now` bounds the horizon (a value older than `slots` buckets before
   * now is dropped). Returns the bucket's start time, or undefined when dropped.
   */
  add(t: number, values: Partial<Record<keyof F, number>>, now: number): number | undefined {
    const i = this.slotFor(t, Math.max(Math.floor(now / this.stepMs), this.newest()))
    if (i === undefined) return undefined
    for (const [f, v] of Object.entries(values) as [keyof F, number | undefined][]) {
      if (v === undefined || !Number.isFinite(v)) continue
      const col = this.data[f]
      if (col === undefined) continue
      col[i] = this.fields[f] === 'max' ? Math.max(col[i], v) : col[i] + v
    }
    return this.bucket[i] * this.stepMs
  }

  /**
   * Buckets with data in [from, to], oldest first: `{ t, ...fields }`. Only buckets within the
   * horizon count: the newest `slots` buckets up to the newer of `now` and the newest bucket held.
   */
  range(from: number, to: number, now = 0): Array<{ t: number } & Record<keyof F, number>> {
    const out: Array<{ t: number } & Record<keyof F, number>> = []
    const oldest = Math.max(Math.floor(now / this.stepMs), this.newest()) - this.slots
    for (let i = 0; i < this.slots; i++) {
      const k = this.bucket[i]
      if (k === EMPTY || k <= oldest) continue
      const t = k * this.stepMs
      if (t + this.stepMs <= from || t > to) continue
      const row = { t } as { t: number } & Record<keyof F, number>
      for (const f of Object.keys(this.fields) as (keyof F)[]) row[f] = this.data[f][i] as never
      out.push(row)
    }
    return out.sort((a, b) => a.t - b.t)
  }

  toJSON(): RingJson {
    const b64 = (a: Float32Array | Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64')
    const fields: Record<string, string> = {}
    for (const f of Object.keys(this.fields)) fields[f] = b64(this.data[f as keyof F])
    return { stepMs: this.stepMs, slots: this.slots, buckets: b64(this.bucket), fields }
  }

  /** Restores from JSON written by toJSON() with the same step and size; false (ring untouched) when it does not fit. */
  load(json: RingJson): boolean {
    if (typeof json !== 'object' || json === null) return false
    if (json.stepMs !== this.stepMs || json.slots !== this.slots) return false
    const decode = (s: string, bytes: number): Buffer | undefined => {
      const buf = Buffer.from(typeof s === 'string' ? s : '', 'base64')
      return buf.byteLength === bytes ? buf : undefined
    }
    const buckets = decode(json.buckets, this.slots * 8)
    if (buckets === undefined) return false
    const cols: Array<[keyof F, Buffer]> = []
    for (const f of Object.keys(this.fields)) {
      const col = decode(json.fields?.[f], this.slots * 4)
      if (col === undefined) return false
      cols.push([f as keyof F, col])
    }
    const numbers = new Float64Array(buckets.buffer.slice(buckets.byteOffset, buckets.byteOffset + buckets.byteLength))
    if (!numbers.every((k, i) => k === EMPTY || (Number.isInteger(k) && k >= 0 && k % this.slots === i))) return false
    this.bucket.set(numbers)
    this.newestK = numbers.reduce((a, b) => Math.max(a, b), EMPTY)
    for (const [f, col] of cols) {
      this.data[f].set(new Float32Array(col.buffer.slice(col.byteOffset, col.byteOffset + col.byteLength)))
    }
    return true
  }
}
