/**
 * Distribution under faults, real `llmesh` processes in network namespaces with shaped links:
 * the seed sends at most 40 Mbit/s; node-1 receives unshaped, nodes 2-4 receive at most 8 Mbit/s
 * (tbf on the bridge side of their veth), so an 8 MiB release reaches node-1 first while the
 * others are about half way.
 * 1. The seed is killed (SIGKILL) as soon as node-1 holds v2: nodes 2-4 finish from their peers
 *    (a download that stalls, e.g. on a block in flight to the dead seed, restarts its replication
 *    sessions: node/store/replicator.ts).
 * 2. A device is killed (SIGKILL) half way through downloading v3, then restarted: it resumes
 *    (fetches only what it lacked, fewer bytes than the file) and its `active` v1 is intact.
 */

import assert from 'node:assert/strict'
import { readdir, readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Fleet } from '../../node/fleet/index.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { scaled } from '../helpers/index.ts'
import {
  ALL_POLICY,
  bytesIn,
  DEVICE_TAG,
  HOLD_POLICY,
  httpStatus,
  installedFile,
  publishRelease,
  sha256File,
  shapeIngress,
  startNode,
  untilStaged,
} from './distribution-bed.ts'
import { type LanNode, makeFleetDir } from './helpers.ts'
import { badLines, canRunBed, TestBed, until } from './netns.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'
const BIG = { layers: 3, embd: 256 } // ~8 MiB

