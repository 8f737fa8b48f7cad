/**
 * The official `openai` client against the fastify plugin on 127.0.0.1, backed by a real worker
 * with a tiny generated model: completions and chat, streamed and not, errors in OpenAI's shape,
 * 429/503 with Retry-After, bearer auth for non-loopback callers, metrics.
 */
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import OpenAI from 'openai'
import { InferenceSupervisor } from '../../node/inference/inference-supervisor.ts'
import { createInferenceMetrics } from '../../node/inference/metrics.ts'
import { openaiRoutes } from '../../node/inference/openai-routes.ts'
import { silentLogger } from '../../node/logger.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { suiteTmpDir } from '../helpers/index.ts'

const TOKEN = 'test-token-123'
const dir = suiteTmpDir('llmesh-openai-')
let modelPath = ''
let app: FastifyInstance
let client: OpenAI
const sup = new InferenceSupervisor({ logger: silentLogger() }, { threads: 1, maxConcurrent: 1, maxQueue: 0 })
const metrics = createInferenceMetrics()

before(async () => {
  modelPath = (await writeTinyGguf(join(dir, 'tiny.gguf'))).path
  metrics.bindSupervisor(sup)
  await sup.start()
  await sup.loadModel(modelPath, { name: 'tiny', version: '1' })
  app = Fastify({ logger: false })
  await app.register(openaiRoutes, { supervisor: sup, metrics, apiToken: TOKEN })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'not-needed-on-loopback', maxRetries: 0 })
})
after(async () => {
  await app?.close()
  await sup.stop()
})

