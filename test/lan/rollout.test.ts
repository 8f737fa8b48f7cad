/**
 * The collective canary with real `llmesh` processes in network namespaces (mDNS inside them):
 * seed + 6 devices, each device with its inference worker, health reports every 500 ms.
 * 1. v1 (one stage) runs everywhere; v2 goes pilot → canary → full with the seed killed as soon
 *    as every device has prestaged it.
 * 2. v3 fails to load (broken tensor, validly signed): the pilot rolls back locally, the fleet
 *    aborts, no other device ever activates it.
 * 3. `llmesh rollout pause` holds v4 through a passing gate, `resume` goes on, `abort` mid-canary
 *    brings every device back to v2.
 */

import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { NodeStatus } from '../../node/api/status.ts'
import type { Fleet } from '../../node/fleet/index.ts'
import type { ReleaseRolloutStatus } from '../../node/rollout/plan.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { POLICIES, scaled } from '../helpers/index.ts'
import { decisionsLater, type LanNode, lanStatus, makeFleetDir, startLanNode } from './helpers.ts'
import { canRunBed, REPO_ROOT, TestBed, until } from './netns.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'
const BIN = join(REPO_ROOT, 'cli', 'bin.ts')
const DEVICES = 6

const multi = (pilotWindow: string, canaryWindow: string) => `
stages:
  - { name: pilot, tags: [pilot], window: ${pilotWindow} }
  - { name: canary, percent: 0, min_devices: 3, window: ${canaryWindow} }
  - { name: full, percent: 100 }
gates:
  restarts: { max: 3, per: 5m }
  ooms: { max: 0 }
  min_reports: 1
exclude_tags: [seed]
`

type Status = NodeStatus & {
  rollout?: { releases: ReleaseRolloutStatus[] }
  inference?: { state: string; version: string | null }
}

