/**
 * LAN tests with real `llmesh` processes in network namespaces (mDNS only inside them):
 * discovery and gossip, validator rejects, the join secret, anti-entropy catch-up, clean exits.
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Fleet } from '../../node/fleet/index.ts'
import {
  canonicalBytes,
  createOperatorSigner,
  generateOperatorKey,
  MAX_SIZE,
  messageIdOfWire,
  type OperatorSigner,
  signOperatorMessage,
  TOPIC_RELEASES,
  TOPIC_ROLLOUT,
} from '../../protocols/index.ts'
import { withBadSignature } from '../helpers/index.ts'
import {
  acceptedAt,
  decisionsLater,
  foreignSwarmKey,
  injectorDone,
  type LanNode,
  lanStatus,
  makeFleetDir,
  signedRelease,
  startInjector,
  startLanNode,
} from './helpers.ts'
import { badLines, canRunBed, TestBed, until } from './netns.ts'
import { metric, metricsAt } from './store-flood-readers.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'

describe('LAN mesh in network namespaces', { skip }, () => {
  let bed: TestBed
  let fleet: Fleet
  let work: string
  const nodes: LanNode[] = [] // nodes[0] is the seed
  const stopped = new Set<LanNode>()
  let startedAt = 0

  before(async () => {
    // hosts 0-4: seed + 4 nodes; 5: injector; 6: outsider; 7: late node
    bed = await TestBed.create({ hosts: 8 })
    startedAt = Date.now()
    work = bed.logDir
    fleet = await makeFleetDir(work)
    const starts = [0, 1, 2, 3, 4].map((i) =>
      startLanNode(bed, bed.hosts[i], {
        role: i === 0 ? 'seed' : 'node',
        fleetDir: fleet.dir,
        dataDir: join(work, `data-${i}`),
        name: i === 0 ? 'seed' : `node-${i}`,
        extra: ['--tags', i % 2 === 0 ? 'even' : 'odd'],
      }),
    )
    nodes.push(...(await Promise.all(starts)))
  })

  after(async () => {
    await bed?.destroy()
  })

  test('5 nodes find each other by mDNS alone; a signed announcement reaches all within 2 s', async (t) => {
    await until(
      async () => (await Promise.all(nodes.map((n) => lanStatus(bed, n)))).every((s) => s.peers.length >= 4),
      30_000,
      'every node connected to the 4 others',
    )
    const release = await signedRelease(fleet, 1)
    const file = join(work, 'release-1.json')
    await writeFile(file, release)
    const inj = startInjector(bed, bed.hosts[5], 'injector-release', [
      '--fleet',
      fleet.dir,
      '--dial',
      nodes[1].info.multiaddrs.find((m) => m.includes(nodes[1].host.ip)) as string,
      '--publish',
      `${TOPIC_RELEASES}=${file}`,
    ])
    const events = await injectorDone(inj)
    const published = events.find((e) => e.event === 'published')
    assert.ok(published, `injector did not publish: ${JSON.stringify(events)}`)
    const digest = messageIdOfWire(release)
    await until(() => nodes.every((n) => acceptedAt(n.proc, digest) !== undefined), 10_000, 'release everywhere')
    const delays = nodes.map((n) => (acceptedAt(n.proc, digest) as number) - (published.time as number))
    t.diagnostic(`announcement delivery delays (ms): ${delays.join(', ')}`)
    assert.ok(Math.max(...delays) <= 2000, `delivery took ${delays.join(', ')} ms`)
    const statuses = await Promise.all(nodes.map((n) => lanStatus(bed, n)))
    for (const s of statuses)
      assert.deepEqual(
        s.releases.map((r) => `${r.model}@${r.version}`),
        ['tiny@1.1.0+gguf-q4_0-x64'],
      )
    // gossip relayed it: nodes 2-4 had no connection to the injector
    for (const n of nodes.slice(2)) assert.ok(!(await lanStatus(bed, n)).peers.includes(published.peerId as string))
  })

  test('forged, malformed and oversized messages are rejected, not forwarded, and the sender is scored down', async (t) => {
    const abort = (id: string) =>
      ({
        type: 'OperatorCommand',
        v: 1,
        fleet: fleet.root.fleet,
        action: 'abort',
        model: 'tiny',
        version: '1.1.0+gguf-q4_0-x64',
        id,
        issued_at: Date.now(),
      }) as const
    // the fleet's key named, the signature wrong: every node refuses it alike (Rejected)
    const forged = withBadSignature(
      await signOperatorMessage(abort('deadbeefdeadbeef'), fleet.operatorSigner as OperatorSigner),
    )
    // a key outside the trust root: as a key of a root not rotated to yet, Ignored (not stored, not
    // forwarded, no score) rather than Rejected
    const foreign = createOperatorSigner(generateOperatorKey().privateKeyPem)
    const unknown = await signOperatorMessage(abort('feedfacefeedface'), foreign)
    const malformed = new TextEncoder().encode('{"kind":"operator","type":"OperatorCommand","bundle":{}}')
    const big = JSON.parse(new TextDecoder().decode(forged)) as Record<string, unknown>
    big.pad = 'x'.repeat(MAX_SIZE.OperatorCommand)
    const oversized = canonicalBytes(big)
    const files = { unknown, forged, malformed, oversized }
    for (const [name, bytes] of Object.entries(files)) await writeFile(join(work, `${name}.bin`), bytes)
    const target = nodes[2]
    const before = (await Promise.all(nodes.map((n) => lanStatus(bed, n)))).map(
      (s) => s.mesh as { ingest: { rejected: number } },
    )
    const inj = startInjector(bed, bed.hosts[5], 'injector-bad', [
      '--fleet',
      fleet.dir,
      '--dial',
      target.info.multiaddrs.find((m) => m.includes(target.host.ip)) as string,
      ...Object.keys(files).flatMap((n) => ['--publish', `${TOPIC_ROLLOUT}=${join(work, `${n}.bin`)}`]),
    ])
    const events = await injectorDone(inj)
    const injectorId = events.find((e) => e.event === 'started')?.peerId as string
    assert.equal(events.filter((e) => e.event === 'published').length, 4, JSON.stringify(events))
    await until(
      async () => ((await lanStatus(bed, target)).mesh as { gossip: { rejected: number } }).gossip.rejected >= 3,
      10_000,
      'three rejections at the target',
    )
    // three invalid messages take it under the graylist threshold: the target may have banned it
    // already (node/mesh/peer-bans.ts), and a banned peer is disconnected, so it has no score listed.
    // gossipsub caches scores between heartbeats, so the score drops up to a heartbeat after the
    // rejections: wait for it rather than read it once
    let score: number | undefined
    let banned = false
    await until(
      async () => {
        const mesh = (await lanStatus(bed, target)).mesh as {
          scores: Record<string, number>
          banned?: Array<{ peer: string }>
        }
        score = mesh.scores[injectorId]
        banned = mesh.banned?.some((b) => b.peer === injectorId) ?? false
        return banned || (score !== undefined && score < 0)
      },
      10_000,
      'the injector scored down or banned at the target',
    )
    t.diagnostic(`injector gossipsub score at the target: ${score}, banned: ${banned}`)
    // a forwarded copy would have arrived long before every node decided twice more
    await decisionsLater(nodes, (n) => lanStatus(bed, n), { count: 2 })
    const afterStatuses = await Promise.all(nodes.map((n) => lanStatus(bed, n)))
    nodes.forEach((n, i) => {
      if (n === target) return
      const rejected = (afterStatuses[i].mesh as { ingest: { rejected: number } }).ingest.rejected
      assert.equal(rejected, before[i].ingest.rejected, `node ${i} saw a forwarded bad message`)
    })
    for (const st of afterStatuses) assert.equal(st.releases.length, 1)
    await bed.terminate(inj)
  })

  test('a host without the join secret cannot connect to any node', async () => {
    const key = await foreignSwarmKey(work)
    const addrs = nodes.map((n) => n.info.multiaddrs.find((m) => m.includes(n.host.ip)) as string)
    const inj = startInjector(bed, bed.hosts[6], 'outsider', [
      '--fleet',
      fleet.dir,
      '--psk',
      key,
      '--dial-only',
      ...addrs.flatMap((a) => ['--dial', a]),
    ])
    const events = await injectorDone(inj, 60_000)
    const dials = events.filter((e) => e.event === 'dial')
    assert.equal(dials.length, 5)
    for (const d of dials) assert.equal(d.ok, false, `outsider connected to ${d.addr}`)
    const outsider = events.find((e) => e.event === 'started')?.peerId as string
    for (const n of nodes) assert.ok(!(await lanStatus(bed, n)).peers.includes(outsider))
    await bed.terminate(inj)
  })

  test('a node started after the others, with the seed stopped, catches up through anti-entropy', async () => {
    const seed = nodes[0]
    const r = await bed.terminate(seed.proc)
    stopped.add(seed)
    assert.equal(r.code, 0)
    const ref = await lanStatus(bed, nodes[1])
    assert.ok(ref.devices.filter((d) => d.enrolled).length >= 5, 'the seed enrolled everyone before stopping')
    const late = await startLanNode(bed, bed.hosts[7], {
      role: 'node',
      fleetDir: fleet.dir,
      dataDir: join(work, 'data-late'),
      name: 'late',
    })
    nodes.push(late)
    // at least what a peer held when the late node started (devices keep publishing health
    // reports meanwhile, so the count only grows); the content is compared below
    await until(
      async () => Number((await lanStatus(bed, late)).mesh.messages) >= Number(ref.mesh.messages),
      30_000,
      'late node to hold every message',
    )
    const s = await lanStatus(bed, late)
    assert.deepEqual(s.releases, ref.releases)
    // everyone the seed enrolled, plus the late node itself: its invite enrolls it with the seed stopped
    assert.deepEqual(
      s.devices
        .filter((d) => d.enrolled)
        .map((d) => d.id)
        .sort(),
      [...ref.devices.filter((d) => d.enrolled).map((d) => d.id), late.info.peerId].sort(),
    )
    assert.ok(!s.peers.includes(seed.info.peerId))
  })

  test('mDNS queries back off while nodes have peers; repeated answers stay out of the peer store', async () => {
    // the late node above found the others by mDNS alone, long after they had backed off: its own
    // first queries draw everyone's answers
    const upS = (Date.now() - startedAt) / 1000
    for (const n of nodes.slice(1, 5)) {
      const m = await metricsAt(bed, n)
      const queries = metric(m, 'llmesh_mdns_queries_total')
      const answers = (outcome: string) => metric(m, 'llmesh_mdns_answers_total', `outcome="${outcome}"`)
      // a fixed 5 s interval sends 1 + up/5; backing off from 5 s to 60 s, a few more than up/60
      assert.ok(queries >= 2, `${n.proc.name}: ${queries} mDNS queries in ${upS.toFixed(0)} s`)
      assert.ok(
        queries <= 4 + upS / 20,
        `${n.proc.name}: ${queries} mDNS queries in ${upS.toFixed(0)} s (a fixed 5 s interval: ${Math.floor(1 + upS / 5)})`,
      )
      assert.ok(answers('new') >= 4, `${n.proc.name}: heard ${answers('new')} peers by mDNS`)
      assert.ok(answers('repeat') > answers('new'), `${n.proc.name}: repeats ${answers('repeat')} not filtered`)
      assert.equal(answers('limited'), 0, `${n.proc.name}: honest answers were dropped`)
    }
  })

  test('every node exits cleanly on SIGTERM and no log shows an error', async () => {
    for (const n of nodes) {
      if (!stopped.has(n)) {
        const r = await bed.terminate(n.proc)
        assert.equal(r.code, 0, `${n.proc.name} exit`)
      }
      assert.deepEqual(badLines(n.proc), [], `${n.proc.name} logged errors`)
      assert.ok(
        n.proc.logs.some((l) => l.msg === 'llmesh node stopped'),
        `${n.proc.name} did not stop cleanly`,
      )
    }
  })
})
