/**
 * Model distribution with real `llmesh` processes in network namespaces (mDNS only inside them),
 * releases published with `llmesh release publish` and state read from each device's /status:
 * 1. seed + 4 devices: all prestage a byte-identical, verified v1;
 * 2. v2 = v1 with one layer re-seeded: each device receives only about the changed chunks' bytes;
 * 3. a release for another CPU architecture and one larger than a device's free disk (a real
 *    96 MiB tmpfs under its models directory) are refused, with their reasons in /status.
 * Releases use a policy excluding the test devices, so they are prestaged but never activated.
 */

import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Fleet } from '../../node/fleet/index.ts'
import { sha256Hex } from '../../protocols/index.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { scaled } from '../helpers/index.ts'
import {
  bytesIn,
  DEVICE_TAG,
  HOLD_POLICY,
  httpStatus,
  installedFile,
  publishRelease,
  startNode,
  untilStaged,
} from './distribution-bed.ts'
import { type LanNode, makeFleetDir } from './helpers.ts'
import { badLines, canRunBed, TestBed, until } from './netns.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'
const MODEL = { layers: 4, embd: 192 } // ~6 MiB; one layer ~1.5 MiB
const OTHER_ARCH = process.arch === 'arm64' ? 'x64' : 'arm64'

describe('model distribution in network namespaces', { skip, timeout: scaled(180_000) }, () => {
  let bed: TestBed
  let fleet: Fleet
  let work: string
  let seed: LanNode
  const devices: LanNode[] = []
  const all: LanNode[] = []

  before(async () => {
    bed = await TestBed.create({ hosts: 6 })
    work = bed.logDir
    fleet = await makeFleetDir(work)
    const node = (i: number, extra: { tmpfsMiB?: number } = {}) =>
      startNode(bed, bed.hosts[i], {
        role: i === 0 ? 'seed' : 'node',
        fleetDir: fleet.dir,
        dataDir: join(work, `data-${i}`),
        name: i === 0 ? 'seed' : `node-${i}`,
        extra: i === 0 ? ['--tags', 'seed'] : ['--tags', DEVICE_TAG],
        ...extra,
      })
    seed = await node(0)
    // two at a time: TypeScript processes starting at once on 2 cores are slow
    devices.push(...(await Promise.all([node(1), node(2)])))
    devices.push(...(await Promise.all([node(3), node(4)])))
    all.push(seed, ...devices)
    await until(
      async () => (await Promise.all(devices.map((d) => httpStatus(bed, d)))).every((s) => s.peers.length >= 4),
      30_000,
      'every device connected to the 4 others',
    )
  })

  after(async () => {
    await bed?.destroy()
  })

  let v1: Buffer

  test('seed + 4 devices: every device ends with a byte-identical, verified v1 staged', async (t) => {
    const file = join(work, 'tiny-1.gguf')
    await writeTinyGguf(file, MODEL)
    v1 = await readFile(file)
    const t0 = Date.now()
    const pub = await publishRelease(bed, seed, file, { model: 'tiny', version: '1.0.0', policy: HOLD_POLICY })
    assert.equal(pub.manifest.file.sha256, sha256Hex(v1))
    assert.equal(pub.new_bytes, v1.length, 'a first version is all new chunks')
    await untilStaged(bed, devices, 'tiny', '1.0.0', 60_000)
    t.diagnostic(`publish → staged on 4 devices: ${Date.now() - t0} ms (${(v1.length / 1048576).toFixed(1)} MiB)`)
    for (const d of devices) {
      const s = await httpStatus(bed, d)
      assert.ok(s.models.tiny.staged.includes('1.0.0') || s.models.tiny.active === '1.0.0')
      assert.equal(s.models.tiny.downloading, null)
      assert.deepEqual(s.models.tiny.refused, [])
      assert.ok(bytesIn(s) >= v1.length, `${d.proc.name} received ${bytesIn(s)} bytes`)
      assert.ok((await readFile(installedFile(d, 'tiny', '1.0.0'))).equals(v1), `${d.proc.name} file differs`)
      const manifest = JSON.parse(await readFile(join(d.dataDir, 'models/tiny/1.0.0/manifest.json'), 'utf8'))
      assert.equal(manifest.file.sha256, pub.manifest.file.sha256)
      assert.ok(d.proc.logs.some((l) => l.msg === 'release staged' && l.version === '1.0.0'))
    }
  })

  test('v2 with one layer changed: devices receive only about the new chunks (within 10%)', async (t) => {
    const file = join(work, 'tiny-2.gguf')
    await writeTinyGguf(file, { ...MODEL, perturbLayer: 2 })
    const v2 = await readFile(file)
    const before = await Promise.all(devices.map((d) => httpStatus(bed, d)))
    const pub = await publishRelease(bed, seed, file, { model: 'tiny', version: '2.0.0', policy: HOLD_POLICY })
    assert.ok(pub.new_chunks > 0 && pub.new_chunks < pub.manifest.chunks.chunks.length)
    assert.ok(pub.new_bytes < v2.length / 2, `new bytes ${pub.new_bytes} of ${v2.length}`)
    await untilStaged(bed, devices, 'tiny', '2.0.0', 60_000)
    const afterSt = await Promise.all(devices.map((d) => httpStatus(bed, d)))
    const received = afterSt.map((s, i) => bytesIn(s) - bytesIn(before[i]))
    t.diagnostic(
      `changed chunks ${pub.new_chunks}/${pub.manifest.chunks.chunks.length} = ${pub.new_bytes} B; ` +
        `received per device: ${received.join(', ')} B (file ${v2.length} B)`,
    )
    for (const [i, r] of received.entries()) {
      assert.ok(
        Math.abs(r - pub.new_bytes) <= 0.1 * pub.new_bytes,
        `${devices[i].proc.name} received ${r} B for ${pub.new_bytes} B of new chunks`,
      )
      assert.ok((await readFile(installedFile(devices[i], 'tiny', '2.0.0'))).equals(v2))
      const fetchLog = devices[i].proc.logs.find((l) => l.msg === 'fetching release' && l.version === '2.0.0')
      assert.equal(fetchLog?.missing, pub.new_chunks)
    }
  })

  test('every device exits cleanly on SIGTERM, with no error or crash in any log', async () => {
    for (const d of devices) {
      const r = await bed.terminate(d.proc)
      assert.equal(r.code, 0, `${d.proc.name} exit`)
      // no temporary files left behind
      for (const v of await readdir(join(d.dataDir, 'models/tiny'))) assert.ok(!v.startsWith('.tmp-'), v)
    }
    for (const n of all) assert.deepEqual(badLines(n.proc), [], `${n.proc.name} logged errors`)
  })

  test('a release for another architecture and one too big for the free disk are refused in /status', async (t) => {
    // a device whose models directory is a 96 MiB tmpfs: v2 (6 MiB) fits with the 64 MiB reserve, 46 MiB does not
    // (a download needs one copy of the file: it is written straight into it)
    const small = await startNode(bed, bed.hosts[5], {
      role: 'node',
      fleetDir: fleet.dir,
      dataDir: join(work, 'data-5'),
      name: 'node-small-disk',
      tmpfsMiB: 96,
      extra: ['--tags', DEVICE_TAG],
    })
    all.push(small)
    await until(async () => (await httpStatus(bed, small)).models.tiny?.staged.includes('2.0.0') === true, 60_000, 'v2')
    const foreign = join(work, 'foreign.gguf')
    await writeTinyGguf(foreign, { layers: 2, embd: 64, seed: 7 })
    await publishRelease(bed, seed, foreign, {
      model: 'foreign',
      version: '1.0.0',
      policy: HOLD_POLICY,
      arch: OTHER_ARCH,
    })
    const huge = join(work, 'huge.gguf')
    await writeTinyGguf(huge, { layers: 2, embd: 768, seed: 9 })
    await publishRelease(bed, seed, huge, { model: 'huge', version: '1.0.0', policy: HOLD_POLICY })
    await until(
      async () => {
        const s = await httpStatus(bed, small)
        return (s.models.foreign?.refused.length ?? 0) > 0 && (s.models.huge?.refused.length ?? 0) > 0
      },
      30_000,
      'both refusals in /status',
    )
    const s = await httpStatus(bed, small)
    t.diagnostic(`refusals: ${JSON.stringify([s.models.foreign.refused, s.models.huge.refused])}`)
    const [arch] = s.models.foreign.refused
    assert.equal(arch.version, '1.0.0')
    assert.equal(arch.code, 'ERR_INCOMPATIBLE_ARCH')
    assert.match(arch.reason, new RegExp(`built for ${OTHER_ARCH}, this device is ${process.arch}`))
    const [disk] = s.models.huge.refused
    assert.equal(disk.code, 'ERR_INSUFFICIENT_DISK')
    assert.match(disk.reason, /needs [\d.]+ MiB of free disk .* [\d.]+ MiB free/)
    const free = Number(/([\d.]+) MiB free/.exec(disk.reason)?.[1])
    assert.ok(free > 80 && free < 96, `free ${free} MiB is the tmpfs, not the host disk`)
    // nothing of either was fetched or installed; v2 still staged
    for (const m of ['foreign', 'huge']) {
      assert.deepEqual(s.models[m].staged, [])
      assert.equal(s.models[m].downloading, null)
    }
    assert.ok(s.models.tiny.staged.includes('2.0.0'))
    assert.ok(small.proc.logs.some((l) => l.code === 'ERR_INSUFFICIENT_DISK' && (l.level ?? 0) === 40))
    const r = await bed.terminate(small.proc)
    assert.equal(r.code, 0)
    assert.deepEqual(badLines(small.proc), [])
    assert.deepEqual(badLines(seed.proc), [])
  })
})
