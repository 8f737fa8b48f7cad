/**
 * The node API gives fastify its own schema compilers (node/api/server.ts `noRouteSchemas`): routes
 * validate with zod, so fastify never requires ajv or fast-json-stringify's compiler (code an idle
 * daemon would hold for nothing, docs/benchmarks.md "Idle footprint", seventh pass), and a route
 * that declares a fastify schema is refused when the app is built. The bundle's side (those
 * packages left out, zod's other locales shaken) is the build's own check (packaging/bundle.ts
 * `deadInputs`), run by test/mesh/idle-footprint.test.ts; its rule is tested here.
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { test } from 'node:test'
import type { FastifyPluginAsync } from 'fastify'
import pino from 'pino'
import { buildApiApp } from '../../node/api/server.ts'
import { deadInputs } from '../../packaging/bundle.ts'

const require = createRequire(import.meta.url)
const silent = pino({ level: 'silent' })

/** Whether this process has loaded a module whose path holds `part`. */
function loaded(part: string): boolean {
  return Object.keys(require.cache).some((k) => k.includes(part))
}

test('the API serves without fastify ever requiring its schema compilers', async (t) => {
  const plugin: FastifyPluginAsync = async (app) => {
    app.get('/status', async () => ({ ok: true }))
    app.post('/echo', async (req) => req.body)
  }
  const app = await buildApiApp({ plugins: [plugin] }, silent)
  t.after(() => app.close())
  await app.ready()
  assert.deepEqual((await app.inject({ method: 'GET', url: '/status' })).json(), { ok: true })
  const echo = await app.inject({ method: 'POST', url: '/echo', payload: { a: 1 } })
  assert.deepEqual(echo.json(), { a: 1 })
  // an error reply goes through fastify's precompiled error serializer, not a compiled one
  assert.equal((await app.inject({ method: 'GET', url: '/nowhere' })).statusCode, 404)
  assert.equal(loaded('@fastify/ajv-compiler'), false, 'fastify required @fastify/ajv-compiler')
  assert.equal(loaded('@fastify/fast-json-stringify-compiler'), false, 'fastify required its serializer compiler')
  assert.equal(loaded('/ajv/'), false, 'ajv loaded')
})

test('a route that declares a fastify schema is refused when the app is built', async () => {
  const plugin: FastifyPluginAsync = async (app) => {
    app.post('/typed', { schema: { body: { type: 'object' } } }, async () => ({}))
  }
  await assert.rejects(
    (async () => {
      const app = await buildApiApp({ plugins: [plugin] }, silent)
      await app.ready()
    })(),
    /a fastify route schema is not supported/,
  )
})

test("the bundle's dead inputs: zod's other locales, ajv and the schema compilers, only where bundled", () => {
  const out = (inputs: Record<string, number>) => ({
    'cli/chunk-A.js': { inputs: Object.fromEntries(Object.entries(inputs).map(([k, n]) => [k, { bytesInOutput: n }])) },
  })
  const zod = '../app/node_modules/zod/v4/locales'
  assert.deepEqual(deadInputs(out({ [`${zod}/en.js`]: 900, [`${zod}/index.js`]: 0, [`${zod}/he.js`]: 0 })), [])
  assert.deepEqual(deadInputs(out({ [`${zod}/he.js`]: 9912 })), [`${zod}/he.js`])
  assert.deepEqual(
    deadInputs(
      out({
        'node_modules/ajv/dist/core.js': 12727,
        'node_modules/@fastify/ajv-compiler/index.js': 1200,
        'node_modules/fast-json-stringify/index.js': 30000,
        // fastify's own precompiled error serializer uses these: bundled, and needed
        'node_modules/fast-json-stringify/lib/serializer.js': 4000,
        'node_modules/fastify/lib/error-serializer.js': 3000,
      }),
    ),
    [
      'node_modules/ajv/dist/core.js',
      'node_modules/@fastify/ajv-compiler/index.js',
      'node_modules/fast-json-stringify/index.js',
    ],
  )
})
