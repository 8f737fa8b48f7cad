/**
 * The two kinds of series FleetHistory keeps, each a fine and a coarse HistoryRing:
 * a release's (merged over devices, with a latency sketch per bucket) and a device's.
 */
import { Sketch } from '../../protocols/schemas/index.ts'
import {
  HISTORY_DEVICE_COARSE,
  HISTORY_DEVICE_FINE,
  HISTORY_RELEASE_COARSE,
  HISTORY_RELEASE_FINE,
  HISTORY_SKETCH_MAX_BINS,
} from './constants.ts'
import { HistoryRing, type RingJson } from './history-ring.ts'

const RELEASE_FIELDS = {
  reports: 'sum',
  requests: 'sum',
  errors: 'sum',
  tokens_in: 'sum',
  tokens_out: 'sum',
  restarts: 'sum',
  ooms: 'sum',
  failures: 'sum',
  devices: 'sum',
} as const

const DEVICE_FIELDS = {
  reports: 'sum',
  requests: 'sum',
  errors: 'sum',
  cpu_sum: 'sum',
  ram_sum: 'sum',
  temp_sum: 'sum',
  temp_n: 'sum',
} as const

type ReleaseValues = Partial<Record<Exclude<keyof typeof RELEASE_FIELDS, 'devices'>, number>>

/** A series in JSON (persisted). */
export interface SeriesJson {
  fine: RingJson
  coarse: RingJson
  /** Release series: [ring, bucket number, sketch] triples. */
  sketches?: Array<['fine' | 'coarse', number, Sketch]>
  /** Release series: [ring, device, bucket number] of the devices counted as serving it. */
  counted?: Array<['fine' | 'coarse', string, number]>
}

/** Merges `add` into `into`, keeping at most HISTORY_SKETCH_MAX_BINS bins (the lowest fold into `zero`). */
function mergeBounded(into: Sketch | undefined, add: Sketch): Sketch {
  if (into === undefined) return trim(add)
  if (into.alpha !== add.alpha) return into
  const bins = new Map<number, number>(into.bins)
  for (const [i, c] of add.bins) bins.set(i, (bins.get(i) ?? 0) + c)
  return trim({
    alpha: into.alpha,
    count: into.count + add.count,
    sum: into.sum + add.sum,
    min: Math.min(into.min, add.min),
    max: Math.max(into.max, add.max),
    zero: into.zero + add.zero,
    bins: [...bins].sort((a, b) => a[0] - b[0]),
  })
}

function trim(s: Sketch): Sketch {
  if (s.bins.length <= HISTORY_SKETCH_MAX_BINS) return s
  // keep the upper tail exact (p95/p99 live there); the lowest bins fold into the zero count
  const drop = s.bins.length - HISTORY_SKETCH_MAX_BINS
  const zero = s.zero + s.bins.slice(0, drop).reduce((a, [, c]) => a + c, 0)
  return { ...s, zero, bins: s.bins.slice(drop) }
}

/** A release's history, merged over devices. */
export class ReleaseSeries {
  readonly fine = new HistoryRing(RELEASE_FIELDS, HISTORY_RELEASE_FINE.stepMs, HISTORY_RELEASE_FINE.slots)
  readonly coarse = new HistoryRing(RELEASE_FIELDS, HISTORY_RELEASE_COARSE.stepMs, HISTORY_RELEASE_COARSE.slots)
  /** Merged latency sketch per bucket number, per ring (pruned with the ring). */
  readonly sketches = { fine: new Map<number, Sketch>(), coarse: new Map<number, Sketch>() }
  /** Per device, the last bucket it was counted in as serving this version, per ring. */
  private readonly counted = { fine: new Map<string, number>(), coarse: new Map<string, number>() }
  updated = 0

  get bytes(): number {
    let bins = 0
    for (const m of [this.sketches.fine, this.sketches.coarse]) for (const s of m.values()) bins += s.bins.length
    return this.fine.bytes + this.coarse.bytes + bins * 16 + (this.counted.fine.size + this.counted.coarse.size) * 64
  }

  /** Folds one device's figures for this version in, at time `t`. */
  add(
    t: number,
    device: string,
    values: ReleaseValues,
    active: boolean,
    latency: Sketch | undefined,
    now: number,
  ): void {
    for (const ring of ['fine', 'coarse'] as const) {
      const r = this[ring]
      const start = r.add(t, values, now)
      if (start === undefined) continue
      const k = start / r.stepMs
      if (active && this.counted[ring].get(device) !== k) {
        this.counted[ring].set(device, k)
        r.add(t, { devices: 1 }, now)
      }
      if (latency !== undefined && latency.count > 0) {
        const held = this.sketches[ring].get(k)
        this.sketches[ring].set(k, mergeBounded(held, latency))
        if (held === undefined) {
          // a new bucket: sketches of buckets past the ring's horizon go (at most slots + 1 kept)
          const oldest = r.newest() - r.slots
          for (const b of this.sketches[ring].keys()) if (b <= oldest) this.sketches[ring].delete(b)
        }
      }
    }
  }

  toJSON(): SeriesJson {
    const sketches: SeriesJson['sketches'] = []
    const counted: SeriesJson['counted'] = []
    for (const ring of ['fine', 'coarse'] as const) {
      for (const [k, s] of this.sketches[ring]) sketches.push([ring, k, s])
      for (const [d, k] of this.counted[ring]) counted.push([ring, d, k])
    }
    return { fine: this.fine.toJSON(), coarse: this.coarse.toJSON(), sketches, counted }
  }

  /** Restores a saved series; false when it does not fit these rings. */
  load(json: SeriesJson): boolean {
    if (typeof json !== 'object' || json === null) return false
    if (!this.fine.load(json.fine) || !this.coarse.load(json.coarse)) return false
    const isRing = (r: unknown): r is 'fine' | 'coarse' => r === 'fine' || r === 'coarse'
    for (const [ring, k, s] of Array.isArray(json.sketches) ? json.sketches : []) {
      const ok = Sketch.safeParse(s)
      if (isRing(ring) && Number.isInteger(k) && ok.success) this.sketches[ring].set(k, trim(ok.data))
    }
    for (const [ring, d, k] of Array.isArray(json.counted) ? json.counted : []) {
      if (isRing(ring) && typeof d === 'string' && Number.isInteger(k)) this.counted[ring].set(d, k)
    }
    return true
  }
}

/** A device's history. */
export class DeviceSeries {
  readonly fine = new HistoryRing(DEVICE_FIELDS, HISTORY_DEVICE_FINE.stepMs, HISTORY_DEVICE_FINE.slots)
  readonly coarse = new HistoryRing(DEVICE_FIELDS, HISTORY_DEVICE_COARSE.stepMs, HISTORY_DEVICE_COARSE.slots)
  updated = 0

  get bytes(): number {
    return this.fine.bytes + this.coarse.bytes
  }

  add(t: number, values: Partial<Record<keyof typeof DEVICE_FIELDS, number>>, now: number): void {
    this.fine.add(t, values, now)
    this.coarse.add(t, values, now)
  }

  toJSON(): SeriesJson {
    return { fine: this.fine.toJSON(), coarse: this.coarse.toJSON() }
  }

  load(json: SeriesJson): boolean {
    if (typeof json !== 'object' || json === null) return false
    return this.fine.load(json.fine) && this.coarse.load(json.coarse)
  }
}

export const newReleaseSeries = (): ReleaseSeries => new ReleaseSeries()
export const newDeviceSeries = (): DeviceSeries => new DeviceSeries()
