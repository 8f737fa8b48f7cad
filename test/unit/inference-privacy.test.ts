/**
 * Privacy: prompt and completion text never reach logs or metrics. Everything is logged at
 * trace level into a buffer (supervisor, fastify, worker messages, this process's stderr) while
 * requests carrying a unique marker run through every path: completion and chat, streamed and
 * not, a validation error, an unknown model, and a worker crash in the middle of a request.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import Fastify from 'fastify'
import OpenAI from 'openai'
import pino from 'pino'
import { InferenceSupervisor } from '../../node/inference/inference-supervisor.ts'
import { createInferenceMetrics } from '../../node/inference/metrics.ts'
import { openaiRoutes } from '../../node/inference/openai-routes.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { tmpDir } from '../helpers/index.ts'

test('prompt and completion text appear in no log line and no metric', { timeout: 60_000 }, async (t) => {
  const dir = await tmpDir(t, 'llmesh-privacy-')
  const model = (await writeTinyGguf(join(dir, 'tiny.gguf'))).path
  const captured: string[] = []
  const sink = new Writable({
    write(chunk, _enc, cb) {
      captured.push(chunk.toString())
      cb()
    },
  })
  const logger = pino({ level: 'trace' }, sink)
  const origStderr = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString())
    return (origStderr as (...a: unknown[]) => boolean)(chunk, ...rest)
  }) as typeof process.stderr.write

  const sup = new InferenceSupervisor({ logger }, { threads: 1, restartBackoffMs: 20 })
  const metrics = createInferenceMetrics()
  metrics.bindSupervisor(sup)
  const app = Fastify({ loggerInstance: logger })
  const completions: string[] = []
  const marker = `llmesh-privacy-${randomUUID()}`
  try {
    await sup.start()
    await sup.loadModel(model, { name: 'tiny', version: '1' })
    await app.register(openaiRoutes, { supervisor: sup, metrics })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'x', maxRetries: 0 })

    const c = await client.completions.create({ model: 'tiny', prompt: `${marker} completion`, max_tokens: 24 })
    completions.push(c.choices[0].text)
    const s = await client.completions.create({
      model: 'tiny',
      prompt: `${marker} stream`,
      max_tokens: 24,
      stream: true,
    })
    let streamed = ''
    for await (const x of s) streamed += x.choices[0]?.text ?? ''
    completions.push(streamed)
    const messages = [
      { role: 'system' as const, content: `${marker} system` },
      { role: 'user' as const, content: `${marker} user` },
    ]
    const chat = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 24 })
    completions.push(chat.choices[0].message.content ?? '')
    const cs = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 24, stream: true })
    let chatStreamed = ''
    for await (const x of cs) chatStreamed += x.choices[0]?.delta.content ?? ''
    completions.push(chatStreamed)

    await assert.rejects(client.completions.create({ model: 'tiny', prompt: marker, max_tokens: 0 }))
    await assert.rejects(client.completions.create({ model: `${marker}-model`, prompt: marker, max_tokens: 2 }))
    // a worker crash while a marked request runs
    const pid = sup.status().workerPid!
    const running = sup.generate({ mode: 'completion', prompt: `${marker} crash`, maxTokens: 2000 })
    setTimeout(() => process.kill(pid, 'SIGSEGV'), 20)
    await assert.rejects(running)
    await new Promise<void>((resolve) => sup.once('model-loaded', () => resolve()))
  } finally {
    await app.close()
    await sup.stop()
    process.stderr.write = origStderr
  }

  const logs = captured.join('')
  const metricsText = await metrics.registry.metrics()
  // the capture works and saw the whole story
  assert.match(logs, /incoming request/)
  assert.match(logs, /inference worker exited/)
  assert.match(logs, /model ready/)
  assert.match(metricsText, /llmesh_inference_requests_total\{[^}]*outcome="ok"\} [1-9]/)
  assert.ok(!logs.includes(marker), 'prompt marker found in logs')
  assert.ok(!metricsText.includes(marker), 'prompt marker found in metrics')
  for (const text of completions.filter((t) => t.length >= 8)) {
    for (const form of [text, JSON.stringify(text).slice(1, -1)]) {
      assert.ok(!logs.includes(form), 'completion text found in logs')
      assert.ok(!metricsText.includes(form), 'completion text found in metrics')
    }
  }
  assert.ok(completions.filter((t) => t.length >= 8).length >= 2, 'enough completion text to check')
})
