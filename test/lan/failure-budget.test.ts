/**
 * Issue 10, one vote's weight, with real `llmesh` processes in network namespaces: a seed and
 * DEVICES devices, each with its inference worker, releases published with the CLI.
 * 1. A release in its last stage (`ooms: { max: 0 }`, `failures: { max_devices: 0 }`): `kill -9`
 *    of one device's worker is a crash, not an OOM: the worker is back and the device answers a
 *    chat completion within 15 s (scaled), and the release is not aborted anywhere.
 * 2. `failures: { max_devices: 0 }`: one device out of DEVICES crash-looped (4 × kill -9) rolls
 *    the version back by itself, and the stage aborts on every node.
 * 3. `failures: { max_devices: 1 }`: the same failure is listed in every node's rollout status and
 *    does not abort (for twice as long as the abort above took); the operator then promotes.
 */

import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { POLICIES, scaled } from '../helpers/index.ts'
import { decisionsLater, type LanNode } from './helpers.ts'
import { badLines, canRunBed, REPO_ROOT, until } from './netns.ts'
import { publishTiny, type RolloutBed, rolloutOf, serving, startRolloutBed, statusOf } from './rollout-bed.ts'

const BIN = join(REPO_ROOT, 'cli', 'bin.ts')
const skip = canRunBed() ? false : 'needs root and ip netns'
/** The issue asks for six; six devices with their workers hold on this 2-core machine (see the report figures). */
const DEVICES = 6

const policy = (maxDevices: number, stages: string) => `
stages:
${stages}
gates:
  restarts: { max: 3, per: 5m }
  ooms: { max: 0 }
  min_reports: 1
  failures: { max_devices: ${maxDevices} }
exclude_tags: [seed]
`

