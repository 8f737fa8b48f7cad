/**
 * Issue 10, membership, with real `llmesh` processes in network namespaces, through the CLI:
 * seed + one invited pilot + three devices holding the fleet's swarm.key with fresh identities and
 * `--tags pilot` but no invite.
 * 1. The three stay `pending` (`llmesh device list --json`). With the invited pilot stopped, a
 *    release whose pilot stage is `tags: [pilot]` holds at its pilot stage: its cohort is the
 *    invited pilot alone, and failing reports, abort and promote verdicts signed by the pending
 *    devices' own keys (sent over gossip from their hosts) are refused by every node; the stage
 *    does not move. The invited pilot comes back and promotes it.
 * 2. With the seed stopped, one single-use invite (`llmesh device invite --fleet`) started on two
 *    fresh identities at once enrolls exactly one of them, the same one on every node.
 * 3. The seed back: `llmesh device approve` enrolls the loser, `device revoke` the winner, and
 *    `llmesh fleet rotate-swarm-key`: within 60 s the revoked device holds no connection to any
 *    node, the others are meshed on the new key, and a new release still reaches them.
 */

import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { FleetDevice } from '../../protocols/fleet/device-view.ts'
import { sha256Hex } from '../../protocols/index.ts'
import { scaled } from '../helpers/index.ts'
import { decisionsLater, injectorDone, type LanNode, makeFleetDir, startInjector, startLanNode } from './helpers.ts'
import { badLines, canRunBed, REPO_ROOT, TestBed, until } from './netns.ts'
import { votesOf } from './pending-votes.ts'
import { publishTiny, type RolloutBed, rolloutOf, serving, statusOf } from './rollout-bed.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'
const BIN = join(REPO_ROOT, 'cli', 'bin.ts')
const V = '1.0.0'
const POLICY = `
stages:
  - { name: pilot, tags: [pilot], window: 2s }
  - { name: full, percent: 100 }
gates:
  min_reports: 1
exclude_tags: [seed]
`