describe('collective canary in network namespaces', { skip, timeout: scaled(240_000) }, () => {
  let bed: TestBed
  let fleet: Fleet
  let work: string
  let seed: LanNode
  const devices: LanNode[] = []

  const startSeed = () =>
    startLanNode(bed, bed.hosts[0], {
      role: 'seed',
      fleetDir: fleet.dir,
      dataDir: join(work, 'data-seed'),
      name: `seed-${Date.now()}`,
      extra: ['--tags', 'seed', '--report-interval', '500ms'],
    })
  // GET inside the namespace: polling with `llmesh status` (a TypeScript process each time) would eat the 2 cores
  const status = async (n: LanNode): Promise<Status> =>
    JSON.parse(await bed.get(n.host, `${n.info.api}/status`)) as Status
  const cli = (n: LanNode, ...args: string[]) => bed.exec(n.host, process.execPath, [BIN, ...args, '--api', n.info.api])
  const publish = async (version: string, policy: string, gguf = {}) => {
    const file = join(work, `tiny-${version}.gguf`)
    await writeTinyGguf(file, { layers: 2, embd: 64, ...gguf })
    const pol = join(work, `policy-${version}.yaml`)
    await writeFile(pol, policy)
    await cli(seed, 'release', 'publish', file, '--model', 'tiny', '--version', version, '--policy', pol, '--json')
  }
  const release = (s: Status, v: string) => s.rollout?.releases.find((r) => r.version === v)
  const serving = (s: Status, v: string) =>
    s.models.tiny?.active === v && s.inference?.version === v && s.inference.state === 'ready'
  const allServing = async (v: string) => (await Promise.all(devices.map(status))).every((s) => serving(s, v))
  const logTime = (n: LanNode, msg: string, version: string) =>
    n.proc.logs.find((l) => l.msg === msg && l.version === version)?.time

  before(async () => {
    bed = await TestBed.create({ hosts: DEVICES + 1 })
    work = bed.logDir
    fleet = await makeFleetDir(work)
    seed = await startSeed()
    // one after the other: seven TypeScript processes starting at once on 2 cores exceed the bed's start timeout
    for (let i = 0; i < DEVICES; i++) {
      devices.push(
        await startLanNode(bed, bed.hosts[i + 1], {
          role: 'node',
          fleetDir: fleet.dir,
          dataDir: join(work, `data-${i + 1}`),
          name: `node-${i + 1}`,
          extra: ['--report-interval', '500ms', ...(i === 0 ? ['--tags', 'pilot'] : [])],
        }),
      )
    }
    await until(
      async () => (await status(seed)).devices.filter((d) => d.enrolled).length >= DEVICES + 1,
      60_000,
      'every device enrolled',
    )
  })

  after(async () => {
    await bed?.destroy()
  })

  test('v1 runs everywhere; v2 goes pilot → canary → full with the seed killed after prestaging', async () => {
    await publish('1.0.0', POLICIES.ONE_STAGE)
    await until(() => allServing('1.0.0'), 60_000, 'all devices serving v1')

    await publish('2.0.0', multi('1s', '1s'))
    await until(
      async () => (await Promise.all(devices.map(status))).every((s) => s.models.tiny?.staged.includes('2.0.0')),
      60_000,
      'v2 prestaged everywhere',
    )
    await bed.terminate(seed.proc)
    await until(() => allServing('2.0.0'), 90_000, 'all devices serving v2 without the seed')
    const st = release((await lanStatus(bed, devices[1])) as Status, '2.0.0')!
    assert.equal(st.state, 'promoted')
    const promotes = st.verdicts.filter((v) => v.adopted && v.outcome === 'promote')
    const opened = [0, 1].map((k) => Math.min(...promotes.filter((v) => v.stage === k).map((v) => v.decided_at)))
    assert.ok(opened.every(Number.isFinite), JSON.stringify(st.verdicts))
    const lags: number[] = []
    for (const d of devices) {
      const at = logTime(d, 'release serving', '2.0.0')!
      const stageName = Object.entries(st.cohorts).find(([, ids]) => ids.includes(d.info.peerId))![0]
      const k = stageName === 'canary' ? 0 : stageName === 'full' ? 1 : -1
      if (k >= 0) {
        assert.ok(at >= opened[k], `${d.proc.name} (${stageName}) served v2 before its stage opened`)
        lags.push(at - opened[k])
      }
    }
    console.log(`# figure (LAN, ${DEVICES} devices): gate pass → next stage serving, max ${Math.max(...lags)} ms`)
    seed = await startSeed()
  })

  test('v3 fails to load: the pilot rolls back, the fleet aborts, nobody else activates it', async () => {
    await publish('3.0.0', multi('1s', '1s'), { breakTensor: true, perturbLayer: 1 })
    const pilot = devices[0]
    await until(() => logTime(pilot, 'rolled back locally', '3.0.0') !== undefined, 60_000, 'pilot local rollback')
    const failedAt = logTime(pilot, 'new version failed: rolling back locally', '3.0.0')!
    await until(
      async () =>
        (await Promise.all([seed, ...devices].map(status))).every((s) => release(s, '3.0.0')?.state === 'aborted'),
      30_000,
      'v3 aborted on every node',
    )
    await until(() => allServing('2.0.0'), 30_000, 'all serving v2')
    const back = logTime(pilot, 'release serving', '2.0.0')
    const lastBack = Math.max(
      ...devices.map((d) => d.proc.logs.filter((l) => l.msg === 'rolled back locally').at(-1)?.time ?? 0),
    )
    console.log(
      `# figure (LAN): canary load failure → pilot back on v2 ${(lastBack || back || failedAt) - failedAt} ms`,
    )
    for (const d of devices.slice(1)) {
      assert.equal(logTime(d, 'activating release', '3.0.0'), undefined, `${d.proc.name} activated v3`)
    }
  })

  test('pause holds v4 through a passing gate, resume continues, abort mid-canary rolls everyone back', async () => {
    // a command needs a release the node knows (ERR_UNKNOWN_RELEASE otherwise): publish, then
    // pause at once; the pilot window is scaled for a loaded machine, where one CLI process can
    // take longer than the idle machine's window, so the pause lands in the pilot stage
    await publish('4.0.0', multi(`${scaled(8)}s`, '10m'))
    await until(async () => release(await status(seed), '4.0.0') !== undefined, 30_000, 'v4 known to the seed')
    await cli(seed, 'rollout', 'pause', 'tiny@4.0.0', '--reason', 'hold')
    await until(async () => release(await status(seed), '4.0.0')?.state === 'paused', 30_000, 'v4 paused')
    const paused = release(await status(seed), '4.0.0')!
    assert.deepEqual([paused.state, paused.stage], ['paused', 0])
    await until(
      async () => release(await status(seed), '4.0.0')?.gate?.outcome === 'pass',
      60_000,
      'v4 pilot gate passes',
    )
    await decisionsLater([seed, ...devices], status, { count: 3, what: 'three more decisions while paused' })
    const held = await Promise.all([seed, ...devices].map(status))
    for (const s of held) assert.equal(release(s, '4.0.0')?.state, 'paused')
    assert.equal(held.slice(1).filter((s) => serving(s, '4.0.0')).length, 1)
    await cli(seed, 'rollout', 'resume', 'tiny@4.0.0')
    await until(
      async () => (await Promise.all(devices.map(status))).filter((s) => serving(s, '4.0.0')).length === 3,
      60_000,
      'pilot + canary on v4',
    )
    const { stdout } = await cli(seed, 'rollout', 'status', 'tiny@4.0.0', '--json')
    assert.equal((JSON.parse(stdout) as { releases: ReleaseRolloutStatus[] }).releases[0].state, 'canary')
    const t0 = Date.now()
    await cli(seed, 'rollout', 'abort', 'tiny@4.0.0', '--reason', 'scale the canary to 0%')
    await until(() => allServing('2.0.0'), 30_000, 'all back on v2')
    console.log(
      `# figure (LAN): operator abort mid-canary → all devices on v2 within ${Date.now() - t0} ms (incl. CLI polling)`,
    )
  })
})
