/**
 * Issue 11, first acceptance item: a store flood changes nothing that matters, with real `llmesh`
 * processes in network namespaces. Seed + 3 devices; d3 turns hostile: its daemon stops and a bare
 * mesh peer with d3's own (enrolled) key publishes maximum-size valid health reports as fast as it
 * can for 60 s (test/lan/injector.ts `--flood-health-ms`), while a fresh unenrolled identity does
 * the same from another host. During the flood a tiny release with a one-stage policy is
 * published. Checked on every honest node (seed, d1, d2):
 * - its store holds at most d3's report quota (REPORT_QUOTA_BYTES, + 2 MiB of honest traffic) more than before, under the
 *   documented bound (`storeWireBound`), and its heap grows less than 8× that bound (garbage included)
 *   (docs/protocol.md, "Message retention"); d3's quota was reached there (an `ERR_QUOTA` refusal counted, or,
 *   where anti-entropy alone filled it, d3's reports held leave no room for one more);
 * - nothing signed by the unenrolled key is in its log, and its refusals were counted
 *   (`ERR_NOT_ENROLLED`: ignored by gossip, so it costs no score);
 * - every honest device serves the release published during the flood, at most 2× (+10 s) slower
 *   than a release published without a flood (measured first, on the same bed), and every honest
 *   device's reports reached every honest node during the flood;
 * - where a flooder's own copies arrived first, its gossip score went negative (d3: a signer past
 *   its quota sending its own messages) and it ended up banned (node/mesh/peer-bans.ts:
 *   disconnected and refused, so the flood stops costing transport work); that is at least one
 *   honest node each (a node that got d3's reports from honest forwarders first sees only
 *   duplicates from d3, which cost no score).
 */

import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { NodeStatus } from '../../node/api/status.ts'
import { REPORT_QUOTA_BYTES, VERDICT_QUOTA_BYTES } from '../../node/mesh/store-constants.ts'
import { storeWireBound } from '../../node/mesh/store-retention.ts'
import { POLICIES, scaled, waitFor } from '../helpers/index.ts'
import { injectorEvents, type LanNode, startInjector } from './helpers.ts'
import { badLines, canRunBed, until } from './netns.ts'
import { publishTiny, type RolloutBed, serving, startRolloutBed, statusOf } from './rollout-bed.ts'
import { figuresAt, type Held, MIB, metric, metricsAt, reportsHeldAt, showFigures } from './store-flood-readers.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'
/** The release published without a flood (the baseline) and the one published during it. */
const V0 = '0.9.0'
const V = '1.0.0'
const FLOOD_MS = 60_000
/** The injectors' dials and their wait for the honest nodes' subscriptions (idle-machine figures, scaled). */
const DIAL_ATTEMPTS = 3
const DIAL_TIMEOUT_MS = 5_000
const SUBSCRIBERS_WAIT_MS = 20_000
/** An injector's start before its first dial (loading the mesh stack). */
const INJECTOR_START_MS = 10_000
const POLICY = POLICIES.ONE_STAGE_EXCEPT('seed')

