/**
 * Distribution integrity with real `llmesh` processes in network namespaces (issue 4, tests 4
 * and 5's activation half):
 * 1. A peer serving corrupted blocks (test/lan/evil-node.ts: the real daemon with a byte flipped
 *    in every block it sends). The victim starts while the honest seed is frozen (SIGSTOP), so
 *    the evil peer is the only one that can answer; every block it sends is refused and named in
 *    the victim's log and /status; once the seed runs again the download completes from it and
 *    the file is byte-identical to the release.
 * 2. kill -9 during activation (the new version's symlink switched, its inference worker loading
 *    it), then restart: `active` names a complete, verified file at every moment, no temporary
 *    files are left, and the restarted device finishes the activation and serves the new version.
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
  DEVICE_TAG,
  HOLD_POLICY,
  httpStatus,
  installedFile,
  publishRelease,
  sha256File,
  startNode,
  untilStaged,
} from './distribution-bed.ts'
import { type LanNode, makeFleetDir } from './helpers.ts'
import { badLines, canRunBed, TestBed, until } from './netns.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'
const EVIL_ENTRY = join(import.meta.dirname, 'evil-node.ts')

describe('distribution integrity in network namespaces', { skip, timeout: scaled(240_000) }, () => {
  let bed: TestBed
  let fleet: Fleet
  let seed: LanNode
  let evil: LanNode
  let victim: LanNode
  const all: LanNode[] = []
  const killed = new Set<LanNode>()

  const device = (i: number, name: string, entry?: string) =>
    startNode(bed, bed.hosts[i], {
      role: 'node',
      fleetDir: fleet.dir,
      dataDir: join(bed.logDir, `data-${i}`),
      name,
      extra: ['--tags', DEVICE_TAG],
      entry,
    })

  before(async () => {
    bed = await TestBed.create({ hosts: 3 })
    fleet = await makeFleetDir(bed.logDir)
    seed = await startNode(bed, bed.hosts[0], {
      role: 'seed',
      fleetDir: fleet.dir,
      dataDir: join(bed.logDir, 'data-0'),
      name: 'seed',
      extra: ['--tags', 'seed'],
    })
    evil = await device(1, 'evil', EVIL_ENTRY)
    all.push(seed, evil)
  })

  after(async () => {
    // never leave the seed frozen if a test failed while it was stopped
    if (seed !== undefined && seed.proc.child.exitCode === null) seed.proc.child.kill('SIGCONT')
    await bed?.destroy()
  })

  test('a peer serving corrupted blocks: every bad block refused, the download completes from the honest seed', async (t) => {
    const file = join(bed.logDir, 'tiny-1.gguf')
    await writeTinyGguf(file, { layers: 2, embd: 128, seed: 1 })
    const pub = await publishRelease(bed, seed, file, { model: 'tiny', version: '1.0.0', policy: HOLD_POLICY })
    await untilStaged(bed, [evil], 'tiny', '1.0.0', 60_000)

    // freeze the honest seed: the evil peer is the only one the victim can fetch from
    const seedPid = seed.proc.child.pid
    assert.ok(seedPid !== undefined)
    process.kill(seedPid, 'SIGSTOP')
    victim = await device(2, 'victim')
    all.push(victim)
    const refusals = () => victim.proc.logs.filter((l) => l.msg === 'refused a block that failed verification')
    const sent = () => evil.proc.logs.filter((l) => l.msg === 'test fault: corrupted block sent')
    try {
      await until(() => refusals().length > 0, 60_000, 'the victim to refuse a corrupted block')
    } finally {
      process.kill(seedPid, 'SIGCONT')
    }
    await untilStaged(bed, [victim], 'tiny', '1.0.0', 90_000)

    const refused = refusals()
    t.diagnostic(`evil sent ${sent().length} corrupted blocks; the victim refused ${refused.length}`)
    assert.ok(sent().length > 0, 'the evil peer served corrupted blocks')
    for (const l of refused) assert.equal(l.peer, evil.info.peerId, 'each refusal names the peer that sent it')
    assert.equal(await sha256File(installedFile(victim, 'tiny', '1.0.0')), pub.manifest.file.sha256)
    assert.deepEqual(await readFile(installedFile(victim, 'tiny', '1.0.0')), await readFile(file))
    const s = await httpStatus(bed, victim)
    assert.ok((s.replication?.invalidBlocks ?? 0) >= 1, 'status counts the refused blocks')
    assert.equal(s.replication?.peers[seed.info.peerId]?.invalidBlocks ?? 0, 0, 'nothing refused from the seed')
    assert.equal(
      victim.proc.logs.filter((l) => /sha256|mismatch/i.test(String(l.msg))).length,
      0,
      'no assembled file ever failed its signed hash',
    )
    // the fault has shown what it had to: the evil peer leaves cleanly
    assert.equal((await bed.terminate(evil.proc)).code, 0)
  })

  test('kill -9 during activation, then restart: active always complete, the activation finishes', async (t) => {
    // v2 (small) becomes active first, so the kill lands on a switch from a good version
    const f2 = join(bed.logDir, 'tiny-2.gguf')
    await writeTinyGguf(f2, { layers: 2, embd: 64, seed: 2 })
    const v2 = await publishRelease(bed, seed, f2, { model: 'tiny', version: '2.0.0', policy: ALL_POLICY })
    await until(
      () => victim.proc.logs.some((l) => l.msg === 'release serving' && l.version === '2.0.0'),
      90_000,
      'v2 serving on the victim',
    )
    // v3 is large (~8 MiB): its worker takes a while to load it, the window the kill lands in
    const f3 = join(bed.logDir, 'tiny-3.gguf')
    await writeTinyGguf(f3, { layers: 3, embd: 256, seed: 3 })
    const shas: Record<string, string> = { '2.0.0': v2.manifest.file.sha256 }
    let killedAt = -1
    const proc = victim.proc
    let partial = ''
    proc.child.stderr?.on('data', (chunk: Buffer | string) => {
      const lines = (partial + String(chunk)).split('\n')
      partial = lines.pop() ?? ''
      const hit = lines.some((l) => l.includes('"msg":"activating release"') && l.includes('"version":"3.0.0"'))
      if (killedAt < 0 && hit) {
        proc.child.kill('SIGKILL')
        killedAt = Date.now()
      }
    })
    const v3 = await publishRelease(bed, seed, f3, { model: 'tiny', version: '3.0.0', policy: ALL_POLICY })
    shas['3.0.0'] = v3.manifest.file.sha256
    await until(() => proc.child.exitCode !== null || proc.child.signalCode !== null, 120_000, 'the kill')
    killed.add(victim)
    assert.ok(
      !proc.logs.some((l) => l.msg === 'release serving' && l.version === '3.0.0'),
      'the kill landed before v3 was serving',
    )

    const mdir = join(victim.dataDir, 'models', 'tiny')
    const active = await readlink(join(mdir, 'active'))
    t.diagnostic(`after the kill: active -> ${active}`)
    assert.ok(active in shas, `active names a known version, not ${active}`)
    assert.equal(await sha256File(join(mdir, 'active', 'model.gguf')), shas[active], 'active file complete')
    const previous = await readlink(join(mdir, 'previous')).catch(() => null)
    if (previous !== null) assert.equal(await sha256File(join(mdir, previous, 'model.gguf')), shas[previous])

    victim = await device(2, 'victim-restarted')
    all.push(victim)
    await until(
      () => victim.proc.logs.some((l) => l.msg === 'release serving' && l.version === '3.0.0'),
      90_000,
      'v3 serving after the restart',
    )
    if (active === '3.0.0' && previous !== null) {
      assert.ok(
        victim.proc.logs.some((l) => l.msg === 'resuming an interrupted activation'),
        'the restart resumed the interrupted activation',
      )
    }
    await until(
      async () => (await httpStatus(bed, victim)).models.tiny.previous === null,
      30_000,
      'v3 declared healthy',
    )
    const s = await httpStatus(bed, victim)
    assert.equal(s.models.tiny.active, '3.0.0')
    assert.equal(await sha256File(join(mdir, 'active', 'model.gguf')), shas['3.0.0'])
    for (const e of await readdir(mdir)) assert.ok(!e.startsWith('.tmp-'), `left over: ${e}`)
    for (const v of await readdir(mdir)) {
      if (v === 'active' || v === 'previous') continue
      for (const e of await readdir(join(mdir, v))) assert.ok(!/\.partial$|\.tmp/.test(e), `left over: ${v}/${e}`)
    }
  })

  test('every running node exits cleanly, with no error or crash in any log', async () => {
    for (const n of all.filter((n) => !killed.has(n))) {
      if (n.proc.child.exitCode !== null) {
        assert.equal(n.proc.child.exitCode, 0, `${n.proc.name} exited`)
        continue
      }
      assert.equal((await bed.terminate(n.proc)).code, 0, `${n.proc.name} exit`)
    }
    for (const n of all) assert.deepEqual(badLines(n.proc), [], `${n.proc.name} logged errors`)
  })
})
