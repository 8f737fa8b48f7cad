/**
 * One release never stops another (real controller and pure logic, in-memory installer and
 * supervisor): a release whose evaluation throws is caught, counted, logged once per change and
 * shown, while the other releases are decided and activated; several valid manifests for one
 * model@version resolve the same way in any arrival order (same file: the lowest seq counts;
 * different files: the version is conflicted and refused).
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import pino from 'pino'
import { ROLLOUT_STATE_FILE } from '../../node/rollout/constants.ts'
import { decideRelease } from '../../node/rollout/plan.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { SHA_A, SHA_B } from '../fixtures/messages.ts'
import { tmpDir } from '../helpers/index.ts'
import { add, release, setup, ticks } from './rollout-fakes.ts'

/** A logger whose lines the test reads. */
function capture() {
  const lines: Array<{ level: number; msg: string; item?: string; code?: string }> = []
  const logger = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) })
  return { logger, lines }
}

const withFile = (m: ReleaseManifest, sha256: string): ReleaseManifest => ({ ...m, file: { ...m.file, sha256 } })

describe('per-release fault isolation', () => {
  test('a release whose state is corrupt fails alone; the next release activates', async (t) => {
    const dir = await tmpDir(t, 'llmesh-iso-')
    const r1 = release('1.0.0', 1)
    // a corrupt persisted state of 1.0.0 (a disk fault, a bug): deciding 1.0.0 throws
    const corrupt = { release: 'tiny@1.0.0', stages: ['full'], releasedAt: r1.created_at, commands: null, verdicts: {} }
    await writeFile(
      join(dir, ROLLOUT_STATE_FILE),
      JSON.stringify({ states: { 'tiny@1.0.0': corrupt }, aborted: [], failed: [], deactivated: {} }),
    )
    const { logger, lines } = capture()
    const s = await setup(dir, { logger })
    add(s.store, r1)
    add(s.store, release('1.1.0', 2))
    await s.controller.start()
    await ticks(s.controller, 5)
    assert.equal(s.installer.active, '1.1.0')
    assert.equal(s.supervisor.model?.version, '1.1.0')
    const st = s.controller.statusJson()
    assert.deepEqual(
      st.releases.map((r) => r.version),
      ['1.1.0'],
    )
    assert.equal(st.errors.length, 1)
    assert.equal(st.errors[0].model, 'tiny')
    assert.equal(st.errors[0].version, '1.0.0')
    assert.equal(st.errors[0].code, 'ERR_INTERNAL')
    assert.ok(st.errors[0].count >= 5)
    const counts = s.controller.releaseErrorCounts()
    assert.deepEqual(
      counts.map((c) => [c.model, c.version, c.code]),
      [['tiny', '1.0.0', 'ERR_INTERNAL']],
    )
    assert.ok(counts[0].count >= 5)
    // logged once, not once a tick
    const logged = lines.filter((l) => l.msg.startsWith('release evaluation failed'))
    assert.equal(logged.length, 1, JSON.stringify(logged))
    assert.equal(logged[0].item, 'tiny@1.0.0')
    // the tick itself never failed
    assert.deepEqual((s.status.loops.totals().rollout ?? 0) > 0, false)
    await s.controller.stop()
  })

  test('decide throwing for one release: logged once per change, recovered when it works again', async () => {
    const { logger, lines } = capture()
    let failure: string | null = 'boom'
    const s = await setup(undefined, {
      logger,
      decide: (snap, m, prev, state, now) => {
        if (m.version === '2.0.0' && failure !== null) throw Object.assign(new Error(failure), { code: 'ERR_TEST' })
        return decideRelease(snap, m, prev, state, now)
      },
    })
    add(s.store, release('2.0.0', 2))
    add(s.store, release('1.0.0', 1))
    await s.controller.start()
    await ticks(s.controller, 4)
    assert.equal(s.installer.active, '1.0.0') // the older release still rolls out
    const failed = () => lines.filter((l) => l.msg.startsWith('release evaluation failed'))
    assert.equal(failed().length, 1)
    assert.equal(s.controller.statusJson().errors[0]?.code, 'ERR_TEST')
    failure = 'another fault'
    await ticks(s.controller, 3)
    assert.equal(failed().length, 2) // a different error is a change: logged again
    // every evaluation so far failed: one per tick that ran (the 7 here, and the one start()
    // schedules if it ran meanwhile: counters.ticks counts it, in the same step as it evaluates) and
    // one per catch-up before going forward (1.0.0's activation re-decides every release)
    const { ticks: ran, activations } = s.controller.counters
    failure = null
    await ticks(s.controller, 3)
    assert.equal(s.installer.active, '2.0.0')
    assert.deepEqual(s.controller.statusJson().errors, [])
    assert.equal(lines.filter((l) => l.msg === 'release evaluation failed: recovered').length, 1)
    // each failed evaluation counts once: 8 (7 ticks and the catch-up), or 9 when start()'s tick ran
    // before the fix
    assert.equal(activations, 1)
    const n = s.controller.releaseErrorCounts().find((c) => c.version === '2.0.0')?.count ?? 0
    assert.equal(n, ran + activations, `${n} failed evaluations counted, ${ran} ticks and ${activations} catch-up ran`)
    await s.controller.stop()
  })
})

