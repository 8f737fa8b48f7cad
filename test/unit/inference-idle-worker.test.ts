/**
 * The inference worker lives only while a model is served (issue 17 goal 5: an idle worker holds
 * ~100 MB RSS): real supervisor, real worker processes, tiny generated models. Checked both through
 * the supervisor's status and in /proc (no `node/inference/worker.ts` child of this process).
 */

import assert from 'node:assert/strict'
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ModelDeactivatedError, ModelLoadError, ModelUnavailableError } from '../../node/inference/errors.ts'
import { InferenceSupervisor } from '../../node/inference/inference-supervisor.ts'
import { silentLogger } from '../../node/logger.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { scaled, suiteTmpDir, waitFor } from '../helpers/index.ts'
import { alive, workerPids } from '../helpers/processes.ts'

const dir = suiteTmpDir('llmesh-idle-worker-')
const paths: Record<string, string> = {}

before(async () => {
  paths.v1 = (await writeTinyGguf(join(dir, 'v1.gguf'))).path
  paths.v2 = (await writeTinyGguf(join(dir, 'v2.gguf'), { perturbLayer: 1 })).path
  paths.broken = (await writeTinyGguf(join(dir, 'broken.gguf'), { breakTensor: true })).path
})

/** The worker now: the supervisor's view and the kernel's must agree. */
async function worker(sup: InferenceSupervisor): Promise<number | undefined> {
  const pid = sup.status().workerPid
  assert.deepEqual(await workerPids(), pid === undefined ? [] : [pid])
  return pid
}

async function gone(pid: number): Promise<void> {
  await waitFor(async () => !(await alive(pid)), { what: `worker ${pid} gone` })
}

describe('inference worker lifecycle', { timeout: scaled(120_000) }, () => {
  const sup = new InferenceSupervisor({ logger: silentLogger() }, { threads: 1, restartBackoffMs: 50 })
  after(() => sup.stop())

  test('started with no model: idle, and no worker process', async () => {
    await sup.start()
    assert.equal(sup.state, 'idle')
    assert.equal(await worker(sup), undefined)
    await assert.rejects(sup.generate({ mode: 'completion', prompt: 'x', maxTokens: 1 }), ModelUnavailableError)
    assert.equal(await worker(sup), undefined, 'a request does not spawn one')
  })

  test('a load spawns the worker; a switch keeps it; an unload stops it', async () => {
    await sup.loadModel(paths.v1, { name: 'tiny', version: '1' })
    const pid = await worker(sup)
    assert.ok(pid !== undefined && (await alive(pid)))
    await sup.switchModel(paths.v2, { name: 'tiny', version: '2' })
    assert.equal(await worker(sup), pid, 'the same worker serves the next version')
    await sup.unloadModel()
    assert.equal(sup.state, 'idle')
    await gone(pid)
    assert.equal(await worker(sup), undefined)
  })

  test('a first load llama.cpp refuses: failed, and no worker kept', async () => {
    await assert.rejects(sup.loadModel(paths.broken, { name: 'tiny', version: '3' }), ModelLoadError)
    assert.equal(sup.state, 'failed')
    assert.equal(await worker(sup), undefined)
    const m = await sup.loadModel(paths.v1, { name: 'tiny', version: '1' })
    assert.equal(m.version, '1')
    assert.ok((await worker(sup)) !== undefined)
  })

  test('a restart whose reload fails: failed, and no worker kept', async () => {
    // the served file turns bad on disk, then its worker dies: the reload is refused
    const served = join(dir, 'served.gguf')
    await copyFile(paths.v1, served)
    await sup.switchModel(served, { name: 'tiny', version: '4' })
    const pid = (await worker(sup))!
    await copyFile(paths.broken, served)
    process.kill(pid, 'SIGKILL')
    await waitFor(() => sup.state === 'failed', { timeoutMs: 30_000, what: 'failed after the reload' })
    await gone(pid)
    await waitFor(async () => (await workerPids()).length === 0, { what: 'the reload worker stopped' })
    assert.equal(await worker(sup), undefined)
  })

  test('deactivate stops the worker; the next load spawns a new one', async () => {
    await sup.loadModel(paths.v1, { name: 'tiny', version: '1' })
    const pid = (await worker(sup))!
    await sup.deactivate({ name: 'tiny', version: '1', reason: 'release aborted' })
    await gone(pid)
    assert.equal(await worker(sup), undefined)
    await assert.rejects(sup.generate({ mode: 'completion', prompt: 'x', maxTokens: 1 }), ModelDeactivatedError)
    await sup.loadModel(paths.v2, { name: 'tiny', version: '2' })
    const next = await worker(sup)
    assert.ok(next !== undefined && next !== pid)
    const r = await sup.generate({ mode: 'completion', prompt: 'Hello', maxTokens: 2 })
    assert.equal(r.tokensOut, 2)
  })

  test('stop: no worker left', async () => {
    const pid = (await worker(sup))!
    await sup.stop()
    await gone(pid)
    assert.deepEqual(await workerPids(), [])
  })
})

describe('spawnOnStart: true', { timeout: scaled(60_000) }, () => {
  test('the worker comes up with start(), and an unload still stops it', async () => {
    const sup = new InferenceSupervisor({ logger: silentLogger() }, { threads: 1, spawnOnStart: true })
    try {
      await sup.start()
      const pid = await worker(sup)
      assert.ok(pid !== undefined)
      await sup.unloadModel()
      await gone(pid)
      assert.equal(await worker(sup), undefined)
    } finally {
      await sup.stop()
    }
  })
})