describe('model distribution under faults in network namespaces', { skip, timeout: scaled(180_000) }, () => {
  let bed: TestBed
  let fleet: Fleet
  let work: string
  let seed: LanNode
  const devices: LanNode[] = []
  const killed: LanNode[] = []
  let v1Sha: string

  const startSeed = (name: string) =>
    startNode(bed, bed.hosts[0], {
      role: 'seed',
      fleetDir: fleet.dir,
      dataDir: join(work, 'data-0'),
      name,
      extra: ['--tags', 'seed'],
    })
  const startDevice = (i: number, name = `node-${i}`) =>
    startNode(bed, bed.hosts[i], {
      role: 'node',
      fleetDir: fleet.dir,
      dataDir: join(work, `data-${i}`),
      name,
      extra: ['--tags', DEVICE_TAG],
    })

  before(async () => {
    bed = await TestBed.create({ hosts: 5, shaping: (i) => (i === 0 ? { rate: '40mbit' } : undefined) })
    for (const h of bed.hosts.slice(2)) await shapeIngress(bed, h, '8mbit')
    work = bed.logDir
    fleet = await makeFleetDir(work)
    seed = await startSeed('seed')
    devices.push(...(await Promise.all([startDevice(1), startDevice(2)])))
    devices.push(...(await Promise.all([startDevice(3), startDevice(4)])))
    await until(
      async () => (await Promise.all(devices.map((d) => httpStatus(bed, d)))).every((s) => s.peers.length >= 4),
      30_000,
      'every device connected to the 4 others',
    )
    // v1 (small) activated everywhere by the rollout, so there is an `active` to keep intact
    const file = join(work, 'tiny-1.gguf')
    await writeTinyGguf(file, { layers: 2, embd: 64 })
    v1Sha = (await publishRelease(bed, seed, file, { model: 'tiny', version: '1.0.0', policy: ALL_POLICY })).manifest
      .file.sha256
    await until(
      async () =>
        (await Promise.all(devices.map((d) => httpStatus(bed, d)))).every((s) => s.models.tiny?.active === '1.0.0'),
      90_000,
      'v1 active on every device',
    )
  })

  after(async () => {
    await bed?.destroy()
  })

  test('the seed is killed mid-transfer: the devices finish from each other', async (t) => {
    const file = join(work, 'tiny-2.gguf')
    await writeTinyGguf(file, { ...BIG, seed: 2 })
    // nodes 2-4 receive at 1 Mbit/s until the kill (≥ 67 s for the file), so node-1 (unshaped) is
    // done first even when the CPU, not the links, is the limit (a loaded machine)
    for (const h of bed.hosts.slice(2)) await shapeIngress(bed, h, '1mbit')
    const pub = await publishRelease(bed, seed, file, { model: 'tiny', version: '2.0.0', policy: HOLD_POLICY })
    const t0 = Date.now()
    await untilStaged(bed, [devices[0]], 'tiny', '2.0.0', 60_000)
    seed.proc.child.kill('SIGKILL')
    await seed.proc.exited
    killed.push(seed)
    for (const h of bed.hosts.slice(2)) await shapeIngress(bed, h, '8mbit')
    const tKill = Date.now()
    const atKill = await Promise.all(devices.slice(1).map((d) => httpStatus(bed, d)))
    const progress = atKill.map((s) => s.models.tiny?.downloading)
    t.diagnostic(
      `node-1 staged after ${tKill - t0} ms; nodes 2-4 at the kill: ${progress.map((p) => (p ? `${p.blocks_have}/${p.blocks_total}` : 'done')).join(', ')}`,
    )
    for (const [i, p] of progress.entries()) {
      assert.ok(p !== null && p !== undefined, `node-${i + 2} had already finished: kill too late`)
      assert.ok(p.blocks_have < p.blocks_total, `node-${i + 2} ${p.blocks_have}/${p.blocks_total}`)
    }
    await untilStaged(bed, devices.slice(1), 'tiny', '2.0.0', 60_000)
    t.diagnostic(`nodes 2-4 staged ${Date.now() - tKill} ms after the seed died`)
    for (const d of devices) {
      assert.equal(await sha256File(installedFile(d, 'tiny', '2.0.0')), pub.manifest.file.sha256, d.proc.name)
      const s = await httpStatus(bed, d)
      assert.ok(!s.peers.includes(seed.info.peerId), `${d.proc.name} still connected to the dead seed`)
      assert.equal(s.models.tiny.active, '1.0.0')
    }
  })

  test('kill -9 during download, then restart: resumed, active intact', async (t) => {
    seed = await startSeed('seed-2')
    await until(async () => (await httpStatus(bed, seed)).peers.length >= 4, 30_000, 'seed reconnected')
    const file = join(work, 'tiny-3.gguf')
    await writeTinyGguf(file, { ...BIG, seed: 3 })
    const pub = await publishRelease(bed, seed, file, { model: 'tiny', version: '3.0.0', policy: HOLD_POLICY })
    const size = pub.manifest.file.size
    const victim = devices[1]
    let had = 0
    let total = 0
    await until(
      async () => {
        const d = (await httpStatus(bed, victim)).models.tiny?.downloading
        if (d?.version !== '3.0.0') return false
        had = d.blocks_have
        total = d.blocks_total
        return d.blocks_have >= d.blocks_total * 0.4
      },
      60_000,
      'victim 40% through v3',
    )
    victim.proc.child.kill('SIGKILL')
    await victim.proc.exited
    killed.push(victim)
    // on disk right after the kill: `active` still v1 and complete, no v3 file
    const mdir = join(victim.dataDir, 'models', 'tiny')
    assert.equal(await readlink(join(mdir, 'active')), '1.0.0')
    assert.equal(await sha256File(join(mdir, 'active', 'model.gguf')), v1Sha)
    await assert.rejects(readFile(installedFile(victim, 'tiny', '3.0.0')))

    const again = await startDevice(2, 'node-2-restarted')
    devices[1] = again
    await untilStaged(bed, [again], 'tiny', '3.0.0', 60_000)
    const s = await httpStatus(bed, again)
    const resumed = again.proc.logs.find((l) => l.msg === 'fetching release' && l.version === '3.0.0')
    t.diagnostic(
      `killed at ${had}/${total} blocks; after restart missing ${String(resumed?.missing)}/${total}, ` +
        `received ${bytesIn(s)} B of a ${size} B file`,
    )
    assert.ok(resumed !== undefined, 'the restarted device fetched v3')
    assert.ok((resumed.missing as number) <= total - had, `missing ${String(resumed.missing)} after holding ${had}`)
    assert.ok(bytesIn(s) < size - 0.3 * size, `received ${bytesIn(s)} B after restart, file ${size} B`)
    assert.equal(await sha256File(installedFile(again, 'tiny', '3.0.0')), pub.manifest.file.sha256)
    assert.equal(s.models.tiny.active, '1.0.0')
    assert.equal(await sha256File(join(mdir, 'active', 'model.gguf')), v1Sha)
    for (const e of await readdir(mdir)) assert.ok(!e.startsWith('.tmp-'), e)
    for (const v of ['1.0.0', '2.0.0', '3.0.0'])
      for (const e of await readdir(join(mdir, v))) assert.ok(!e.endsWith('.partial') && !e.endsWith('.tmp'), e)
  })

  test('every running node exits cleanly, with no error or crash in any log', async () => {
    for (const n of [seed, ...devices].filter((n) => !killed.includes(n))) {
      const r = await bed.terminate(n.proc)
      assert.equal(r.code, 0, `${n.proc.name} exit`)
    }
    for (const n of [seed, ...devices, ...killed])
      assert.deepEqual(badLines(n.proc), [], `${n.proc.name} logged errors`)
  })
})
