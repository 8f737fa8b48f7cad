/**
 * POST /v1/embeddings with the official `openai` client against the fastify plugin on 127.0.0.1,
 * backed by a real worker and a tiny generated model: plain and batched input, float and base64,
 * the bounds (empty, token arrays, too many, too long, dimensions), metrics, and unknown /v1
 * routes answering in OpenAI's error shape.
 */
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import OpenAI from 'openai'
import { MAX_EMBEDDING_INPUTS } from '../../node/inference/constants.ts'
import { InferenceSupervisor } from '../../node/inference/inference-supervisor.ts'
import { createInferenceMetrics } from '../../node/inference/metrics.ts'
import { openaiRoutes } from '../../node/inference/openai-routes.ts'
import { silentLogger } from '../../node/logger.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { scaled, tmpDir } from '../helpers/index.ts'

let app: FastifyInstance
let client: OpenAI
let base = ''
const sup = new InferenceSupervisor({ logger: silentLogger() }, { threads: 1, maxConcurrent: 1, maxQueue: 4 })
const metrics = createInferenceMetrics()

before(async (t) => {
  const dir = await tmpDir(t as never, 'llmesh-embed-')
  const modelPath = (await writeTinyGguf(join(dir, 'tiny.gguf'))).path
  metrics.bindSupervisor(sup)
  await sup.start()
  await sup.loadModel(modelPath, { name: 'tiny', version: '1' })
  app = Fastify({ logger: false })
  await app.register(openaiRoutes, { supervisor: sup, metrics })
  await app.listen({ host: '127.0.0.1', port: 0 })
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1`
  client = new OpenAI({ baseURL: base, apiKey: 'not-needed-on-loopback', maxRetries: 0 })
})
after(async () => {
  await app?.close()
  await sup.stop()
})

/** A JSON body as this test reads it: OpenAI's error shape or an embeddings list. */
interface Body {
  error: { message: string; type: string; code: string; param: string | null }
  data: Array<{ embedding: string | number[] }>
}

/** POSTs raw JSON (for bodies the typed client will not send). */
async function post(path: string, body: unknown): Promise<{ status: number; json: Body }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: res.status, json: (await res.json()) as Body }
}

/** Asserts OpenAI's error shape with this status, code and param. */
function isOpenAIError(r: { status: number; json: Body }, status: number, code: string, param?: string): void {
  assert.equal(r.status, status, JSON.stringify(r.json))
  assert.equal(typeof r.json.error.message, 'string')
  assert.equal(typeof r.json.error.type, 'string')
  assert.equal(r.json.error.code, code)
  if (param !== undefined) assert.equal(r.json.error.param, param)
}

describe('POST /v1/embeddings with the openai client', { timeout: scaled(60_000) }, () => {
  test('one string: one finite vector, token usage, the same vector for the same text', async () => {
    const a = await client.embeddings.create({ model: 'tiny', input: 'the quick brown fox', encoding_format: 'float' })
    assert.equal(a.object, 'list')
    assert.equal(a.model, 'tiny')
    assert.equal(a.data.length, 1)
    const v = a.data[0].embedding
    assert.ok(v.length > 0)
    assert.ok(v.every((x) => Number.isFinite(x)))
    assert.ok(v.some((x) => x !== 0))
    assert.ok(a.usage.prompt_tokens > 0)
    assert.equal(a.usage.total_tokens, a.usage.prompt_tokens)
    const b = await client.embeddings.create({ model: 'tiny', input: 'the quick brown fox', encoding_format: 'float' })
    assert.deepEqual(b.data[0].embedding, v)
  })

  test('batched input: one vector per input, in order, equal to one-at-a-time', async () => {
    const inputs = ['alpha beta', 'gamma delta epsilon', 'alpha beta']
    const r = await client.embeddings.create({ model: 'tiny', input: inputs, encoding_format: 'float' })
    assert.deepEqual(
      r.data.map((d) => d.index),
      [0, 1, 2],
    )
    assert.deepEqual(r.data[0].embedding, r.data[2].embedding)
    assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding)
    const one = await client.embeddings.create({ model: 'tiny', input: inputs[1], encoding_format: 'float' })
    assert.deepEqual(one.data[0].embedding, r.data[1].embedding)
  })

  test('base64: the client default decodes to the float values; raw base64 is little-endian float32', async () => {
    const float = await client.embeddings.create({ model: 'tiny', input: 'hello world', encoding_format: 'float' })
    const decoded = await client.embeddings.create({ model: 'tiny', input: 'hello world' }) // client asks base64, decodes
    assert.deepEqual(decoded.data[0].embedding, float.data[0].embedding)
    const raw = await post('/embeddings', { input: ['hello world'], encoding_format: 'base64' })
    assert.equal(raw.status, 200)
    const b64 = raw.json.data[0].embedding as string
    assert.equal(typeof b64, 'string')
    const buf = Buffer.from(b64, 'base64')
    const f32 = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4)
    assert.deepEqual([...f32], float.data[0].embedding)
  })

  test('bounds: empty, token arrays, too many inputs, too long, wrong dimensions, unknown model', async () => {
    isOpenAIError(await post('/embeddings', { input: '' }), 400, 'invalid_request', 'input')
    isOpenAIError(await post('/embeddings', { input: [] }), 400, 'invalid_request', 'input')
    isOpenAIError(await post('/embeddings', { input: [1, 2, 3] }), 400, 'invalid_request')
    isOpenAIError(await post('/embeddings', {}), 400, 'invalid_request', 'input')
    const many = Array.from({ length: MAX_EMBEDDING_INPUTS + 1 }, (_, i) => `x${i}`)
    isOpenAIError(await post('/embeddings', { input: many }), 400, 'invalid_request', 'input')
    const long = 'word '.repeat(2_000) // the tiny model's context is 256 tokens
    const tooLong = await post('/embeddings', { input: ['short', long] })
    isOpenAIError(tooLong, 400, 'context_length_exceeded', 'input')
    assert.match(tooLong.json.error.message, /input 1 has \d+ tokens/)
    const size = (await client.embeddings.create({ model: 'tiny', input: 'x', encoding_format: 'float' })).data[0]
      .embedding.length
    isOpenAIError(await post('/embeddings', { input: 'x', dimensions: size + 1 }), 400, 'invalid_request', 'dimensions')
    const ok = await post('/embeddings', { input: 'x', dimensions: size })
    assert.equal(ok.status, 200)
    isOpenAIError(await post('/embeddings', { model: 'other', input: 'x' }), 404, 'model_not_found', 'model')
    await assert.rejects(client.embeddings.create({ model: 'other', input: 'x' }), (e: unknown) => {
      return e instanceof OpenAI.NotFoundError && e.code === 'model_not_found'
    })
  })

  test('embeddings share the queue with generation and are counted with mode="embed"', async () => {
    const [g, e] = await Promise.all([
      sup.generate({ mode: 'completion', prompt: 'Hello', maxTokens: 16 }),
      client.embeddings.create({ model: 'tiny', input: ['one', 'two'], encoding_format: 'float' }),
    ])
    assert.equal(g.tokensOut, 16)
    assert.equal(e.data.length, 2)
    const text = await metrics.registry.metrics()
    const line = text
      .split('\n')
      .find(
        (l) =>
          l.startsWith('llmesh_inference_requests_total{') && l.includes('mode="embed"') && l.includes('outcome="ok"'),
      )
    assert.ok(line !== undefined, 'an embed request series exists')
    assert.ok(Number(line.split(' ').at(-1)) >= 1)
  })
})

describe('unknown /v1 routes answer in OpenAI error shape', () => {
  test('an unknown path and a wrong method are 404 with error.type/code/message', async () => {
    const a = await fetch(`${base}/nope`)
    assert.equal(a.status, 404)
    const aj = (await a.json()) as Body
    assert.equal(aj.error.type, 'invalid_request_error')
    assert.equal(aj.error.code, 'unknown_url')
    assert.match(aj.error.message, /GET \/v1\/nope/)
    const b = await fetch(`${base}/embeddings`)
    assert.equal(b.status, 404)
    assert.equal(((await b.json()) as Body).error.code, 'unknown_url')
    await assert.rejects(client.get('/nothing-here'), (e: unknown) => e instanceof OpenAI.NotFoundError)
  })
})