describe('membership in network namespaces (issue 10 a, b, e)', { skip, timeout: scaled(360_000) }, () => {
  let rb: RolloutBed
  let invited: LanNode
  const pending: LanNode[] = []
  const retired: LanNode[] = []
  /** The two claimants of the single-use invite (test 2): [winner, loser]. */
  let twins: LanNode[] = []
  let seedAddr: string

  const cli = (n: LanNode, ...args: string[]) => rb.bed.exec(n.host, process.execPath, [BIN, ...args], 60_000)
  const deviceList = async (n: LanNode): Promise<FleetDevice[]> =>
    (JSON.parse((await cli(n, 'device', 'list', '--json', '--api', n.info.api)).stdout) as { devices: FleetDevice[] })
      .devices
  const enrolledOn = async (n: LanNode) =>
    new Set((await statusOf(rb.bed, n)).devices.filter((d) => d.enrolled).map((d) => d.id))
  const device = (name: string, host: number, extra: string[], invite = false) =>
    startLanNode(rb.bed, rb.bed.hosts[host], {
      role: 'node',
      fleetDir: rb.fleet.dir,
      dataDir: join(rb.work, `data-${name}`),
      name: `${name}-${Date.now()}`,
      invite,
      extra: ['--report-interval', '1s', '--bootstrap', seedAddr, ...extra],
    })

  before(async () => {
    // hosts: 0 seed, 1-3 pending pilots, 4 invited pilot, 5-6 the two claimants of one invite
    const bed = await TestBed.create({ hosts: 7 })
    const fleet = await makeFleetDir(bed.logDir)
    const seed = await startLanNode(bed, bed.hosts[0], {
      role: 'seed',
      fleetDir: fleet.dir,
      dataDir: join(bed.logDir, 'data-seed'),
      name: 'seed',
      extra: ['--tags', 'seed', '--report-interval', '1s'],
    })
    seedAddr = `/ip4/${bed.hosts[0].ip}/tcp/4001/p2p/${seed.info.peerId}`
    rb = { bed, fleet, work: bed.logDir, seed, devices: [], nodes: [seed], startDevice: () => Promise.reject() }
    invited = await device('invited', 4, ['--tags', 'pilot'], true)
    for (let i = 1; i <= 3; i++) pending.push(await device(`pending${i}`, i, ['--tags', 'pilot']))
  })

  after(async () => {
    await rb?.bed.destroy()
  })

  test('devices without an invite stay pending and can neither abort nor promote; an invited pilot can', async () => {
    const { bed, seed } = rb
    const pendingIds = pending.map((p) => p.info.peerId)
    const running = [seed, ...pending]
    // every node: the invited pilot enrolled, the pending ones seen (their hellos) but not enrolled
    await until(
      async () => {
        const views = await Promise.all([...running, invited].map(enrolledOn))
        if (!views.every((v) => v.has(invited.info.peerId) && pendingIds.every((id) => !v.has(id)))) return false
        const list = await Promise.all(
          [seed].map(async (n) => (await statusOf(bed, n)).devices.filter((d) => pendingIds.includes(d.id))),
        )
        return list[0].length === 3 && list[0].every((d) => d.membership === 'pending')
      },
      90_000,
      'the invited pilot enrolled everywhere, the three others pending at the seed',
    )
    const listed = await deviceList(seed)
    for (const id of pendingIds) {
      const d = listed.find((x) => x.id === id)
      assert.ok(d, `${id} listed`)
      assert.equal(d.membership, 'pending')
      assert.deepEqual([d.enrolled, d.tags, d.declared_tags], [false, [], ['pilot']], JSON.stringify(d))
    }
    const inv = listed.find((x) => x.id === invited.info.peerId)
    assert.deepEqual([inv?.membership, inv?.tags], ['enrolled', ['pilot']])

    // the invited pilot goes away: the pilot stage can only hold until it is back
    assert.equal((await bed.terminate(invited.proc)).code, 0)
    retired.push(invited)
    await publishTiny(rb, V, POLICY)
    await until(
      async () =>
        (await Promise.all(running.map((n) => rolloutOf(bed, n, V)))).every(
          (r) =>
            r?.stage === 0 &&
            r.gate?.figures.find((f) => f.gate === 'window_ms')?.pass === true &&
            r.gate.reporters === 0,
        ),
      90_000,
      'v1 held at its pilot stage on every running node, window over, no voter',
    )
    for (const n of running) {
      const r = (await rolloutOf(bed, n, V))!
      assert.deepEqual(r.cohorts.pilot, [invited.info.peerId], `${n.proc.name}: the pilot cohort is the invited pilot`)
      for (const id of pendingIds) assert.ok(!Object.values(r.cohorts).flat().includes(id), `${id} has a cohort slot`)
    }

    // each pending device "votes" with its own key: a failing report, an abort and a promote verdict
    const startedAt = (await rolloutOf(bed, seed, V))!.stageStartedAt!
    const forged = (await Promise.all(pending.map((p) => votesOf(p, rb.fleet.root.fleet, V, startedAt)))).flat()
    const dial = running.map((n) => `/ip4/${n.host.ip}/tcp/4001/p2p/${n.info.peerId}`)
    const injectors = []
    for (const p of pending) {
      const mine = forged.filter((f) => f.from === p)
      const args = ['--fleet', rb.fleet.dir, '--min-subscribers', String(running.length - 1)]
      for (const [k, f] of mine.entries()) {
        const file = join(rb.work, `forged-${p.proc.name}-${k}.json`)
        await writeFile(file, f.bytes)
        args.push('--publish', `${f.topic}=${file}`)
      }
      // from the pending device's own host, dialing every running node but itself
      const targets = dial.filter((a) => !a.endsWith(p.info.peerId))
      injectors.push(
        startInjector(bed, p.host, `injector-${p.proc.name}`, [...args, ...targets.flatMap((a) => ['--dial', a])]),
      )
    }
    for (const inj of injectors) {
      const events = await injectorDone(inj, 60_000)
      assert.equal(events.filter((e) => e.event === 'published').length, 3, JSON.stringify(events))
    }
    const refusedOn = (n: LanNode, bytes: Uint8Array) =>
      n.proc.logs.find((l) => l.msg === 'message rejected' && l.wire === sha256Hex(bytes))
    await until(
      () => forged.every((f) => running.every((n) => n === f.from || refusedOn(n, f.bytes) !== undefined)),
      30_000,
      'every forged vote refused by every node it was sent to',
    )
    for (const f of forged)
      for (const n of running)
        if (n !== f.from) assert.equal(refusedOn(n, f.bytes)?.code, 'ERR_NOT_ENROLLED', `${n.proc.name}`)

    // several report intervals and decisions later, nothing moved, and no pending device's own
    // report was stored anywhere
    await decisionsLater(running, (n) => statusOf(bed, n), { count: 5, atLeastMs: 5000 })
    for (const n of running) {
      const r = (await rolloutOf(bed, n, V))!
      assert.deepEqual([r.state, r.stage, r.abortedBy, r.verdicts], ['pilot', 0, undefined, []], n.proc.name)
      assert.equal(r.gate?.reporters, 0, JSON.stringify(r.gate))
      const stored = await readFile(join(n.dataDir, 'messages.jsonl'), 'utf8')
      for (const id of pendingIds)
        assert.ok(!stored.includes(`"device":"${id}"`), `${n.proc.name} stored a message of ${id}`)
    }

    // the invited pilot comes back (same identity): it serves v1 and its vote promotes the release
    invited = await device('invited', 4, ['--tags', 'pilot'], true)
    await until(async () => serving(await statusOf(bed, invited), V), 90_000, 'the invited pilot serving v1')
    await until(
      async () =>
        (await Promise.all([...running, invited].map((n) => rolloutOf(bed, n, V)))).every(
          (r) => r?.state === 'promoted',
        ),
      60_000,
      'v1 promoted on every node',
    )
    const r = (await rolloutOf(bed, seed, V))!
    assert.ok(r.verdicts.length > 0 && r.verdicts.every((v) => v.outcome === 'promote'), JSON.stringify(r.verdicts))
    assert.ok(
      r.verdicts.every((v) => !pendingIds.includes(v.device)),
      `no verdict of a pending device: ${JSON.stringify(r.verdicts)}`,
    )
    for (const p of pending) assert.equal((await statusOf(bed, p)).models.tiny?.active ?? null, null, p.proc.name)
  })

  test('with the seed stopped, a single-use invite raced by two identities enrolls one, the same everywhere', async () => {
    const { bed, seed } = rb
    assert.equal((await bed.terminate(seed.proc)).code, 0)
    retired.push(seed)
    const file = join(rb.work, 'twin.invite')
    await cli(
      invited,
      ...['device', 'invite', '--fleet', rb.fleet.dir, '--tags', 'lab', '--name', 'twin', '--uses', '1'],
      ...['--ttl', '1h', '--out', file, '--json'],
    )
    const claimants = await Promise.all(
      [5, 6].map((h) => device(`claimant${h}`, h, ['--tags', 'declared-x', '--invite', file])),
    )
    const ids = claimants.map((c) => c.info.peerId)
    const nodes = [invited, ...pending, ...claimants]
    // both claims held everywhere, and one winner, the same on every node
    const claimsHeld = async (n: LanNode) =>
      (await readFile(join(n.dataDir, 'messages.jsonl'), 'utf8'))
        .split('\n')
        .filter((l) => l.includes('"InviteClaim"') && ids.some((id) => l.includes(id))).length
    await until(
      async () => {
        if ((await Promise.all(nodes.map(claimsHeld))).some((c) => c < 2)) return false
        const views = await Promise.all(nodes.map(enrolledOn))
        const winners = views.map((v) => ids.filter((id) => v.has(id)))
        return winners.every((w) => w.length === 1 && w[0] === winners[0][0])
      },
      90_000,
      'both claims on every node and one claimant enrolled, the same everywhere',
    )
    const seen = await enrolledOn(invited)
    const winner = ids.find((id) => seen.has(id))!
    const loser = ids.find((id) => id !== winner)!
    for (const n of [invited, claimants[0]]) {
      const listed = await deviceList(n)
      const w = listed.find((d) => d.id === winner)
      assert.deepEqual([w?.enrolled, w?.tags, w?.name], [true, ['lab'], 'twin'], `${n.proc.name}: ${JSON.stringify(w)}`)
      const l = listed.find((d) => d.id === loser)
      assert.equal(l?.enrolled ?? false, false, `${n.proc.name}: ${JSON.stringify(l)}`)
      assert.deepEqual(l?.tags ?? [], [])
    }
    for (const n of nodes) assert.deepEqual(badLines(n.proc), [], n.proc.name)
    for (const n of retired) assert.deepEqual(badLines(n.proc), [], n.proc.name)
    twins = [claimants.find((c) => c.info.peerId === winner)!, claimants.find((c) => c.info.peerId === loser)!]
  })

  test('revoke, approve, rotate-swarm-key: the revoked device is off every node, the rest meshed and served', async () => {
    const { bed } = rb
    assert.equal(twins.length, 2, 'needs test 2')
    const [revoked, approved] = twins
    // fewer processes on 2 cores: the pending pilots have shown what they had to show
    for (const p of pending) assert.equal((await bed.terminate(p.proc)).code, 0)
    const seed = await startLanNode(bed, bed.hosts[0], {
      role: 'seed',
      fleetDir: rb.fleet.dir,
      dataDir: rb.seed.dataDir,
      name: 'seed-2',
      extra: ['--tags', 'seed', '--report-interval', '1s'],
    })
    rb.seed = seed
    const api = ['--api', seed.info.api]
    await until(
      async () => {
        const ds = (await statusOf(bed, seed)).devices
        const of = (id: string) => ds.find((d) => d.id === id)
        return of(revoked.info.peerId)?.enrolled === true && of(approved.info.peerId)?.membership === 'pending'
      },
      60_000,
      'the seed caught up: the winner enrolled, the loser pending',
    )
    await cli(seed, 'device', 'approve', approved.info.peerId, '--tags', 'lab', ...api, '--json')
    await cli(seed, 'device', 'revoke', revoked.info.peerId, '--reason', 'stolen', ...api, '--json')
    const members = [seed, invited, approved]
    await until(
      async () =>
        (await Promise.all(members.map(enrolledOn))).every(
          (v) => v.has(approved.info.peerId) && !v.has(revoked.info.peerId),
        ),
      60_000,
      'approved enrolled and revoked refused on every member',
    )
    const t0 = Date.now()
    const { stdout } = await cli(
      seed,
      ...['fleet', 'rotate-swarm-key', rb.fleet.dir, ...api, '--switch-in', `${scaled(5000)}ms`, '--json'],
    )
    const out = JSON.parse(stdout) as { epoch: number; recipients: string[]; skipped_revoked: number }
    assert.equal(out.epoch, 1)
    assert.deepEqual([...out.recipients].sort(), members.map((m) => m.info.peerId).sort())
    const peersOf = async (n: LanNode) => (await statusOf(bed, n)).peers
    await until(
      async () => {
        if ((await peersOf(revoked)).length > 0) return false
        const views = await Promise.all(members.map(peersOf))
        return views.every((p) => !p.includes(revoked.info.peerId))
      },
      60_000,
      'the revoked device without a connection to any node',
    )
    const offMs = Date.now() - t0
    await until(
      async () =>
        (await Promise.all(members.map((n) => statusOf(bed, n)))).every(
          (s, i) =>
            (s as { swarm_key?: { applied?: number } }).swarm_key?.applied === 1 &&
            members.every((m, j) => i === j || s.peers.includes(m.info.peerId)),
        ),
      60_000,
      'every member on the new key and meshed with the others',
    )
    console.log(`# figure (LAN): rotate-swarm-key → revoked device off every node after ${offMs} ms`)
    await publishTiny(rb, '2.0.0', POLICY.replace('tags: [pilot], window: 2s', 'tags: [pilot], window: 1s'))
    await until(
      async () =>
        (await Promise.all([invited, approved].map((n) => statusOf(bed, n)))).every((s) => serving(s, '2.0.0')),
      120_000,
      'v2 served by the invited and the approved device',
    )
    const r = await statusOf(bed, revoked)
    assert.deepEqual(r.peers, [], 'the revoked device stayed off the mesh')
    assert.ok(!r.releases.some((x) => x.version === '2.0.0'), 'and never heard of v2')
    // (the revoked device itself logs its revocation as an error, once: docs/protocol.md)
    for (const n of members) assert.deepEqual(badLines(n.proc), [], n.proc.name)
    assert.ok(revoked.proc.logs.some((l) => String(l.msg).startsWith('this device is revoked')))
  })
})
