/**
 * Pure simulation of the collective rollout: N nodes (each an enrolled device) gossip health
 * reports and verdicts with random delays and loss, plus a pull anti-entropy round with one random
 * peer every ANTI_ENTROPY_MS; every node runs `decide` on its own message store, publishes the
 * verdicts it reaches and follows `activationFor` for what it reports running. Measures, in
 * simulated rounds (ROUND_MS each) and seconds, how long the fleet takes to agree.
 *
 * Usage: npx node bench/rollout-sim.ts [--nodes 100] [--loss 0.1] [--seed 1]
 * No sockets, no disk, no wall clock: time and randomness are simulated (seeded PRNG).
 */
import { parseArgs } from 'node:util'
import { canonicalBytes, sha256Hex } from '../protocols/encoding.ts'
import { activationFor, type Decision, decide, type VerifiedVerdict } from '../protocols/rollout/decide.ts'
import type { VerifiedReport } from '../protocols/rollout/gates.ts'
import { addValue, newSketch } from '../protocols/rollout/sketch.ts'
import type { RolloutState } from '../protocols/rollout/state.ts'
import type { DeviceEnrollment, HealthReport, RolloutPolicy, Verdict } from '../protocols/schemas/index.ts'

const ROUND_MS = 1000
const REPORT_EVERY_MS = 30_000
const DECIDE_EVERY_MS = 5_000
const ANTI_ENTROPY_MS = 15_000
const MAX_DELAY_MS = 3_000
const T0 = Date.UTC(2026, 0, 1)
const MIN = 60_000
const FLEET = 'sim-fleet'
const REL = { model: 'm', version: '2.0.0' }
const PREV = { model: 'm', version: '1.0.0' }
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

