/**
 * Real node-llama-cpp in a real child process, with tiny generated models. Covers loading,
 * generation, probes, crash/OOM/hang detection and restarts, and refusal of corrupt files.
 */

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { WORKER_OOM_SCORE_ADJ } from '../../node/inference/constants.ts'
import {
  GenerationError,
  ModelLoadError,
  ModelUnavailableError,
  WorkerCrashedError,
} from '../../node/inference/errors.ts'
import { InferenceSupervisor } from '../../node/inference/inference-supervisor.ts'
import type { SupervisorEvents } from '../../node/inference/types.ts'
import { setOomScoreAdj, WorkerProcess } from '../../node/inference/worker-process.ts'
import { silentLogger } from '../../node/logger.ts'
import { makeTinyGgufBuffer, writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { scaled, suiteTmpDir } from '../helpers/index.ts'

const dir = suiteTmpDir('llmesh-inference-')
const paths: Record<string, string> = {}

before(async () => {
  paths.v1 = (await writeTinyGguf(join(dir, 'v1.gguf'))).path
  paths.broken = (await writeTinyGguf(join(dir, 'broken.gguf'), { breakTensor: true })).path
  paths.noHeads = (await writeTinyGguf(join(dir, 'noheads.gguf'), { omitKey: 'llama.attention.head_count' })).path
  const full = makeTinyGgufBuffer()
  paths.truncated = join(dir, 'truncated.gguf')
  await writeFile(paths.truncated, full.subarray(0, Math.floor(full.length * 0.6)))
})

/** Records every supervisor event by name. */
function recorder(sup: InferenceSupervisor): Record<string, unknown[]> {
  const seen: Record<string, unknown[]> = {}
  const names: Array<keyof SupervisorEvents> = ['crash', 'oom', 'timeout', 'restart', 'load-failure', 'probe-failure']
  for (const n of names) {
    seen[n] = []
    sup.on(n, (e: unknown) => seen[n].push(e))
  }
  return seen
}

function once<K extends keyof SupervisorEvents>(sup: InferenceSupervisor, name: K): Promise<SupervisorEvents[K][0]> {
  return new Promise((resolve) => sup.once(name, ((e: SupervisorEvents[K][0]) => resolve(e)) as never))
}

async function waitState(sup: InferenceSupervisor, state: string, ms = 20_000): Promise<void> {
  const t = Date.now()
  while (sup.state !== state) {
    if (Date.now() - t > ms) throw new Error(`state ${sup.state}, wanted ${state}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('InferenceSupervisor with a real tiny model', { timeout: scaled(120_000) }, () => {
  const sup = new InferenceSupervisor(
    { logger: silentLogger() },
    { threads: 1, restartBackoffMs: 50, healthIntervalMs: 300, healthTimeoutMs: 1500 },
  )
  const seen = recorder(sup)
  after(() => sup.stop())

  test('start is idempotent; without a model requests fail with ModelUnavailableError', async () => {
    await Promise.all([sup.start(), sup.start()])
    assert.equal(sup.state, 'idle')
    assert.equal(sup.status().workerPid, undefined, 'no worker until a model is wanted')
    await assert.rejects(
      sup.generate({ mode: 'completion', prompt: 'x', maxTokens: 2 }),
      (e: ModelUnavailableError) => e instanceof ModelUnavailableError && e.retryAfterSeconds > 0,
    )
  })

  test('loads, generates (streamed chunks = text), chats, probes deterministically', async () => {
    const m = await sup.loadModel(paths.v1, { name: 'tiny', version: '1.0.0' })
    assert.equal(sup.state, 'ready')
    assert.equal(m.name, 'tiny')
    assert.equal(m.threads, 1)
    assert.equal(m.contextSize, 256)
    const chunks: string[] = []
    const r = await sup.generate(
      { mode: 'completion', prompt: 'Hello', maxTokens: 6 },
      { onText: (t) => chunks.push(t) },
    )
    assert.equal(r.tokensOut, 6)
    assert.equal(r.finishReason, 'length')
    assert.ok(r.tokensIn >= 2)
    assert.equal(chunks.join(''), r.text)
    assert.ok(r.ttftMs !== undefined && r.ttftMs <= r.durationMs)
    const again = await sup.generate({ mode: 'completion', prompt: 'Hello', maxTokens: 6 })
    assert.equal(again.text, r.text, 'greedy decoding is deterministic')
    const chat = await sup.generate({
      mode: 'chat',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi' },
      ],
      maxTokens: 4,
    })
    assert.ok(chat.tokensOut >= 1 && chat.tokensIn > r.tokensIn)
    const p1 = await sup.probe()
    const p2 = await sup.probe()
    assert.equal(p1.outputSha256, p2.outputSha256)
    assert.ok(p1.tokensOut >= 1)
  })

  test("the worker's oom_score_adj is raised (the OOM killer's first choice), the daemon's is kept", async () => {
    const pid = sup.status().workerPid!
    const own = readFileSync('/proc/self/oom_score_adj', 'utf8').trim()
    assert.notEqual(own, String(WORKER_OOM_SCORE_ADJ), 'this process starts below the worker')
    assert.equal(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim(), String(WORKER_OOM_SCORE_ADJ))
    assert.equal(readFileSync('/proc/self/oom_score_adj', 'utf8').trim(), own, "the daemon's own is unchanged")
    assert.throws(() => setOomScoreAdj(pid, 1001), RangeError)
    assert.throws(
      () => new WorkerProcess({ logger: silentLogger() }, { startTimeoutMs: 1, oomScoreAdj: 0.5 }),
      RangeError,
    )
  })

  test('a worker killed by a signal is a crash: in-flight request fails, worker restarts, model comes back', async () => {
    const pid = sup.status().workerPid!
    const running = sup.generate({ mode: 'completion', prompt: 'long', maxTokens: 2000 })
    await new Promise((r) => setTimeout(r, 30))
    const restarted = once(sup, 'restart')
    process.kill(pid, 'SIGSEGV')
    await assert.rejects(running, (e) => e instanceof WorkerCrashedError || e instanceof GenerationError)
    const ev = await restarted
    assert.equal(ev.reason, 'crash')
    assert.equal(seen.crash.length, 1)
    assert.equal(seen.oom.length, 0)
    await waitState(sup, 'ready')
    assert.notEqual(sup.status().workerPid, pid)
    const adj = readFileSync(`/proc/${sup.status().workerPid}/oom_score_adj`, 'utf8').trim()
    assert.equal(adj, String(WORKER_OOM_SCORE_ADJ), 'a restarted worker gets it too')
    assert.equal(sup.status().restarts, 1)
    const r = await sup.generate({ mode: 'completion', prompt: 'Hello', maxTokens: 3 })
    assert.equal(r.tokensOut, 3)
  })

  test('a SIGKILL from outside (kill -9) is a crash, not an OOM: restarted and serving again', async () => {
    const pid = sup.status().workerPid!
    const exited = once(sup, 'worker-exit')
    const restarted = once(sup, 'restart')
    const t0 = Date.now()
    process.kill(pid, 'SIGKILL')
    const exit = await exited
    assert.equal(exit.kind, 'crash')
    assert.equal(exit.signal, 'SIGKILL')
    assert.equal((await restarted).reason, 'crash')
    await waitState(sup, 'ready')
    const r = await sup.generate({ mode: 'completion', prompt: 'Hello', maxTokens: 2 })
    assert.equal(r.tokensOut, 2)
    assert.ok(Date.now() - t0 < 15_000, `serving again after ${Date.now() - t0} ms`)
    assert.notEqual(sup.status().workerPid, pid)
    assert.equal(sup.status().restarts, 2)
    assert.equal(seen.crash.length, 2)
    assert.equal(seen.oom.length, 0)
  })

  test('a hung worker (SIGSTOP) misses health checks, is killed as timeout and restarted', async () => {
    const pid = sup.status().workerPid!
    const restarted = once(sup, 'restart')
    process.kill(pid, 'SIGSTOP')
    const ev = await restarted
    assert.equal(ev.reason, 'timeout')
    assert.ok(seen.timeout.some((t) => (t as { what: string }).what === 'health'))
    await waitState(sup, 'ready')
    assert.equal(sup.status().restarts, 3)
  })

  test('truncated file and missing head_count: refused before the worker sees them', async () => {
    const pid = sup.status().workerPid
    const before = seen['load-failure'].length
    await assert.rejects(sup.switchModel(paths.truncated), (e: ModelLoadError) => {
      return e instanceof ModelLoadError && e.reason === 'invalid-file' && e.detailCode === 'ERR_GGUF_TRUNCATED'
    })
    await assert.rejects(sup.switchModel(paths.noHeads), (e: ModelLoadError) => {
      return e.reason === 'invalid-file' && e.detailCode === 'ERR_GGUF_MISSING_KEY'
    })
    assert.equal(seen['load-failure'].length, before + 2)
    // the serving model was never disturbed
    assert.equal(sup.state, 'ready')
    assert.equal(sup.status().workerPid, pid)
    assert.equal(sup.model?.path, paths.v1)
  })

  test('a file llama.cpp refuses is a load failure; the previous model is restored', async () => {
    const before = seen['load-failure'].length
    await assert.rejects(sup.switchModel(paths.broken), (e: ModelLoadError) => e.reason === 'refused')
    assert.equal(seen['load-failure'].length, before + 1)
    assert.equal(sup.state, 'ready')
    assert.equal(sup.model?.path, paths.v1)
    const r = await sup.generate({ mode: 'completion', prompt: 'Hi', maxTokens: 2 })
    assert.equal(r.tokensOut, 2)
  })

  test('stop is idempotent and fails later requests', async () => {
    await Promise.all([sup.stop(), sup.stop()])
    assert.equal(sup.state, 'stopped')
    await assert.rejects(sup.generate({ mode: 'completion', prompt: 'x', maxTokens: 1 }), ModelUnavailableError)
  })
})

describe('without a previous model', { timeout: scaled(60_000) }, () => {
  test('spawnOnStart false: no worker until the first load; a failed first load leaves it failed, not crashed', async () => {
    const sup = new InferenceSupervisor({ logger: silentLogger() }, { threads: 1, spawnOnStart: false })
    const failures: unknown[] = []
    sup.on('load-failure', (e) => failures.push(e))
    try {
      await sup.start()
      assert.equal(sup.state, 'idle')
      assert.equal(sup.status().workerPid, undefined)
      await assert.rejects(sup.loadModel(paths.broken), ModelLoadError)
      assert.equal(sup.state, 'failed')
      assert.equal(sup.status().workerPid, undefined, 'no worker kept for a model that failed')
      assert.equal(failures.length, 1)
      await assert.rejects(sup.generate({ mode: 'completion', prompt: 'x', maxTokens: 1 }), ModelUnavailableError)
      await sup.loadModel(paths.v1)
      assert.equal(sup.state, 'ready')
    } finally {
      await sup.stop()
    }
  })
})

describe('WorkerProcess', { timeout: scaled(60_000) }, () => {
  test('llama.cpp aborting on an unchecked file kills only the child', async () => {
    const w = new WorkerProcess({ logger: silentLogger() }, { startTimeoutMs: 30_000 })
    await w.start()
    w.send({ type: 'load', id: 1, spec: { modelPath: paths.noHeads, contextSize: 256, threads: 1, sequences: 1 } })
    const exit = await w.exitedPromise()
    assert.equal(exit?.kind, 'crash')
    assert.equal(exit?.signal, 'SIGABRT')
    assert.match(exit?.stderrTail ?? '', /GGML_ASSERT/)
    assert.equal(w.alive, false)
  })
})
