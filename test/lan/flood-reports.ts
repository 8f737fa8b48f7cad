/**
 * A health-report flood for LAN tests (used by test/lan/injector.ts `--flood-health-ms`): valid
 * reports signed by the sending peer's own key (enrolled or not), each padded with latency sketch
 * bins to just under the HealthReport wire limit (MAX_SIZE.HealthReport), published one after the
 * other as fast as the receivers take them until the time is up. The bin count is found once by
 * signing probes; a margin keeps later reports (longer seq and dates) under the limit.
 *
 * "As fast as the receivers take them": gossipsub's publish never waits (it appends to each
 * peer's stream and returns), and a stream whose write buffer passes gossipsub's
 * `maxOutboundBufferSize` is aborted, after which publish silently reaches nobody. A flooder that
 * ignores this kills its own streams after ~300 maximum-size reports, before the receivers
 * validated more than a few (what the first LAN run of issue 11 saw), so the caller passes `ready`,
 * which waits until the streams drained (test/lan/injector.ts), and only reports that reached at
 * least one peer count as `delivered`.
 */
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MAX_SIZE } from '../../protocols/constants.ts'
import { type HealthReport, signDeviceMessage } from '../../protocols/index.ts'
import { exampleHealthReport, exampleSketch } from '../fixtures/messages.ts'

/** Bytes kept free under the limit for longer numbers in later reports. */
const MARGIN = 64
/** Most bins of one sketch (the schema's limit). */
const SKETCH_BINS = 4096

/** A report of `key`'s device with `bins` latency bins in all, dated now. */
export function floodReport(fleet: string, key: PrivateKey, seq: number, bins: number, now = Date.now()): HealthReport {
  const r = exampleHealthReport({
    fleet,
    device: peerIdFromPrivateKey(key).toString(),
    seq,
    window: { start: now - 1000, end: now },
  })
  // a sketch holds at most 4096 bins: the rest go to more models' figures
  const first = r.inference[0]
  r.inference = []
  for (let left = bins, k = 0; left > 0; left -= SKETCH_BINS, k++) {
    const n = Math.min(left, SKETCH_BINS)
    r.inference.push({
      ...first,
      model: `${first.model}-${k}`,
      latency_ms: exampleSketch({ bins: Array.from({ length: n }, (_, i): [number, number] => [i, 1 + (i % 7)]) }),
    })
  }
  return r
}

/** The most bins whose signed report stays under the HealthReport limit (less the margin). */
export async function maxSizeBins(fleet: string, key: PrivateKey): Promise<{ bins: number; wireSize: number }> {
  let lo = 1
  let hi = 4 * SKETCH_BINS
  const size = async (n: number) => (await signDeviceMessage(floodReport(fleet, key, 1, n), key)).byteLength
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if ((await size(mid)) <= MAX_SIZE.HealthReport - MARGIN) lo = mid
    else hi = mid - 1
  }
  return { bins: lo, wireSize: await size(lo) }
}

/** What a flood sent. */
export interface FloodCounts {
  sent: number
  /** Reports gossipsub handed to at least one peer's stream. */
  delivered: number
  failed: number
  bytes: number
  wireSize: number
}

/**
 * Publishes maximum-size reports signed by `key` until `durationMs` has passed; `progress` is
 * called about every 5 s.
 */
export async function floodReports(
  publish: (bytes: Uint8Array) => Promise<{ recipients: readonly unknown[] }>,
  opts: {
    fleet: string
    key: PrivateKey
    durationMs: number
    progress?: (c: FloodCounts) => void
    /** Resolves once the peers' streams can take another report (backpressure). */
    ready?: () => Promise<void>
  },
): Promise<FloodCounts> {
  const { bins, wireSize } = await maxSizeBins(opts.fleet, opts.key)
  const c: FloodCounts = { sent: 0, delivered: 0, failed: 0, bytes: 0, wireSize }
  const end = Date.now() + opts.durationMs
  let nextProgress = Date.now() + 5000
  // a seq above any the device's own daemon used (its reports are numbered from 1, one a second)
  let seq = Date.now()
  while (Date.now() < end) {
    const bytes = await signDeviceMessage(floodReport(opts.fleet, opts.key, seq++, bins), opts.key)
    try {
      await opts.ready?.()
      const { recipients } = await publish(bytes)
      if (recipients.length > 0) c.delivered++
      c.sent++
      c.bytes += bytes.byteLength
    } catch {
      c.failed++
      // nobody to publish to (every receiver pruned us): do not spin
      await new Promise((r) => setTimeout(r, 10))
    }
    if (Date.now() >= nextProgress) {
      opts.progress?.({ ...c })
      nextProgress += 5000
    }
  }
  return c
}