describe('OpenAI-compatible routes with the openai client', { timeout: 60_000 }, () => {
  test('GET /v1/models lists the served model', async () => {
    const models = await client.models.list()
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['tiny'],
    )
  })

  test('completions: not streamed, then streamed with usage — same greedy text', async () => {
    const direct = await sup.generate({ mode: 'completion', prompt: 'Hello there', maxTokens: 8 })
    const r = await client.completions.create({ model: 'tiny', prompt: 'Hello there', max_tokens: 8, temperature: 0 })
    assert.equal(r.object, 'text_completion')
    assert.equal(r.choices[0].text, direct.text)
    assert.equal(r.choices[0].finish_reason, 'length')
    assert.equal(r.usage?.completion_tokens, 8)
    assert.equal(r.usage?.prompt_tokens, direct.tokensIn)

    const stream = await client.completions.create({
      model: 'tiny',
      prompt: 'Hello there',
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    })
    let text = ''
    let chunks = 0
    let finish: string | null = null
    let usage: OpenAI.CompletionUsage | undefined
    for await (const c of stream) {
      chunks++
      if (c.choices[0] !== undefined) {
        text += c.choices[0].text
        finish = c.choices[0].finish_reason ?? finish
      }
      if (c.usage) usage = c.usage
    }
    assert.ok(chunks >= 3, `got ${chunks} chunks`)
    assert.equal(text, direct.text)
    assert.equal(finish, 'length')
    assert.equal(usage?.completion_tokens, 8)
  })

  test('chat completions: not streamed, then streamed — same greedy text', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Say something.' },
    ]
    const r = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 6 })
    assert.equal(r.object, 'chat.completion')
    assert.equal(r.choices[0].message.role, 'assistant')
    assert.ok((r.usage?.completion_tokens ?? 0) >= 1)
    const stream = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 6, stream: true })
    let text = ''
    let role: string | undefined
    let finish: string | null = null
    for await (const c of stream) {
      role ??= c.choices[0]?.delta.role
      text += c.choices[0]?.delta.content ?? ''
      finish = c.choices[0]?.finish_reason ?? finish
    }
    assert.equal(role, 'assistant')
    assert.equal(text, r.choices[0].message.content)
    assert.equal(finish, r.choices[0].finish_reason)
  })

  test('raw SSE framing ends with data: [DONE]', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/completions',
      payload: { prompt: 'x', max_tokens: 3, stream: true },
    })
    assert.equal(res.statusCode, 200)
    assert.match(res.headers['content-type'] as string, /^text\/event-stream/)
    const events = res.body.split('\n\n').filter(Boolean)
    assert.ok(events.every((e) => e.startsWith('data: ')))
    assert.equal(events.at(-1), 'data: [DONE]')
    assert.equal(JSON.parse(events.at(-2)!.slice(6)).choices[0].finish_reason, 'length')
  })

  test('bad requests get OpenAI-shaped 400/404 errors', async () => {
    await assert.rejects(
      client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 0 }),
      (e: InstanceType<typeof OpenAI.BadRequestError>) => {
        assert.ok(e instanceof OpenAI.BadRequestError)
        assert.equal(e.type, 'invalid_request_error')
        assert.equal(e.param, 'max_tokens')
        return true
      },
    )
    await assert.rejects(
      client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 100_000 }),
      OpenAI.BadRequestError,
    )
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
      (e: InstanceType<typeof OpenAI.NotFoundError>) =>
        e instanceof OpenAI.NotFoundError && e.code === 'model_not_found',
    )
    const res = await app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { 'content-type': 'application/json' },
      payload: '{not json',
    })
    assert.equal(res.statusCode, 400)
    assert.equal(res.json().error.type, 'invalid_request_error')
  })

  test('a full queue is a 429 with Retry-After', async () => {
    const busy = sup.generate({ mode: 'completion', prompt: 'busy', maxTokens: 1500 })
    await assert.rejects(
      client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 2 }),
      (e: InstanceType<typeof OpenAI.RateLimitError>) => {
        assert.ok(e instanceof OpenAI.RateLimitError)
        assert.equal(e.code, 'overloaded')
        assert.ok(Number(e.headers?.get('retry-after')) > 0)
        return true
      },
    )
    await busy
  })

  test('bearer token required from non-loopback callers only', async () => {
    const payload = { prompt: 'x', max_tokens: 1 }
    const anon = await app.inject({ method: 'POST', url: '/v1/completions', payload, remoteAddress: '10.1.2.3' })
    assert.equal(anon.statusCode, 401)
    assert.equal(anon.json().error.code, 'invalid_api_key')
    const wrong = await app.inject({
      method: 'GET',
      url: '/v1/models',
      remoteAddress: '10.1.2.3',
      headers: { authorization: 'Bearer nope' },
    })
    assert.equal(wrong.statusCode, 401)
    const ok = await app.inject({
      method: 'POST',
      url: '/v1/completions',
      payload,
      remoteAddress: '10.1.2.3',
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    assert.equal(ok.statusCode, 200)
    const local = await app.inject({ method: 'GET', url: '/v1/models', remoteAddress: '127.0.0.1' })
    assert.equal(local.statusCode, 200)
  })

  test('client abort mid-stream stops the generation', async () => {
    const finished = new Promise<string | undefined>((resolve) => sup.once('request', (r) => resolve(r.errorCode)))
    const ac = new AbortController()
    const stream = await client.completions.create(
      { model: 'tiny', prompt: 'long', max_tokens: 1500, stream: true },
      { signal: ac.signal },
    )
    let n = 0
    // the openai client ends the iteration quietly on abort
    for await (const _ of stream) if (++n === 3) ac.abort()
    assert.equal(await finished, 'ERR_ABORTED')
    // the slot comes back: the next request is served (maxConcurrent 1, no queue)
    for (let i = 0; i < 50 && sup.status().active > 0; i++) await new Promise((r) => setTimeout(r, 20))
    const r = await client.completions.create({ model: 'tiny', prompt: 'Hello there', max_tokens: 2 })
    assert.equal(r.usage?.completion_tokens, 2)
  })

  test('metrics count requests by model, version, stage and errors by kind', async () => {
    const text = await metrics.registry.metrics()
    const ok =
      /llmesh_inference_requests_total\{model="tiny",model_version="1",mode="completion",outcome="ok"\} (\d+)/.exec(
        text,
      )
    assert.ok(ok && Number(ok[1]) >= 4, 'completion requests counted')
    assert.match(text, /llmesh_inference_errors_total\{[^}]*kind="overloaded"\} 1/)
    assert.match(text, /llmesh_inference_errors_total\{[^}]*kind="aborted"\} 1/)
    assert.match(text, /llmesh_inference_errors_total\{[^}]*kind="invalid_request"\} [1-9]/)
    assert.match(text, /llmesh_inference_time_to_first_token_seconds_count\{[^}]*mode="chat"\} [1-9]/)
    assert.match(text, /llmesh_inference_tokens_out_total\{[^}]*\} [1-9]/)
    assert.match(text, /llmesh_inference_model_load_seconds_count\{model="tiny",model_version="1"\} 1/)
    assert.match(text, /llmesh_inference_ready 1/)
    assert.match(text, /llmesh_host_memory_used_percent \d/)
    assert.match(text, /llmesh_inference_concurrency\{model="tiny"/)
  })

  test('no model: 503 with Retry-After; /v1/models is empty', async () => {
    await sup.unloadModel()
    const models = await client.models.list()
    assert.equal(models.data.length, 0)
    await assert.rejects(
      client.completions.create({ prompt: 'x', max_tokens: 2, model: 'tiny' }),
      (e: InstanceType<typeof OpenAI.APIError>) => {
        assert.equal(e.status, 503)
        assert.equal(e.code, 'model_unavailable')
        assert.ok(Number(e.headers?.get('retry-after')) > 0)
        return true
      },
    )
    assert.match(await metrics.registry.metrics(), /llmesh_inference_errors_total\{[^}]*kind="model_unavailable"\} 1/)
  })
})
