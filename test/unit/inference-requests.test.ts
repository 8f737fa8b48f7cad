/**
 * Request handling on a real worker: bounded queue (OverloadedError), per-request deadline,
 * client abort, and model swaps that drain in-flight requests (or cancel them when too slow)
 * while new requests wait or get ModelUnavailableError.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  InferenceTimeoutError,
  ModelUnavailableError,
  OverloadedError,
  RequestAbortedError,
} from '../../node/inference/errors.ts'
import { InferenceSupervisor } from '../../node/inference/inference-supervisor.ts'
import { silentLogger } from '../../node/logger.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { suiteTmpDir } from '../helpers/index.ts'

const dir = suiteTmpDir('llmesh-inference-req-')
let v1 = ''
let v2 = ''
before(async () => {
  v1 = (await writeTinyGguf(join(dir, 'v1.gguf'))).path
  v2 = (await writeTinyGguf(join(dir, 'v2.gguf'), { perturbLayer: 1 })).path
})

/** Resolves when the supervisor starts draining (the header of the new model was checked). */
function draining(sup: InferenceSupervisor): Promise<void> {
  return new Promise((resolve) => {
    const on = (e: { state: string }): void => {
      if (e.state !== 'draining') return
      sup.off('state', on)
      resolve()
    }
    sup.on('state', on)
  })
}

const long = { mode: 'completion' as const, prompt: 'Once upon a time', maxTokens: 1500 }
const short = { mode: 'completion' as const, prompt: 'Hello', maxTokens: 8 }

describe('requests on one worker', { timeout: 60_000 }, () => {
  const sup = new InferenceSupervisor(
    { logger: silentLogger() },
    { threads: 1, maxConcurrent: 1, maxQueue: 1, requestTimeoutMs: 30_000, maxTokensLimit: 4096 },
  )
  before(async () => {
    await sup.start()
    await sup.loadModel(v1, { name: 'tiny', version: '1' })
  })
  after(() => sup.stop())

  test('beyond the queue bound a request fails at once with OverloadedError', async () => {
    const a = sup.generate(long)
    const b = sup.generate(short)
    await assert.rejects(
      sup.generate(short),
      (e: OverloadedError) => e instanceof OverloadedError && e.retryAfterSeconds > 0,
    )
    assert.equal(sup.status().active, 1)
    assert.equal(sup.status().waiting, 1)
    const [ra, rb] = await Promise.all([a, b])
    assert.equal(ra.tokensOut, 1500)
    assert.equal(rb.tokensOut, 8)
    assert.ok(rb.queuedMs > 0)
  })

  test('a client abort stops the generation and frees the slot', async () => {
    const ac = new AbortController()
    let chunks = 0
    const p = sup.generate(long, {
      signal: ac.signal,
      onText: () => {
        if (++chunks === 3) ac.abort()
      },
    })
    await assert.rejects(p, RequestAbortedError)
    const r = await sup.generate(short)
    assert.equal(r.tokensOut, 8)
    assert.equal(sup.status().active, 0)
  })
})

describe('request deadline', { timeout: 60_000 }, () => {
  test('a slow request times out; the worker acknowledges the cancel and is not killed', async () => {
    const sup = new InferenceSupervisor(
      { logger: silentLogger() },
      { threads: 1, requestTimeoutMs: 300, maxTokensLimit: 100_000 },
    )
    const timeouts: string[] = []
    sup.on('timeout', (e) => timeouts.push(e.what))
    try {
      await sup.start()
      await sup.loadModel(v1)
      const pid = sup.status().workerPid
      await assert.rejects(sup.generate({ ...long, maxTokens: 100_000 }), InferenceTimeoutError)
      assert.deepEqual(timeouts, ['request'])
      const r = await sup.generate({ ...short, maxTokens: 2 })
      assert.equal(r.tokensOut, 2)
      assert.equal(sup.status().workerPid, pid)
      assert.equal(sup.status().restarts, 0)
    } finally {
      await sup.stop()
    }
  })
})

describe('switchModel', { timeout: 60_000 }, () => {
  test('drains in-flight requests, queues new ones, then serves the new model', async () => {
    const sup = new InferenceSupervisor({ logger: silentLogger() }, { threads: 1, unavailableWaitMs: 20_000 })
    try {
      await sup.start()
      await sup.loadModel(v1, { version: '1' })
      const before = await sup.generate(short)
      const states: string[] = []
      sup.on('state', (e) => states.push(e.state))
      const inflight = sup.generate(long)
      await new Promise((r) => setTimeout(r, 20))
      const switching = sup.switchModel(v2, { version: '2' })
      await draining(sup)
      const during = sup.generate(short) // waits for the new model
      const done = await inflight
      assert.equal(done.finishReason, 'length', 'in-flight request finished, not cut')
      assert.equal(done.tokensOut, 1500)
      const m = await switching
      assert.equal(m.version, '2')
      const after = await during
      assert.deepEqual(states.slice(0, 3), ['draining', 'loading', 'ready'])
      assert.notEqual(after.text, before.text, 'served by v2 (one layer perturbed)')
    } finally {
      await sup.stop()
    }
  })

  test('requests arriving during a swap past the wait bound get ModelUnavailableError; slow in-flight ones are cancelled', async () => {
    const sup = new InferenceSupervisor(
      { logger: silentLogger() },
      { threads: 1, unavailableWaitMs: 1, drainTimeoutMs: 30, maxTokensLimit: 100_000 },
    )
    try {
      await sup.start()
      await sup.loadModel(v1)
      const inflight = sup.generate({ ...long, maxTokens: 100_000 })
      await new Promise((r) => setTimeout(r, 20))
      const switching = sup.switchModel(v2)
      await draining(sup)
      await assert.rejects(
        sup.generate(short),
        (e: ModelUnavailableError) => e instanceof ModelUnavailableError && e.retryAfterSeconds > 0,
      )
      await assert.rejects(inflight, ModelUnavailableError)
      await switching
      assert.equal(sup.state, 'ready')
      assert.equal(sup.model?.path, v2)
      assert.equal(sup.status().restarts, 0)
    } finally {
      await sup.stop()
    }
  })
})
