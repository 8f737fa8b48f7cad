/**
 * Enrollment by invitation among real mesh nodes on loopback, with no seed at all (the operator
 * signed the invites offline): a claim enrolls its device on every node; a single-use invite
 * claimed by two identities on two sides of a partition enrolls the same one everywhere once the
 * sides meet; devices without an invite stay pending, their reports and verdicts are refused on
 * every node and they take no cohort slot, so they can neither promote nor abort a pilot stage
 * they declare themselves into, while an invited pilot can.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { snapshot } from '../../node/rollout/plan.ts'
import { TOPIC_ROLLOUT } from '../../protocols/constants.ts'
import {
  createInvite,
  decide,
  openInviteFile,
  signClaim,
  signDeviceMessage,
  type Verdict,
} from '../../protocols/index.ts'
import { policy, report } from '../unit/rollout-fixtures.ts'
import { connect, makeFleet, startNode, type TestFleet, type TestNode, waitFor, waitForMesh } from './fixtures.ts'

const CAPS = { arch: 'x64', ram_mb: 1024, device_type: 'test' } as const

async function inviteText(fleet: TestFleet, tags: string[], uses = 1): Promise<string> {
  const { file } = await createInvite({ fleet: fleet.id, tags, uses, ttlMs: 3_600_000, now: Date.now() }, fleet.signer)
  return JSON.stringify(file)
}

async function claimFor(fleet: TestFleet, n: TestNode, text: string): Promise<Uint8Array> {
  return signClaim(openInviteFile(text, fleet.trust, Date.now()), n.key, CAPS, Date.now())
}

function labFleet(): TestFleet {
  const fleet = makeFleet() // the fleet id the report fixtures use
  fleet.trust = { ...fleet.trust, auto_enroll: false }
  return fleet
}

describe('enrollment by invitation (mesh, no seed)', () => {
  const nodes: TestNode[] = []
  after(async () => {
    for (const n of nodes) await n.node.stop().catch(() => {})
  })
  const start = async (fleet: TestFleet, count: number) => {
    const out: TestNode[] = []
    for (let i = 0; i < count; i++) out.push(await startNode(fleet, { init: { antiEntropy: { intervalMs: 1000 } } }))
    nodes.push(...out)
    return out
  }

  test('a claimed invite enrolls the device with its tags on every node; the others stay pending', async () => {
    const fleet = labFleet()
    const [a, b, c] = await start(fleet, 3)
    await connect(b, a)
    await connect(c, b)
    await waitForMesh([a, b, c], `${TOPIC_ROLLOUT}/${fleet.id}`)
    for (const n of [a, b, c]) assert.equal(n.store.membershipOf(a.id).membership, 'pending')
    const res = await a.node.publish(await claimFor(fleet, a, await inviteText(fleet, ['pilot'])))
    assert.equal(res.status, 'accepted')
    await waitFor(() => [a, b, c].every((n) => n.store.isEnrolled(a.id)), 20_000, 'the claim enrolls a everywhere')
    for (const n of [a, b, c]) {
      const m = n.store.membershipOf(a.id)
      assert.equal(m.via, 'invite')
      assert.deepEqual(m.enrollment?.tags, ['pilot'])
      assert.equal(n.store.membershipOf(b.id).membership, 'pending')
    }
  })

  test('a single-use invite raced on two sides of a partition: both sides converge on one winner', async () => {
    const fleet = labFleet()
    const [l1, l2, r1, r2] = await start(fleet, 4)
    await connect(l2, l1)
    await connect(r2, r1)
    await waitForMesh([l1, l2, r1, r2], `${TOPIC_ROLLOUT}/${fleet.id}`)
    const text = await inviteText(fleet, ['pilot'], 1)
    const left = await l1.node.publish(await claimFor(fleet, l1, text))
    const right = await r1.node.publish(await claimFor(fleet, r1, text))
    assert.equal(left.status, 'accepted')
    assert.equal(right.status, 'accepted')
    // each side, alone, enrolls its own claimant
    await waitFor(
      () => l2.store.isEnrolled(l1.id) && r2.store.isEnrolled(r1.id),
      20_000,
      'each side enrolls its claimant',
    )
    assert.equal(l2.store.isEnrolled(r1.id), false)
    assert.equal(r2.store.isEnrolled(l1.id), false)
    // heal the partition
    await connect(l2, r2)
    const all = [l1, l2, r1, r2]
    await waitFor(() => all.every((n) => n.store.claims().length === 2), 30_000, 'every node holds both claims')
    const winners = all.map((n) => [l1.id, r1.id].filter((id) => n.store.isEnrolled(id)))
    for (const w of winners) assert.equal(w.length, 1, 'exactly one identity enrolled')
    assert.ok(
      winners.every((w) => w[0] === winners[0][0]),
      'the same one on every node',
    )
    const loser = winners[0][0] === l1.id ? r1.id : l1.id
    for (const n of all) assert.equal(n.store.membershipOf(loser).membership, 'pending')
  })

  test('pending devices declaring pilot can neither abort nor promote; an invited pilot can', async () => {
    const fleet = labFleet()
    const [invited, p1, p2, p3] = await start(fleet, 4)
    for (const p of [p1, p2, p3]) await connect(p, invited)
    await waitForMesh([invited, p1, p2, p3], `${TOPIC_ROLLOUT}/${fleet.id}`)
    await invited.node.publish(await claimFor(fleet, invited, await inviteText(fleet, ['pilot'])))
    await waitFor(
      () => [invited, p1, p2, p3].every((n) => n.store.isEnrolled(invited.id)),
      20_000,
      'invited pilot enrolled',
    )
    const now = Date.now()
    const release = { model: 'm', version: '2.0.0' }
    const failing = (n: TestNode, seq: number) =>
      signDeviceMessage(
        report({ device: n.id, seq, start: now - 30_000, end: now, active: '2.0.0', load_failures: 1, tags: ['pilot'] })
          .report,
        n.key,
      )
    const decideOn = (n: TestNode) => {
      const snap = snapshot(n.store, Date.now())
      return decide({
        policy: policy(),
        release,
        releasedAt: now - 60_000,
        previous: { model: 'm', version: '1.0.0' },
        enrollments: snap.enrollments,
        revocations: snap.revocations,
        reports: snap.reports,
        commands: [],
        verdicts: snap.verdicts,
        now: Date.now(),
      })
    }
    const all = [invited, p1, p2, p3]
    /** Offers bytes to every node as if gossiped by `from`: each must refuse them as not enrolled. */
    const refusedEverywhere = async (bytes: Uint8Array, from: TestNode) => {
      await assert.rejects(from.node.publish(bytes), { code: 'ERR_NOT_ENROLLED' })
      for (const n of all) {
        const r = await n.node.ingest.ingest(bytes, 'gossip', from.id)
        assert.equal(r.status === 'rejected' ? r.error.code : r.status, 'ERR_NOT_ENROLLED')
      }
    }
    // the pending devices report failures, declaring themselves pilots: refused on every node
    for (const p of [p1, p2, p3]) await refusedEverywhere(await failing(p, 1), p)
    for (const n of [invited, p1, p2, p3]) {
      const d = decideOn(n)
      assert.deepEqual(
        [...d.assignment].filter(([, k]) => k === 0).map(([id]) => id),
        [invited.id],
        'the pilot cohort is the invited device alone',
      )
      assert.equal(d.verdictToPublish, undefined, 'pending devices’ failures do not abort')
      assert.equal(d.status.status, 'pilot')
    }
    // a pending device's own abort (or promote) verdict is refused too
    const draft: Verdict = {
      type: 'Verdict',
      v: 1,
      fleet: fleet.id,
      device: p1.id,
      model: 'm',
      version: '2.0.0',
      stage: 0,
      outcome: 'abort',
      decided_at: now,
      window: { start: now - 30_000, end: now },
      evidence: [],
      figures: [],
    }
    for (const p of [p1, p2, p3])
      for (const outcome of ['abort', 'promote'] as const)
        await refusedEverywhere(await signDeviceMessage({ ...draft, device: p.id, outcome }, p.key), p)
    for (const n of all) assert.equal(n.store.list('Verdict').length + n.store.list('HealthReport').length, 0)
    // the invited pilot's failure counts: the fleet's decision is to abort
    const mine = await invited.node.publish(await failing(invited, 1))
    assert.equal(mine.status, 'accepted')
    await waitFor(() => [p1, p2, p3].every((n) => n.store.list('HealthReport').length === 1), 20_000, 'report spread')
    for (const n of [invited, p1]) assert.equal(decideOn(n).verdictToPublish?.outcome, 'abort')
  })
})