describe('a flood of maximum-size reports (network namespaces)', { skip, timeout: scaled(300_000) }, () => {
  let rb: RolloutBed

  before(async () => {
    rb = await startRolloutBed({ tags: [[], [], []], spareHosts: 1 })
  })

  after(async () => {
    await rb?.bed.destroy()
  })

  test('an enrolled and an unenrolled flooder: stores bounded, nothing unenrolled stored, the rollout goes through, the flooder loses score', async (t) => {
    const { bed, seed, fleet } = rb
    const [d1, d2, d3] = rb.devices
    const honest = [seed, d1, d2]
    const hostileId = d3.info.peerId
    const metricsOf = (n: LanNode) => metricsAt(bed, n)
    const figures = (n: LanNode) => figuresAt(bed, n)
    const d3HeldAt = (n: LanNode) => reportsHeldAt(n, hostileId, unenrolledId)

    // d3 turns hostile: its daemon stops, its enrolled key floods
    assert.equal((await bed.terminate(d3.proc)).code, 0)
    // the baseline: how long a release takes from publish to d1 and d2 serving it, on this bed at
    // this machine's load, with no flood (a different model, so nothing is shared with the next)
    const baseAt = Date.now()
    await publishTiny(rb, V0, POLICY, { seed: 90 })
    await until(
      async () => (await Promise.all([d1, d2].map((d) => statusOf(bed, d)))).every((s) => serving(s, V0)),
      120_000,
      'd1 and d2 serving the baseline release',
    )
    const baseline = Date.now() - baseAt
    t.diagnostic(`baseline: ${V0} published and served by d1 and d2 in ${baseline} ms with no flood`)
    const beforeFlood = await Promise.all(honest.map(figures))
    for (const [i, n] of honest.entries()) t.diagnostic(`${n.proc.name} before: ${showFigures(beforeFlood[i])}`)

    const dial = honest.flatMap((n) => ['--dial', `/ip4/${n.host.ip}/tcp/4001/p2p/${n.info.peerId}`])
    const flood = (name: string, host: number, identity: string[]) =>
      startInjector(bed, bed.hosts[host], name, [
        ...['--fleet', fleet.dir, '--min-subscribers', String(honest.length)],
        ...['--subscribers-wait-ms', String(scaled(SUBSCRIBERS_WAIT_MS))],
        ...['--dial-attempts', String(DIAL_ATTEMPTS), '--dial-timeout-ms', String(scaled(DIAL_TIMEOUT_MS))],
        ...['--flood-health-ms', String(FLOOD_MS), ...identity, ...dial],
      ])
    const floodStart = Date.now()
    const injectors = [
      flood('hostile', 3, ['--identity', join(d3.dataDir, 'identity.key')]),
      flood('unenrolled', 4, []),
    ]
    const [hostile, unenrolled] = injectors
    // an injector that dialed nobody prints `done` without flooding: that ends the wait too, and fails below
    const settled = (p: (typeof injectors)[number]) =>
      injectorEvents(p).some((e) => e.event === 'flood-started' || e.event === 'done') || p.child.exitCode !== null
    await waitFor(() => injectors.every(settled), {
      // the injector's own worst case: start, every dial timing out on every attempt, the subscriber wait
      timeoutMs: INJECTOR_START_MS + honest.length * DIAL_ATTEMPTS * DIAL_TIMEOUT_MS + SUBSCRIBERS_WAIT_MS,
      what: 'both flooders dialed and started',
      detail: () => injectors.map((p) => ({ name: p.name, exit: p.child.exitCode, events: injectorEvents(p) })),
    })
    for (const p of injectors) {
      const events = injectorEvents(p)
      const started = events.find((e) => e.event === 'flood-started')
      assert.ok(started, `${p.name} never flooded: ${JSON.stringify(events)} ${p.stderr.slice(-500)}`)
      t.diagnostic(`${p.name} started flooding with ${started.subscribers} subscribers`)
    }
    const unenrolledId = injectorEvents(unenrolled).find((e) => e.event === 'started')?.peerId as string
    assert.ok(unenrolledId !== undefined && unenrolledId !== hostileId)

    // during the flood: a release, every honest device serving it, d3's score negative everywhere
    const publishAt = Date.now()
    try {
      await publishTiny(rb, V, POLICY, { seed: 91 })
    } catch (err) {
      const now = await Promise.all(honest.map((n) => figures(n).catch((e) => e as Error)))
      for (const [i, n] of honest.entries())
        t.diagnostic(`${n.proc.name} when publishing failed: ${now[i] instanceof Error ? now[i] : showFigures(now[i])}`)
      t.diagnostic(`flooders: ${JSON.stringify(injectors.map((p) => injectorEvents(p).slice(-1)))}`)
      throw err
    }
    const published = Date.now()
    let servedAt: number | undefined
    const minScore = new Map<string, number>()
    const unenrolledScore = new Map<string, number>()
    /** Per (node, honest device): the newest report window end it showed while d3 was flooding. */
    const reportsDuring = new Map<string, number>()
    const flooding = () => !injectorEvents(hostile).some((e) => e.event === 'flood-done')
    await waitFor(
      async () => {
        const ss = await Promise.all(honest.map((n) => statusOf(bed, n)))
        ss.forEach((s, i) => {
          const mesh = s.mesh as { scores?: Record<string, number>; banned?: Array<{ peer: string }> }
          const scores = mesh.scores ?? {}
          const name = honest[i].proc.name
          if (scores[hostileId] !== undefined) minScore.set(name, Math.min(minScore.get(name) ?? 0, scores[hostileId]))
          // a banned peer is disconnected, so its score is no longer listed: the ban is the penalty
          if (mesh.banned?.some((b) => b.peer === hostileId)) minScore.set(name, Math.min(minScore.get(name) ?? 0, -80))
          if (scores[unenrolledId] !== undefined) unenrolledScore.set(name, scores[unenrolledId])
          if (!flooding()) return
          for (const h of honest) {
            const last = s.devices.find((d) => d.id === h.info.peerId)?.last_report ?? 0
            reportsDuring.set(`${name}:${h.proc.name}`, last)
          }
        })
        if (servedAt === undefined && [ss[1], ss[2]].every((s) => serving(s, V))) servedAt = Date.now()
        // negative where d3's own copies arrived first: a node that got its reports from honest
        // forwarders first sees only duplicates of d3's, which cost no score (the last plain run: seed
        // -80, d1 -410, d2 0 after 8 refusals in its first second and nothing from d3 since)
        return servedAt !== undefined && honest.some((n) => (minScore.get(n.proc.name) ?? 0) < 0)
      },
      {
        timeoutMs: 90_000,
        intervalMs: 200,
        what: 'every honest device serving the release and d3 with a negative score at an honest node',
        detail: async () => ({
          servedAt,
          minScore: Object.fromEntries(minScore),
          models: (await Promise.all(honest.map((n) => statusOf(bed, n)))).map((s) => [s.models.tiny, s.inference]),
          hostile: injectorEvents(hostile).slice(-3),
          unenrolled: injectorEvents(unenrolled).slice(-2),
          stderr: hostile.stderr.slice(-2000),
        }),
      },
    )
    t.diagnostic(
      `release published in ${published - publishAt} ms, served by d1 and d2 ${servedAt! - publishAt} ms after publishing started (${servedAt! - floodStart} ms into the flood)`,
    )
    t.diagnostic(`d3's lowest score: ${JSON.stringify(Object.fromEntries(minScore))}`)
    t.diagnostic(`unenrolled flooder's score: ${JSON.stringify(Object.fromEntries(unenrolledScore))}`)

    // until both floods end, every honest node keeps showing fresh reports of every honest node
    await until(
      async () => {
        const ss = await Promise.all(honest.map((n) => statusOf(bed, n)))
        if (flooding()) {
          ss.forEach((s, i) => {
            for (const h of honest) {
              const last = s.devices.find((d) => d.id === h.info.peerId)?.last_report ?? 0
              reportsDuring.set(`${honest[i].proc.name}:${h.proc.name}`, last)
            }
          })
        }
        return injectors.every(
          (p) => injectorEvents(p).some((e) => e.event === 'flood-done') || p.child.exitCode !== null,
        )
      },
      FLOOD_MS + 30_000,
      'both floods over',
    )
    const floodDone = injectorEvents(hostile).find((e) => e.event === 'flood-done')
    const strangerDone = injectorEvents(unenrolled).find((e) => e.event === 'flood-done')
    t.diagnostic(`hostile flood: ${JSON.stringify(floodDone)}`)
    t.diagnostic(`unenrolled flood: ${JSON.stringify(strangerDone)}`)
    assert.ok(floodDone !== undefined && strangerDone !== undefined, `${hostile.stderr} ${unenrolled.stderr}`)
    // the rollout went through, published during the flood and not much slower than without one
    assert.ok(publishAt < (floodDone.time as number), 'the release was published during the flood')
    const during = servedAt! - publishAt
    assert.ok(
      during <= 2 * baseline + scaled(10_000),
      `the rollout took ${during} ms during the flood, ${baseline} ms without one`,
    )
    // d3 sent more than its quota, else the bound checks prove nothing (then its ban cut it off);
    // the stranger's reports are refused unread of their signature and it is banned within seconds
    assert.ok(
      (floodDone.delivered as number) * (floodDone.wireSize as number) > REPORT_QUOTA_BYTES,
      JSON.stringify(floodDone),
    )
    assert.ok((strangerDone.delivered as number) > 0, JSON.stringify(strangerDone))
    for (const f of [floodDone, strangerDone]) assert.ok((f.wireSize as number) > 64 * 1024 - 128, JSON.stringify(f))

    // after the flood: honest reports arrived during it, stores and heaps bounded
    const afterFlood = await Promise.all(honest.map(figures))
    let strangerRefusals = 0
    let quotaHits = 0
    // heap in use is read at an instant, garbage included: the least of readings over ~5 s (a node
    // that just took a flood collects in between) is what the node holds
    const heapHeld = await Promise.all(
      honest.map(async (n, i) => {
        let least = afterFlood[i].heap
        for (let k = 0; k < 10; k++) {
          await new Promise((r) => setTimeout(r, 500)) // sampling, not waiting for a condition
          least = Math.min(least, metric(await metricsOf(n), 'nodejs_heap_size_used_bytes'))
        }
        return least
      }),
    )
    const bannedBy = new Map<string, string[]>()
    const bound = storeWireBound(
      { devices: rb.nodes.length, releases: 1, commands: 0, trustRoots: 1 },
      { HealthReport: { bytes: REPORT_QUOTA_BYTES }, Verdict: { bytes: VERDICT_QUOTA_BYTES } },
    )
    t.diagnostic(
      `documented bound (storeWireBound, ${rb.nodes.length} devices, 1 release): ${(bound / MIB).toFixed(2)} MiB`,
    )
    for (const [i, n] of honest.entries()) {
      const [b, a] = [beforeFlood[i], afterFlood[i]]
      t.diagnostic(`${n.proc.name} after: ${showFigures(a)}`)
      quotaHits += a.quota
      // the stranger dials every honest node, but on a loaded machine a dial may time out: its
      // reports must have reached the nodes it connected to (counted after the loop)
      strangerRefusals += a.rejections.ERR_NOT_ENROLLED - b.rejections.ERR_NOT_ENROLLED
      assert.ok(a.wire <= bound, `${n.proc.name}: ${a.wire} wire bytes over the bound ${bound}`)
      assert.ok(a.wire - b.wire <= REPORT_QUOTA_BYTES + 2 * MIB, `${n.proc.name}: grew ${a.wire - b.wire} wire bytes`)
      t.diagnostic(`${n.proc.name} heap held after the flood: ${((heapHeld[i] - b.heap) / MIB).toFixed(1)} MiB more`)
      // heap used includes garbage an idle node has not collected yet (a major GC runs on
      // allocation, not on time), and that garbage grows with the flood messages a node verified
      // (~1 MiB of zod output each). Since pnet's cipher runs natively the flooders deliver up to
      // ~1.6x more in the same minute (637 of 5,950 against 432 of 3,894), and idle runs read
      // +61 to +216 MiB. The retained heap per stored report, after forced GCs, is tested by
      // test/unit/report-heap.test.ts; this check only catches runaway growth
      assert.ok(heapHeld[i] - b.heap <= 8 * bound, `${n.proc.name}: heap grew ${heapHeld[i] - b.heap} bytes`)

      // d3 reached its quota here, else this node's bound checks prove nothing: either a report of
      // it was refused past the quota, or the node holds so much that the next one would be. A node
      // may fill up to the quota by anti-entropy alone, which offers only what a peer stored, so it
      // never sees a refusal (CI saw d1 do so while seed and d2 refused 4 to 23): wait for that
      const full = (h: Held) => h.bytes + (floodDone.wireSize as number) > REPORT_QUOTA_BYTES
      let held = await d3HeldAt(n)
      if (!(a.quota > 0 && a.rejections.ERR_QUOTA > 0) && !full(held)) {
        const refill = async () => {
          held = await d3HeldAt(n)
          return full(held)
        }
        await until(refill, 30_000, `${n.proc.name} holding d3's quota`).catch(() =>
          assert.fail(`${n.proc.name}: d3's quota was never hit (${a.quota} refusals, ${held.bytes} bytes held)`),
        )
      }
      assert.equal(held.unenrolled, 0, `${n.proc.name} stored the unenrolled key's`)
      t.diagnostic(`${n.proc.name} holds ${held.reports} reports of d3, ${(held.bytes / MIB).toFixed(2)} MiB wire`)
      assert.ok(held.bytes <= REPORT_QUOTA_BYTES, `${n.proc.name}: ${held.bytes} bytes of d3's reports`)

      // honest reports went through during the flood: made after the release was published
      const s: NodeStatus = await statusOf(bed, n)
      const banned = ((s.mesh as { banned?: Array<{ peer: string }> }).banned ?? []).map((b) => b.peer)
      t.diagnostic(`${n.proc.name} bans: ${JSON.stringify((s.mesh as { banned?: unknown }).banned)}`)
      const scores = (s.mesh as { scores?: Record<string, number> }).scores ?? {}
      t.diagnostic(
        `${n.proc.name} scores of honest peers: ${JSON.stringify(Object.fromEntries(honest.map((h) => [h.proc.name, scores[h.info.peerId]])))}, last reports: ${JSON.stringify(Object.fromEntries([d1, d2].map((h) => [h.proc.name, (s.devices.find((d) => d.id === h.info.peerId)?.last_report ?? 0) - publishAt])))} ms after publishing, gossip ${JSON.stringify((s.mesh as { gossip?: unknown }).gossip)}, anti-entropy ${JSON.stringify((s.mesh as { antiEntropy?: unknown }).antiEntropy)}`,
      )
      for (const id of banned) bannedBy.set(id, [...(bannedBy.get(id) ?? []), n.proc.name])
      // the seed sends no health reports (it serves nothing): the honest devices' reports
      for (const h of [d1, d2]) {
        const during = reportsDuring.get(`${n.proc.name}:${h.proc.name}`) ?? 0
        const newest = s.devices.find((d) => d.id === h.info.peerId)?.last_report ?? 0
        assert.ok(
          during > publishAt,
          `${n.proc.name}: no report of ${h.proc.name} during the flood (newest then ${during - publishAt} ms after publishing, now ${newest - publishAt} ms; all: ${JSON.stringify(Object.fromEntries([...reportsDuring].map(([k, v]) => [k, v - publishAt])))})`,
        )
        // the release active at h, as n sees it: h's next report shows it, so a report that is late
        // after the flood is waited for, and the failure says how old n's newest one is
        let view = s
        const activeSeen = () => view.devices.find((d) => d.id === h.info.peerId)?.active.includes(`tiny@${V}`) === true
        const refresh = async () => {
          view = await statusOf(bed, n)
          return activeSeen()
        }
        if (!activeSeen()) {
          await until(refresh, 30_000, `${n.proc.name} seeing ${h.proc.name} on ${V}`).catch(() => {
            const dev = view.devices.find((d) => d.id === h.info.peerId)
            const m = view.mesh as { scores?: Record<string, number>; banned?: unknown }
            assert.fail(
              `${n.proc.name}: ${h.proc.name} ${dev?.active}, newest report ${(dev?.last_report ?? 0) - publishAt} ms after publishing (${Date.now() - publishAt} ms now), score ${m.scores?.[h.info.peerId]}, bans ${JSON.stringify(m.banned)}`,
            )
          })
        }
      }
    }

    assert.ok(strangerRefusals > 0, 'no unenrolled report arrived at any honest node')
    assert.ok(quotaHits > 0, "d3's quota refused nothing at any honest node")
    // each flooder was banned where it flooded directly (a node that took its reports from honest
    // forwarders first only saw duplicates of it, which cost no score)
    t.diagnostic(`banned by: ${JSON.stringify(Object.fromEntries(bannedBy))}`)
    assert.ok((bannedBy.get(hostileId) ?? []).length > 0, 'd3 banned by no honest node')
    assert.ok((bannedBy.get(unenrolledId) ?? []).length > 0, 'the unenrolled flooder banned by no honest node')

    for (const p of injectors) await bed.terminate(p)
    for (const n of honest) {
      const exit = await bed.terminate(n.proc)
      assert.equal(exit.code, 0, `${n.proc.name} exit ${JSON.stringify(exit)}`)
    }
    for (const n of rb.nodes) assert.deepEqual(badLines(n.proc), [], n.proc.name)
  })
})
