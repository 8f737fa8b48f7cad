/** The shared test kit (test/helpers): condition waits, scaled deadlines, temp dirs, the CLI runner. */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import { cli, POLICIES, SLOWDOWN, scaled, suiteTmpDir, tmpDir, waitFor } from '../helpers/index.ts'

describe('test kit', () => {
  test('waitFor returns as soon as the condition holds', async () => {
    let n = 0
    const t0 = Date.now()
    await waitFor(() => ++n >= 3, { timeoutMs: 60_000, intervalMs: 1 })
    assert.equal(n, 3)
    assert.ok(Date.now() - t0 < 5_000)
  })

  test('waitFor names what it waited for, with the scaled deadline', async () => {
    await assert.rejects(
      waitFor(() => false, { timeoutMs: 10, what: 'the moon' }),
      new RegExp(`timed out after ${scaled(10)} ms waiting for the moon`),
    )
    assert.ok(SLOWDOWN >= 1)
    assert.equal(scaled(1000), Math.round(1000 * SLOWDOWN))
  })

  let kept = ''
  test('tmpDir is removed when its test ends', async (t) => {
    kept = await tmpDir(t)
    await writeFile(join(kept, 'x'), 'y')
    assert.ok(existsSync(join(kept, 'x')))
  })
  test('… and is gone afterwards', () => {
    assert.notEqual(kept, '')
    assert.equal(existsSync(kept), false)
  })

  test('cli reports the exit code and output without throwing', async () => {
    const ok = await cli(['--version'])
    assert.equal(ok.code, 0)
    assert.match(ok.stdout, /\d+\.\d+\.\d+/)
    const bad = await cli(['no-such-command'])
    assert.notEqual(bad.code, 0)
    assert.ok(bad.stderr.length > 0)
  })
})

let suiteDir = ''
describe('suiteTmpDir', () => {
  suiteDir = suiteTmpDir('llmesh-suite-')
  test('lives through every test of its suite', async () => {
    await writeFile(join(suiteDir, 'x'), 'y')
    assert.ok(existsSync(join(suiteDir, 'x')))
  })
  test('… still there for the next test', () => {
    assert.ok(existsSync(join(suiteDir, 'x')))
  })
})
test('… and is gone once its suite ended', () => {
  assert.notEqual(suiteDir, '')
  assert.equal(existsSync(suiteDir), false)
})

test('the named policies parse', () => {
  assert.equal(parsePolicyYaml(POLICIES.ONE_STAGE).stages.length, 1)
  const pilot = parsePolicyYaml(POLICIES.PILOT_THEN_ALL('3s', 2))
  assert.deepEqual(pilot.stages[0].tags, ['pilot'])
  assert.equal(pilot.stages[0].window_ms, 3000)
  assert.equal(pilot.gates.min_reports, 2)
})
