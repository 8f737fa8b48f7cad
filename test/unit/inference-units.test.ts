import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { defaultContextSize, defaultThreads } from '../../node/inference/defaults.ts'
import { type QueueRefusedError, RequestQueue } from '../../node/inference/request-queue.ts'
import { classifyExit } from '../../node/inference/worker-process.ts'

describe('defaultThreads', () => {
  test('one thread for tiny models, all cores but one for big ones', () => {
    assert.equal(defaultThreads({ cores: 8, modelBytes: 1_000_000 }), 1)
    assert.equal(defaultThreads({ cores: 8, modelBytes: 4e9 }), 7)
    assert.equal(defaultThreads({ cores: 2, modelBytes: 4e9 }), 2)
    assert.equal(defaultThreads({ cores: 1, modelBytes: 4e9 }), 1)
  })
})

describe('defaultContextSize', () => {
  const base = { nLayer: 32, nEmbd: 4096, nHead: 32, nHeadKv: 8, modelBytes: 4e9, sequences: 3 }
  test('trained length when RAM is plentiful, capped at 8192', () => {
    assert.equal(defaultContextSize({ ...base, trainContextLength: 4096, freeBytes: 64e9 }), 4096)
    assert.equal(defaultContextSize({ ...base, trainContextLength: 131072, freeBytes: 64e9 }), 8192)
  })
  test('shrinks with free RAM, in steps of 256, never below 256', () => {
    // KV per token: 2 * 32 layers * 1024 (GQA) * 2 bytes = 128 KiB; 1 GB budget / 3 sequences
    const c = defaultContextSize({ ...base, trainContextLength: 131072, freeBytes: 4e9 + 2e9 })
    assert.equal(c % 256, 0)
    assert.ok(c < 8192 && c >= 2048, `got ${c}`)
    assert.equal(defaultContextSize({ ...base, trainContextLength: 131072, freeBytes: 1e9 }), 256)
  })
  test('a short trained context is kept as is', () => {
    assert.equal(defaultContextSize({ ...base, trainContextLength: 128, freeBytes: 64e9 }), 128)
  })
})

describe('classifyExit', () => {
  const e = { code: null, signal: null, killReason: undefined, stderrTail: '' }
  test('tells apart stop, timeout, oom and crash', () => {
    assert.equal(classifyExit({ ...e, signal: 'SIGKILL', killReason: 'stop' }), 'stopped')
    assert.equal(classifyExit({ ...e, signal: 'SIGKILL', killReason: 'timeout' }), 'timeout')
    // only the kernel OOM killer's SIGKILL (as the OomDetector tells) is an OOM; anyone else's is a crash
    assert.equal(classifyExit({ ...e, signal: 'SIGKILL' }), 'crash')
    assert.equal(classifyExit({ ...e, signal: 'SIGKILL', oomKilled: false }), 'crash')
    assert.equal(classifyExit({ ...e, signal: 'SIGKILL', oomKilled: true }), 'oom')
    assert.equal(classifyExit({ ...e, signal: 'SIGKILL', killReason: 'stop', oomKilled: true }), 'stopped')
    assert.equal(classifyExit({ ...e, code: 134, stderrTail: 'ggml_aligned_malloc: failed to allocate' }), 'oom')
    assert.equal(classifyExit({ ...e, signal: 'SIGABRT', stderrTail: 'GGML_ASSERT(x) failed' }), 'crash')
    assert.equal(classifyExit({ ...e, code: 0 }), 'crash')
  })
})

describe('RequestQueue', () => {
  test('bounded concurrency, FIFO, full queue refused at once', async () => {
    const q = new RequestQueue({ maxConcurrent: 1, maxQueue: 1 })
    const r1 = await q.acquire(() => 1000)
    const order: number[] = []
    const p2 = q
      .acquire(() => 1000)
      .then((r) => {
        order.push(2)
        return r
      })
    await assert.rejects(
      q.acquire(() => 1000),
      (e: QueueRefusedError) => e.reason === 'full',
    )
    assert.equal(q.active, 1)
    assert.equal(q.waiting, 1)
    r1()
    r1() // idempotent
    const r2 = await p2
    assert.deepEqual(order, [2])
    assert.equal(q.active, 1)
    r2()
    assert.equal(q.active, 0)
  })

  test('paused: no grants; timeout tells it was paused; resume grants', async () => {
    const q = new RequestQueue({ maxConcurrent: 2, maxQueue: 4 })
    q.pause()
    await assert.rejects(
      q.acquire((paused) => (paused ? 5 : 10_000)),
      (e: QueueRefusedError) => {
        return e.reason === 'timeout' && e.paused
      },
    )
    const p = q.acquire(() => 10_000)
    q.resume()
    const release = await p
    assert.equal(q.active, 1)
    const drained = q.drain(1000)
    release()
    assert.equal(await drained, true)
  })

  test('drain times out while a slot is held; abort refuses a waiter', async () => {
    const q = new RequestQueue({ maxConcurrent: 1, maxQueue: 4 })
    const held = await q.acquire(() => 1000)
    assert.equal(await q.drain(10), false)
    const ac = new AbortController()
    const waiting = q.acquire(() => 1000, ac.signal)
    ac.abort()
    await assert.rejects(waiting, (e: QueueRefusedError) => e.reason === 'aborted')
    assert.equal(q.waiting, 0)
    held()
  })
})
