/** The CLI reads the API's error contract: the daemon's ERR_ code and message reach the one-line error. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import { ApiClient, apiError, callApi, DEFAULT_TIMEOUT_MS } from '../../cli/api-client.ts'
import { envTimeoutMs } from '../../cli/api-transport.ts'
import { installErrorHandlers, sendError } from '../../node/api/errors.ts'
import { optionSpec } from '../../node/config/options.ts'
import { silentLogger } from '../../node/logger.ts'

test('apiError: the contract, an older node’s shape, and no code at all', () => {
  const e = apiError(409, { error: { code: 'ERR_REVOKED', message: 'x is revoked' } })
  assert.deepEqual([e.code, e.message, e.exitCode, e.status], ['ERR_REVOKED', 'x is revoked', 4, 409])
  const old = apiError(400, { error: 'ERR_INVALID_INPUT', message: 'bad tags' })
  assert.deepEqual([old.code, old.message], ['ERR_INVALID_INPUT', 'bad tags'])
  const openai = apiError(503, { error: { code: 'model_deactivated', message: 'off', type: 'server_error' } })
  assert.deepEqual([openai.code, openai.message], ['ERR_API', 'off'])
  const proxy = apiError(502, '<html>bad gateway</html>')
  assert.deepEqual([proxy.code, proxy.message], ['ERR_API', 'HTTP 502'])
})

test('callApi against a real server: the code, and missingOk only for a missing route', async () => {
  const app = Fastify()
  installErrorHandlers(app, silentLogger())
  app.get('/devices/:peer', async (_req, reply) => sendError(reply, 'ERR_NOT_FOUND', 'no device x known'))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const addr = app.server.address()
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`
  try {
    await assert.rejects(callApi(`${url}/devices/x`, undefined, { missingOk: true }), {
      code: 'ERR_NOT_FOUND',
      message: 'no device x known',
    })
    assert.equal(await callApi(`${url}/releases`, undefined, { missingOk: true }), undefined)
    await assert.rejects(callApi(`${url}/releases`), { code: 'ERR_NO_ROUTE' })
  } finally {
    await app.close()
  }
})

test('LLMESH_API_TIMEOUT: how long a call waits, against a real server that answers slowly', async (t) => {
  assert.equal(await envTimeoutMs({}), DEFAULT_TIMEOUT_MS)
  // the documented default (docs/config.md, from the option table) is the one the CLI uses
  const documented = optionSpec('api_timeout').default?.({} as never)
  assert.equal(await envTimeoutMs({ LLMESH_API_TIMEOUT: String(documented) }), DEFAULT_TIMEOUT_MS)
  assert.equal(await envTimeoutMs({ LLMESH_API_TIMEOUT: '90s' }), 90_000)
  assert.equal(await envTimeoutMs({ LLMESH_API_TIMEOUT: '' }), DEFAULT_TIMEOUT_MS, 'empty: unset')
  for (const bad of ['soon', '0s', '-5s'])
    await assert.rejects(envTimeoutMs({ LLMESH_API_TIMEOUT: bad }), { code: 'ERR_USAGE', exitCode: 2 }, bad)
  const app = Fastify()
  app.get('/status', async () => {
    await new Promise((r) => setTimeout(r, 600))
    return { ok: true }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => app.close())
  const addr = app.server.address()
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`
  const saved = process.env.LLMESH_API_TIMEOUT
  t.after(() => {
    if (saved === undefined) delete process.env.LLMESH_API_TIMEOUT
    else process.env.LLMESH_API_TIMEOUT = saved
  })
  process.env.LLMESH_API_TIMEOUT = '200ms'
  await assert.rejects(new ApiClient(url).status(), { code: 'ERR_TIMEOUT', exitCode: 3 })
  process.env.LLMESH_API_TIMEOUT = '30s'
  assert.deepEqual(await new ApiClient(url).status(), { ok: true })
})
