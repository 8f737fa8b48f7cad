/**
 * The fleet rollback of an agent version (protocols/agent/fallback.ts): a device running a version
 * the fleet refuses returns to the newest version it holds that is older, not refused, not rolled
 * back here and at or above the running release's `min_agent_version`; else it stays and says why.
 * And the publish default of `min_agent_version` (the first version of the compatibility line).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { agentFallback, compatFloor, ERR_AGENT_NO_FALLBACK, type FallbackInput } from '../../protocols/agent/index.ts'
import { buildAgentRelease, packageOf } from '../../seed/agent-publish.ts'
import { PLACEHOLDER_APPEND } from '../../seed/release-checks.ts'

const none = () => false
const input = (over: Partial<FallbackInput>): FallbackInput => ({
  running: '0.9.2',
  floor: '0.9.0',
  held: [],
  refused: none,
  failedHere: none,
  ...over,
})

describe('agentFallback', () => {
  test('returns to the newest held version at or above min_agent_version', () => {
    const d = agentFallback(input({ held: ['0.9.0', '0.9.2', '0.9.1', '0.8.5'] }))
    assert.deepEqual(d, { action: 'return', version: '0.9.1' })
  })

  test('skips versions the fleet refuses, versions rolled back here, and newer ones', () => {
    const d = agentFallback(
      input({
        held: ['0.9.0', '0.9.1', '0.9.3', '0.9.1-rc.1'],
        refused: (v) => v === '0.9.1',
        failedHere: (v) => v === '0.9.1-rc.1',
      }),
    )
    assert.deepEqual(d, { action: 'return', version: '0.9.0' })
  })

  test('never below min_agent_version: stays and names every held version and why', () => {
    const d = agentFallback(input({ floor: '0.9.2', held: ['0.9.0', '0.9.1', '0.9.3', 'junk', '../x'] }))
    assert.equal(d.action, 'stay')
    assert.equal(d.action === 'stay' && d.code, ERR_AGENT_NO_FALLBACK)
    const reason = d.action === 'stay' ? d.reason : ''
    assert.match(reason, /needs 0\.9\.2 or later/)
    assert.match(reason, /0\.9\.0: below min_agent_version, 0\.9\.1: below min_agent_version, 0\.9\.3: not older/)
    assert.doesNotMatch(reason, /junk|\.\.\/x/, 'names that are not versions are ignored')
  })

  test('the version install.sh put there is a fallback like any other; none held: stays', () => {
    assert.deepEqual(agentFallback(input({ held: ['0.9.0'] })), { action: 'return', version: '0.9.0' })
    const d = agentFallback(input({ held: ['0.9.2'] }))
    assert.equal(d.action, 'stay')
    assert.match(d.action === 'stay' ? d.reason : '', /no other version is installed/)
  })

  test('an unknown min_agent_version admits nothing', () => {
    const d = agentFallback(input({ floor: undefined, held: ['0.9.1'] }))
    assert.equal(d.action, 'stay')
    assert.match(d.action === 'stay' ? d.reason : '', /min_agent_version of 0\.9\.2 is unknown/)
  })

  test('the decision does not depend on the order of the held list', () => {
    const held = ['0.9.1+b', '0.9.0', '0.9.1+a', '0.9.1', '0.8.0']
    const want = agentFallback(input({ held }))
    assert.deepEqual(want, { action: 'return', version: '0.9.1+b' })
    for (let i = 0; i < held.length; i++) {
      const turned = [...held.slice(i), ...held.slice(0, i)].reverse()
      assert.deepEqual(agentFallback(input({ held: turned })), want)
    }
  })
})

describe('the publish default of min_agent_version', () => {
  test('the first version of the compatibility line', () => {
    assert.equal(compatFloor('2.4.1'), '2.0.0')
    assert.equal(compatFloor('2.0.0'), '2.0.0')
    assert.equal(compatFloor('0.9.2'), '0.9.0')
    assert.equal(compatFloor('0.9.2+linux'), '0.9.0')
    assert.equal(compatFloor('0.0.3'), '0.0.3', 'each 0.0.x is its own line')
    assert.equal(compatFloor('2.0.0-rc.1'), '2.0.0-rc.1', 'never above the version')
    assert.equal(compatFloor('2.1.0-rc.1'), '2.0.0')
  })

  test('a publish without --min-agent-version takes it; an explicit one is kept', () => {
    const req = { version: '0.9.2', arch: 'x64' as const, name: 'llmesh-0.9.2-linux-x64.tar.gz' }
    const ctx = { fleet: 'test-fleet', seq: 3, now: 1_700_000_000_000, packages: [packageOf(req, PLACEHOLDER_APPEND)] }
    assert.equal(buildAgentRelease(req, ctx).min_agent_version, '0.9.0')
    assert.equal(buildAgentRelease({ ...req, minAgentVersion: '0.9.2' }, ctx).min_agent_version, '0.9.2')
  })
})
