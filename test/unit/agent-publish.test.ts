/**
 * The seed's agent publish checks (seed/agent-publish.ts, seed/agent-routes.ts): the request is
 * refused before any byte is read when the version is a duplicate or an unallowed downgrade (the
 * rule model releases follow), when the architecture is unknown or the compatibility fields are
 * above the version; a body that is not gzip is refused from its first bytes.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checkGzipStart, preflightAgent } from '../../seed/agent-publish.ts'
import { parseAgentRequest } from '../../seed/agent-routes.ts'

const known = () => [
  { version: '0.2.0', seq: 1 },
  { version: '0.3.0', seq: 2 },
]
const c = { fleet: 'test-fleet', known }
const req = (q: Record<string, string>, name = 'llmesh-0.4.0-linux-x64.tar.gz') => parseAgentRequest(q, name, undefined)

test('the next agent seq follows the highest; the architecture comes from the file name', () => {
  const r = req({ version: '0.4.0' })
  assert.equal(r.arch, 'x64')
  assert.deepEqual(preflightAgent(r, c, 1), { seq: 3, downgradeFrom: undefined })
  assert.equal(req({ version: '0.4.0', arch: 'arm64' }).arch, 'arm64')
  assert.throws(() => req({ version: '0.4.0' }, 'pkg.tar.gz'), { code: 'ERR_INVALID_INPUT' })
  assert.throws(() => req({ version: '0.4.0', arch: 'any' }), { code: 'ERR_INVALID_INPUT' })
})

test('duplicates and downgrades follow the model releases rule', () => {
  assert.throws(() => preflightAgent(req({ version: '0.3.0' }), c, 1), { code: 'ERR_VERSION_EXISTS' })
  assert.throws(() => preflightAgent(req({ version: '0.2.5' }), c, 1), { code: 'ERR_DOWNGRADE' })
  const d = preflightAgent(req({ version: '0.2.5', allow_downgrade: '1' }), c, 1)
  assert.equal(d.downgradeFrom, '0.3.0')
})

test('compatibility fields above the version and bad names are refused', () => {
  assert.throws(() => preflightAgent(req({ version: '0.4.0', min_agent_version: '0.5.0' }), c, 1), {
    code: 'ERR_INVALID_INPUT',
  })
  assert.throws(() => preflightAgent(req({ version: '0.4.0', min_from: '0.4.1' }), c, 1), { code: 'ERR_INVALID_INPUT' })
  assert.throws(() => preflightAgent(req({ version: 'v4' }), c, 1), { code: 'ERR_INVALID_INPUT' })
})

test('a body that is not gzip is refused from its first bytes', () => {
  assert.doesNotThrow(() => checkGzipStart(new Uint8Array([0x1f, 0x8b, 8, 0]), 'p.tar.gz'))
  assert.throws(() => checkGzipStart(new Uint8Array([0x47, 0x47, 0x55, 0x46]), 'p.tar.gz'), {
    code: 'ERR_INVALID_INPUT',
  })
})