const POLICY: RolloutPolicy = {
  stages: [
    { name: 'pilot', percent: 0, min_devices: 0, tags: ['pilot'], window_ms: 2 * MIN },
    { name: 'canary', percent: 5, min_devices: 1, tags: [], window_ms: 3 * MIN },
    { name: 'wide', percent: 25, min_devices: 2, tags: [], window_ms: 3 * MIN },
    { name: 'full', percent: 100, min_devices: 0, tags: [], window_ms: 0 },
  ],
  gates: {
    latency_p95_ms: { max: 2000, max_regression_pct: 25 },
    error_rate: { max: 0.05 },
    restarts: { max: 3, per_ms: 5 * MIN },
    ooms: { max: 0 },
    min_reports: 3,
  },
  exclude_tags: [],
  inconclusive: 'hold',
  prestage: true,
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function peerId(n: number, rnd: () => number): string {
  let s = ''
  for (let i = 0; i < 44; i++) s += B58[Math.floor(rnd() * 58)]
  return `12D3KooW${s}${n % 10}`.slice(0, 52)
}

type Msg = { kind: 'report'; r: VerifiedReport } | { kind: 'verdict'; v: VerifiedVerdict }
const msgId = (m: Msg) => (m.kind === 'report' ? m.r.digest : m.v.digest)

interface SimNode {
  id: string
  store: Map<string, Msg>
  inbox: Array<{ at: number; m: Msg }>
  state?: RolloutState
  decision?: Decision
  seq: number
  phase: number
}

interface Scenario {
  name: string
  /** Device that crash-loops on the new version (the canary's first device), or none. */
  sick: boolean
  until: (nodes: SimNode[]) => boolean
}

interface Result {
  scenario: string
  nodes: number
  loss: number
  rounds: number
  seconds: number
  agreeLagRounds: number
  /** Seconds from the first crash report to every node aborted. */
  fromCrash: number | null
  messages: number
  decides: number
}

function run(n: number, loss: number, seed: number, scenario: Scenario): Result {
  const rnd = mulberry32(seed)
  const ids = Array.from({ length: n }, (_, i) => peerId(i, rnd))
  const enrollments: DeviceEnrollment[] = ids.map((id, i) => ({
    type: 'DeviceEnrollment',
    v: 1,
    fleet: FLEET,
    device: id,
    tags: i < 2 ? ['pilot'] : [],
    capabilities: { arch: 'x64', ram_mb: 4096, device_type: 'sim' },
    issued_at: T0 - MIN,
  }))
  const nodes: SimNode[] = ids.map((id) => ({
    id,
    store: new Map(),
    inbox: [],
    seq: 0,
    phase: Math.floor(rnd() * (REPORT_EVERY_MS / ROUND_MS)) * ROUND_MS,
  }))
  let messages = 0
  let decides = 0
  let sickId: string | null = null
  const send = (from: SimNode, m: Msg, now: number) => {
    from.store.set(msgId(m), m)
    for (const to of nodes) {
      if (to === from || rnd() < loss) continue
      messages++
      to.inbox.push({ at: now + Math.floor(rnd() * MAX_DELAY_MS), m })
    }
  }
  const agreedAt = new Map<string, number>() // status → first time any node reached it
  const allAgreed = new Set<string>()
  let lastAgreeLag = 0
  let firstCrashAt: number | null = null
  let now = T0
  for (let round = 1; round <= 10_000; round++) {
    now = T0 + round * ROUND_MS
    for (const node of nodes) {
      // Deliveries due now.
      const due = node.inbox.filter((x) => x.at <= now)
      node.inbox = node.inbox.filter((x) => x.at > now)
      for (const { m } of due) node.store.set(msgId(m), m)
      // Pull anti-entropy with one random peer.
      if ((now - T0 + node.phase) % ANTI_ENTROPY_MS === 0) {
        const peer = nodes[Math.floor(rnd() * n)]
        for (const [k, m] of peer.store) if (!node.store.has(k)) node.store.set(k, m)
      }
    }
    for (const node of nodes) {
      // Health report every REPORT_EVERY_MS, on its own phase.
      if ((now - T0 + node.phase) % REPORT_EVERY_MS === 0 && node.decision) {
        const act = activationFor(node.id, node.decision.view, node.decision.assignment)
        if (scenario.sick && sickId === null && node.decision.assignment.get(node.id) === 1) sickId = node.id
        const version = act === 'activate' ? REL.version : PREV.version
        const crash = node.id === sickId && version === REL.version
        if (crash && firstCrashAt === null) firstCrashAt = now
        send(node, { kind: 'report', r: healthReport(node, now, version, crash) }, now)
      }
      if ((now - T0 + node.phase) % DECIDE_EVERY_MS === 0 || !node.decision) {
        decides++
        const msgs = [...node.store.values()]
        const reports = msgs.flatMap((m) =>
          m.kind === 'report' && m.r.report.window.end > now - 10 * MIN ? [m.r] : [],
        )
        const verdicts = msgs.flatMap((m) => (m.kind === 'verdict' ? [m.v] : []))
        const input = { policy: POLICY, release: REL, releasedAt: T0, previous: PREV, enrollments, revocations: [] }
        let d = decide({ ...input, reports, commands: [], verdicts, state: node.state, now })
        if (d.verdictToPublish) {
          const verdict: Verdict = { type: 'Verdict', v: 1, fleet: FLEET, device: node.id, ...d.verdictToPublish }
          const v = { verdict, digest: sha256Hex(canonicalBytes(verdict)) }
          send(node, { kind: 'verdict', v }, now)
          d = decide({ ...input, reports, commands: [], verdicts: [...verdicts, v], state: d.state, now })
        }
        node.state = d.state
        node.decision = d
        if (!agreedAt.has(d.status.status)) agreedAt.set(d.status.status, now)
      }
    }
    const statuses = new Set(nodes.map((x) => x.decision?.status.status))
    if (statuses.size === 1) {
      const s = [...statuses][0]!
      if (!allAgreed.has(s)) {
        allAgreed.add(s)
        lastAgreeLag = Math.max(lastAgreeLag, now - (agreedAt.get(s) ?? now))
      }
    }
    if (scenario.until(nodes)) {
      return {
        scenario: scenario.name,
        nodes: n,
        loss,
        rounds: round,
        seconds: (now - T0) / 1000,
        agreeLagRounds: lastAgreeLag / ROUND_MS,
        fromCrash: firstCrashAt === null ? null : (now - firstCrashAt) / 1000,
        messages,
        decides,
      }
    }
  }
  throw new Error(`${scenario.name}: no agreement within 10000 rounds`)
}

function healthReport(node: SimNode, now: number, version: string, crash: boolean): VerifiedReport {
  let sk = newSketch()
  for (let i = 0; i < 20; i++) sk = addValue(sk, 100 + i * 5)
  node.seq++
  const report: HealthReport = {
    type: 'HealthReport',
    v: 1,
    fleet: FLEET,
    device: node.id,
    seq: node.seq,
    window: { start: now - REPORT_EVERY_MS, end: now },
    meta: { device_type: 'sim', tags: [], runtime_version: '3.21.1', uptime_s: 1 },
    active: [{ model: 'm', version }],
    hardware: { cpu_pct: 10, ram_pct: 10, ram_total_mb: 4096 },
    inference: [
      { model: 'm', version, requests: 20, errors: 0, tokens_in: 0, tokens_out: 0, concurrency_max: 1, latency_ms: sk },
    ],
    events: [
      {
        model: 'm',
        version,
        counts: { restarts: crash ? 4 : 0, ooms: 0, load_failures: 0, probe_failures: 0, rollbacks: 0 },
      },
    ],
  }
  return { report, digest: sha256Hex(canonicalBytes(report)) }
}

const allAre = (status: string) => (nodes: SimNode[]) => nodes.every((x) => x.decision?.status.status === status)

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '100' },
    loss: { type: 'string' },
    seed: { type: 'string', default: '1' },
  },
})
const sizes = [Number(values.nodes)]
const losses = values.loss !== undefined ? [Number(values.loss)] : [0, 0.1, 0.3]
const rows: Result[] = []
for (const n of sizes) {
  for (const loss of losses) {
    rows.push(run(n, loss, Number(values.seed), { name: 'healthy → promoted', sick: false, until: allAre('promoted') }))
    rows.push(
      run(n, loss, Number(values.seed), { name: 'canary crash loop → aborted', sick: true, until: allAre('aborted') }),
    )
  }
}
console.log(
  `Command: npx node bench/rollout-sim.ts --nodes ${values.nodes} --seed ${values.seed}${values.loss ? ` --loss ${values.loss}` : ''}`,
)
console.log(
  `Round = ${ROUND_MS / 1000} s; reports every ${REPORT_EVERY_MS / 1000} s; decide every ${DECIDE_EVERY_MS / 1000} s; ` +
    `gossip delay 0–${MAX_DELAY_MS / 1000} s; pull anti-entropy every ${ANTI_ENTROPY_MS / 1000} s; ` +
    `stage windows pilot 2 min, canary 3 min, wide 3 min.\n`,
)
console.log(
  '| scenario | nodes | loss | rounds until all agree | simulated s since release | s from first crash report | max lag first node → all nodes (rounds = s) | messages | decide calls |',
)
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const r of rows) {
  console.log(
    `| ${r.scenario} | ${r.nodes} | ${r.loss * 100}% | ${r.rounds} | ${r.seconds} | ${r.fromCrash ?? '–'} | ${r.agreeLagRounds} | ${r.messages} | ${r.decides} |`,
  )
}