describe('several valid manifests for one model@version', () => {
  for (const order of ['lower seq first', 'higher seq first']) {
    test(`the same file published twice (${order}): the version rolls out once, no error`, async () => {
      const s = await setup()
      const a = release('1.0.0', 1)
      const b = { ...release('1.0.0', 2), created_at: a.created_at + 1 }
      await s.controller.start()
      for (const m of order === 'lower seq first' ? [a, b] : [b, a]) {
        add(s.store, m)
        await ticks(s.controller, 2)
      }
      assert.equal(s.installer.active, '1.0.0')
      // a later release of the model still rolls out (it used to be stuck behind a failing merge)
      add(s.store, release('1.1.0', 3))
      await ticks(s.controller, 3)
      assert.equal(s.installer.active, '1.1.0')
      const st = s.controller.statusJson()
      assert.deepEqual(st.errors, [])
      assert.deepEqual(
        st.conflicts.map((c) => [c.version, c.outcome, c.manifests.map((x) => x.seq)]),
        [['1.0.0', 'duplicate', [1, 2]]],
      )
      assert.deepEqual(
        st.releases.map((r) => [r.version, r.seq]),
        [
          ['1.0.0', 1],
          ['1.1.0', 3],
        ],
      )
      await s.controller.stop()
    })
  }

  for (const order of ['file A first', 'file B first']) {
    test(`two files under one version (${order}): conflicted, refused, the model goes back`, async () => {
      const s = await setup()
      const a = withFile(release('1.0.0', 2), SHA_A)
      const b = withFile(release('1.0.0', 3), SHA_B)
      add(s.store, release('0.9.0', 1))
      await s.controller.start()
      await ticks(s.controller, 2)
      assert.equal(s.installer.active, '0.9.0')
      const [first, second] = order === 'file A first' ? [a, b] : [b, a]
      add(s.store, first)
      await ticks(s.controller, 2)
      assert.equal(s.installer.active, '1.0.0') // one manifest alone: a normal release
      add(s.store, second)
      await ticks(s.controller, 3)
      // every node ends the same way: 1.0.0 refused, back to 0.9.0, never again
      assert.equal(s.installer.active, '0.9.0')
      assert.equal(s.supervisor.model?.version, '0.9.0')
      const st = s.controller.statusJson()
      assert.deepEqual(
        st.errors.map((e) => [e.version, e.code]),
        [['1.0.0', 'ERR_RELEASE_CONFLICT']],
      )
      assert.deepEqual(
        st.conflicts.map((c) => [c.version, c.outcome, c.chosen, c.manifests.map((x) => x.seq)]),
        [['1.0.0', 'conflicted', undefined, [2, 3]]],
      )
      assert.deepEqual(
        st.releases.map((r) => r.version),
        ['0.9.0'],
      )
      assert.equal(s.status.releaseState('tiny', '1.0.0'), 'conflicted')
      const log = s.log.length
      await ticks(s.controller, 3)
      assert.deepEqual(s.log.slice(log), [])
      await s.controller.stop()
    })
  }
})