describe('failure budgets and worker crashes in network namespaces (issue 10 c, d)', {
  skip,
  timeout: scaled(600_000),
}, () => {
  let rb: RolloutBed

  const allServing = async (v: string, which = rb.devices) =>
    (await Promise.all(which.map((d) => statusOf(rb.bed, d)))).every((s) => serving(s, v))
  const everyNode = async (v: string, check: (r: NonNullable<Awaited<ReturnType<typeof rolloutOf>>>) => boolean) =>
    (await Promise.all(rb.nodes.map((n) => rolloutOf(rb.bed, n, v)))).every((r) => r !== undefined && check(r))
  /** The inference worker: the daemon's child process running worker.ts (`ip netns exec` execs the daemon). */
  const workerPid = async (d: LanNode): Promise<number> => {
    const pid = d.proc.child.pid!
    const kids = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean)
    for (const k of kids) {
      const cmd = await readFile(`/proc/${k}/cmdline`, 'utf8').catch(() => '')
      if (cmd.includes('worker')) return Number(k)
    }
    throw new Error(`no worker among the children of ${pid}: ${kids.join(' ')}`)
  }
  const exits = (d: LanNode) => d.proc.logs.filter((l) => l.msg === 'inference worker exited')
  /** A chat completion through the device's OpenAI-compatible API, from its own namespace. */
  const chat = async (d: LanNode): Promise<string> => {
    const body = JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 })
    const { stdout } = await rb.bed.exec(d.host, 'curl', [
      ...['-sf', '--max-time', String(scaled(10)), '-H', 'content-type: application/json'],
      ...['-d', body, `${d.info.api}/v1/chat/completions`],
    ])
    return (JSON.parse(stdout) as { choices: Array<{ message: { content: string } }> }).choices[0].message.content
  }
  const rolledBack = (d: LanNode, v: string) =>
    d.proc.logs.find((l) => l.msg === 'rolled back locally' && l.version === v)
  /** Kills the device's worker from outside until it rolled `v` back (4 crashes in a row). */
  const crashLoop = async (d: LanNode, v: string) => {
    const had = exits(d).length
    for (let i = 0; i < 4; i++) {
      await until(async () => serving(await statusOf(rb.bed, d), v), 60_000, `${d.proc.name} serving ${v} (crash ${i})`)
      process.kill(await workerPid(d), 'SIGKILL')
      await until(() => exits(d).length > had + i, 30_000, `${d.proc.name} worker exit ${i + 1}`)
    }
    assert.deepEqual(
      exits(d)
        .slice(had)
        .map((l) => l.kind),
      ['crash', 'crash', 'crash', 'crash'],
    )
    await until(() => rolledBack(d, v) !== undefined, 60_000, `${v} rolled back on ${d.proc.name}`)
  }

  before(async () => {
    rb = await startRolloutBed({ tags: Array.from({ length: DEVICES }, () => []) })
    await publishTiny(rb, '1.0.0', POLICIES.ONE_STAGE)
    await until(() => allServing('1.0.0'), 120_000, 'every device serving v1')
  })

  after(async () => {
    await rb?.bed.destroy()
  })

  test('kill -9 of a worker in the last stage: back and answering within 15 s, the release goes on', async () => {
    // one stage: the release is in its last stage (`promoted`) as soon as it is published
    await publishTiny(rb, '2.0.0', policy(0, '  - { name: all, percent: 100 }'), { perturbLayer: 1 })
    await until(() => allServing('2.0.0'), 120_000, 'every device serving v2')
    await until(
      async () => everyNode('2.0.0', (r) => r.state === 'promoted'),
      30_000,
      'v2 in its last stage everywhere',
    )
    const d = rb.devices[0]
    const victim = await workerPid(d)
    const had = exits(d).length
    const t0 = Date.now()
    process.kill(victim, 'SIGKILL')
    let answer = ''
    await until(
      async () => {
        // a new worker of its own: while it restarts, the device answers through a peer (federated
        // serving), and /status may still say `ready` for a moment after the kill
        const pid = await workerPid(d).catch(() => victim)
        if (pid === victim || !serving(await statusOf(rb.bed, d), '2.0.0')) return false
        answer = await chat(d).catch(() => '')
        return answer.length > 0
      },
      15_000,
      'the worker back and a chat completion answered',
    )
    const took = Date.now() - t0
    console.log(`# figure (LAN, ${DEVICES} devices): kill -9 of the worker → chat completion answered after ${took} ms`)
    assert.notEqual(await workerPid(d), victim)
    assert.deepEqual(
      exits(d)
        .slice(had)
        .map((l) => l.kind),
      ['crash'],
      'a kill -9 is a crash, not an OOM',
    )
    // the crash reached the fleet in a report (restarts 1, ooms 0) and nothing aborted
    await until(
      async () => (await statusOf(rb.bed, rb.seed)).rollout?.releases.some((r) => r.version === '2.0.0') === true,
      10_000,
      'v2 in the seed status',
    )
    const seenAt = Date.now()
    await until(
      async () => {
        const text = await readFile(`${rb.seed.dataDir}/messages.jsonl`, 'utf8')
        return text
          .split('\n')
          .filter((l) => l.includes('"HealthReport"') && l.includes(d.info.peerId))
          .some((l) => (JSON.parse(l) as { m: { window: { end: number } } }).m.window.end > seenAt)
      },
      30_000,
      'a report of the device after the crash at the seed',
    )
    for (const n of rb.nodes) {
      const r = (await rolloutOf(rb.bed, n, '2.0.0'))!
      assert.deepEqual([r.state, r.abortedBy], ['promoted', undefined], n.proc.name)
      assert.deepEqual(r.failures?.failed ?? [], [], `${n.proc.name}: ${JSON.stringify(r.failures)}`)
    }
    assert.equal(rolledBack(d, '2.0.0'), undefined)
    assert.ok(await allServing('2.0.0'))
  })

  /** Two stages, the first with a window no crash loop outlasts: only failures (or the operator) move it. */
  const TWO = '  - { name: wide, percent: 100, window: 10m }\n  - { name: full, percent: 100 }'
  let abortMs = 0

  test('max_devices: 0 — one failed device out of the fleet aborts the stage on every node', async () => {
    await publishTiny(rb, '3.0.0', policy(0, TWO), { perturbLayer: 0 })
    await until(() => allServing('3.0.0'), 120_000, 'every device serving v3')
    const d = rb.devices[1]
    await crashLoop(d, '3.0.0')
    const failedAt = rolledBack(d, '3.0.0')!.time!
    await until(async () => everyNode('3.0.0', (r) => r.state === 'aborted'), 60_000, 'v3 aborted on every node')
    abortMs = Date.now() - failedAt
    console.log(`# figure (LAN, ${DEVICES} devices): local rollback → aborted on every node after ${abortMs} ms`)
    const f = (await rolloutOf(rb.bed, rb.seed, '3.0.0'))!.failures
    assert.deepEqual(
      f?.failed.map((x) => x.device),
      [d.info.peerId],
    )
    assert.equal(f?.budget, 0)
    await until(() => allServing('2.0.0'), 60_000, 'every device back on v2')
  })

  test('max_devices: 1 — the same failure is listed everywhere and does not abort; the stage goes on', async () => {
    await publishTiny(rb, '4.0.0', policy(1, TWO), { seed: 2 })
    await until(() => allServing('4.0.0'), 120_000, 'every device serving v4')
    const d = rb.devices[2]
    await crashLoop(d, '4.0.0')
    await until(
      async () => everyNode('4.0.0', (r) => r.failures?.failed.some((x) => x.device === d.info.peerId) === true),
      60_000,
      'the failed device in every node’s rollout status',
    )
    // longer than the same failure took to abort v3 everywhere: still within the budget, still rolling
    await decisionsLater(rb.nodes, (n) => statusOf(rb.bed, n), { count: 5, atLeastMs: Math.max(2 * abortMs, 5000) })
    for (const n of rb.nodes) {
      const r = (await rolloutOf(rb.bed, n, '4.0.0'))!
      assert.deepEqual([r.state, r.abortedBy], ['wide', undefined], n.proc.name)
      assert.deepEqual([r.failures?.budget, r.failures?.cohort], [1, DEVICES], JSON.stringify(r.failures))
      assert.deepEqual(
        r.failures?.failed.map((x) => x.device),
        [d.info.peerId],
      )
      assert.ok(r.failures?.failed[0].reasons.includes('local rollback'), JSON.stringify(r.failures))
    }
    const others = rb.devices.filter((x) => x !== d)
    assert.ok(await allServing('4.0.0', others), 'the others still serve v4')
    await until(async () => serving(await statusOf(rb.bed, d), '2.0.0'), 60_000, 'the failed device back on v2')
    // the operator takes it to its last stage: promoted everywhere, the failed device stays rolled back
    await rb.bed.exec(rb.seed.host, process.execPath, [
      BIN,
      ...['rollout', 'promote', 'tiny@4.0.0', '--to-stage', 'full', '--api', rb.seed.info.api],
    ])
    await until(async () => everyNode('4.0.0', (r) => r.state === 'promoted'), 60_000, 'v4 promoted on every node')
    assert.ok(await allServing('4.0.0', others))
    assert.equal(
      (await statusOf(rb.bed, d)).models.tiny?.active,
      '2.0.0',
      'a version that failed here stays rolled back',
    )
    for (const n of rb.nodes) assert.deepEqual(badLines(n.proc), [], n.proc.name)
  })
})
