/**
 * One bad item never stops a periodic loop: the fault is caught, counted per loop
 * (`llmesh_loop_errors_total`), logged once per change, and the loop goes on. Faults itself, the
 * health reporter (a report that cannot be built; staged versions that cannot be read), the
 * installer's GC and status (a model directory that cannot be read, blocks that cannot be freed).
 */
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import pino from 'pino'
import { InstallerStoppedError } from '../../node/install/errors.ts'
import { Installer } from '../../node/install/installer.ts'
import { silentLogger } from '../../node/logger.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { Prestager } from '../../node/rollout/prestager.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import { errorCode, Faults, LoopErrors } from '../../node/telemetry/faults.ts'
import { HealthReporter } from '../../node/telemetry/health-reporter.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { deviceKey } from '../fixtures/messages.ts'
import { suiteTmpDir, waitFor } from '../helpers/index.ts'
import { makeRelease } from './install-fixtures.ts'

/** One directory for the file, removed after it; each test takes a fresh one inside. */
const root = suiteTmpDir('llmesh-loops-')
const tempDir = (): Promise<string> => mkdtemp(join(root, 'd-'))

function capture() {
  const lines: Array<{ level: number; msg: string; loop?: string; item?: string }> = []
  return { logger: pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) }), lines }
}

describe('Faults', () => {
  test('counts every failure, logs once per change, and once when it recovers', () => {
    const { logger, lines } = capture()
    const f = new Faults({ logger, now: () => 42 }, { what: 'x failed', fields: { loop: 'x' } })
    for (let i = 0; i < 5; i++) f.fail('a', Object.assign(new Error('disk full'), { code: 'ERR_DISK' }))
    f.fail('b', new Error('boom'))
    assert.equal(f.total, 6)
    assert.deepEqual(
      f.list().map((x) => [x.item, x.code, x.count]),
      [
        ['a', 'ERR_DISK', 5],
        ['b', 'ERR_INTERNAL', 1],
      ],
    )
    assert.equal(lines.filter((l) => l.level === 50).length, 2)
    f.fail('a', Object.assign(new Error('disk gone'), { code: 'ERR_DISK' })) // another message: a change
    assert.equal(lines.filter((l) => l.level === 50).length, 3)
    f.ok('a')
    f.ok('a')
    assert.equal(lines.filter((l) => l.msg === 'x failed: recovered').length, 1)
    assert.deepEqual(
      f.list().map((x) => x.item),
      ['b'],
    )
    assert.deepEqual(
      f.totals().sort((x, y) => x.item.localeCompare(y.item)),
      [
        { item: 'a', code: 'ERR_DISK', count: 6 },
        { item: 'b', code: 'ERR_INTERNAL', count: 1 },
      ],
    )
    // codes are bounded label values
    assert.equal(errorCode({ code: 'ENOENT' }), 'ERR_INTERNAL')
    assert.equal(errorCode({ code: 'ERR_X"} 1\nfake' }), 'ERR_INTERNAL')
    assert.equal(errorCode(null), 'ERR_INTERNAL')
    assert.equal(errorCode({ code: 'ERR_RELEASE_CONFLICT' }), 'ERR_RELEASE_CONFLICT')
  })

  test('LoopErrors: totals per loop, including another set', () => {
    const mine = new LoopErrors()
    const theirs = new LoopErrors()
    mine.loop('gc', silentLogger()).fail('m@1.0.0', new Error('x'))
    mine.loop('rollout', silentLogger())
    theirs.loop('anti-entropy', silentLogger()).fail('ingest', new Error('y'))
    mine.include(theirs)
    assert.deepEqual(mine.totals(), { 'anti-entropy': 1, gc: 1, rollout: 0 })
    assert.deepEqual(
      mine.status().failing.map((f) => [f.loop, f.item]),
      [
        ['anti-entropy', 'ingest'],
        ['gc', 'm@1.0.0'],
      ],
    )
  })
})

describe('health reporter', () => {
  test('a report that cannot be built is a loop error; the timer goes on and the next one is sent', async () => {
    const me = await deviceKey()
    const published: Uint8Array[] = []
    let failActive = true
    let failStaged = true
    const loops = new LoopErrors()
    const reporter = new HealthReporter(
      {
        identity: { peerId: me.peerId, privateKey: me.key },
        store: new MessageStore({ logger: silentLogger() }, {}),
        publish: async (b) => published.push(b),
        logger: silentLogger(),
        loops,
        active: async () => {
          if (failActive) throw new Error('installer unreadable')
          return []
        },
        staged: async () => {
          if (failStaged) throw new Error('models dir unreadable')
          return [{ model: 'tiny', version: '1.0.0+gguf-q4_0' }]
        },
      },
      { fleet: 'test-fleet', dataDir: await tempDir(), intervalMs: 30, tags: [], runtimeVersion: '3.0.0' },
    )
    await reporter.start()
    try {
      assert.equal(await reporter.flush(), undefined) // resolves, never rejects
      // the timer keeps trying (no unhandled rejection ends the process)
      const deadline = Date.now() + 10_000
      while ((loops.totals()['health-report'] ?? 0) < 3 && Date.now() < deadline) await delay(20)
      assert.ok(loops.totals()['health-report'] >= 3)
      assert.equal(published.length, 0)
      failActive = false
      const r = await reporter.flush()
      assert.ok(r !== undefined)
      assert.equal(r.staged, undefined) // staged unreadable: left out, the report still goes
      assert.ok(published.length >= 1)
      assert.deepEqual(
        loops.failing().map((f) => f.item),
        ['staged'],
      )
      failStaged = false
      assert.deepEqual((await reporter.flush())?.staged, [{ model: 'tiny', version: '1.0.0+gguf-q4_0' }])
      assert.deepEqual(loops.failing(), [])
    } finally {
      await reporter.stop()
    }
  })
})

describe('installer loops', () => {
  test('an unreadable model directory hides no other model; blocks that cannot be freed stop no GC', async () => {
    const dir = await tempDir()
    const store = new ModelStore({ dataDir: dir })
    await store.start()
    const loops = new LoopErrors()
    const installer = new Installer({ store, logger: silentLogger(), loops }, { dataDir: dir, keepVersions: 1 })
    await installer.start()
    const f1 = join(dir, 'v1.gguf')
    const f2 = join(dir, 'v2.gguf')
    await writeTinyGguf(f1, { layers: 2, embd: 64, seed: 5 })
    await writeTinyGguf(f2, { layers: 2, embd: 64, seed: 5, perturbLayer: 1 })
    await installer.prestage(await makeRelease(store, 'tiny', '1.0.0+gguf-q4_0', f1))
    // a stray file where a model directory would be
    await writeFile(join(dir, 'models', 'junk'), 'not a directory')
    const st = await installer.status()
    assert.deepEqual(st.tiny.staged, ['1.0.0+gguf-q4_0'])
    assert.equal(st.junk, undefined)
    assert.deepEqual(
      loops.failing().map((f) => [f.loop, f.item]),
      [['gc', 'junk status']],
    )
    // the block store fails under GC: the version is still removed and GC returns
    await installer.prestage(await makeRelease(store, 'tiny', '2.0.0+gguf-q4_K_M', f2))
    await installer.stop()
    const keepTwo = new Installer({ store, logger: silentLogger(), loops }, { dataDir: dir, keepVersions: 2 })
    await keepTwo.start()
    await keepTwo.prestage(await makeRelease(store, 'tiny', '3.0.0+gguf-Q8_0', f1))
    assert.equal((await keepTwo.status()).tiny.staged.length, 2)
    const realFeed = store.feed.bind(store)
    store.feed = async () => {
      throw new Error('corestore closed')
    }
    try {
      const gc = new Installer({ store, logger: silentLogger(), loops }, { dataDir: dir, keepVersions: 1 })
      assert.deepEqual(await gc.gc('tiny'), ['2.0.0+gguf-q4_K_M'])
      assert.deepEqual((await gc.status()).tiny.staged, ['3.0.0+gguf-Q8_0'])
      assert.ok(loops.failing().some((f) => f.loop === 'gc' && f.item === 'tiny blocks'))
    } finally {
      store.feed = realFeed
      await keepTwo.stop()
      await store.stop()
    }
  })
})

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

describe('prestager', () => {
  const manifest = (model: string, version: string) =>
    ({ model, version, seq: 1, policy: { prestage: true } }) as unknown as ReleaseManifest

  test('a release this device declines (arch, RAM, disk, runtime) or a shutdown is no loop fault; a real failure is', async () => {
    const { logger, lines } = capture()
    const faults = new Faults({ logger }, { what: 'prestage loop: one item failed', fields: { loop: 'prestage' } })
    const refusal = (code: string) => Object.assign(new Error(`declined with ${code}`), { code })
    const outcomes: Record<string, Error> = {
      'foreign@1.0.0': refusal('ERR_INCOMPATIBLE_ARCH'),
      'huge@1.0.0': refusal('ERR_INSUFFICIENT_DISK'),
      'broken@1.0.0': refusal('ERR_GGUF_TRUNCATED'),
      'stopping@1.0.0': new InstallerStoppedError(), // a download cut by shutdown
    }
    let calls = 0
    const installer = {
      prestage: async (m: ReleaseManifest) => {
        calls++
        throw outcomes[`${m.model}@${m.version}`]
      },
    } as unknown as Installer
    const p = new Prestager(installer, logger, faults)
    const all = ['foreign', 'huge', 'broken', 'stopping'].map((m) => manifest(m, '1.0.0'))
    p.prestageNewest(all, () => new Set())
    await waitFor(() => calls === 4 && lines.some((l) => l.level === 50), { what: 'the four fetches' })
    await new Promise((r) => setImmediate(r))
    assert.deepEqual(
      faults.list().map((f) => [f.item, f.code]),
      [['broken@1.0.0', 'ERR_GGUF_TRUNCATED']],
    )
    assert.equal(lines.filter((l) => l.level === 50).length, 1)
    const warned = lines.filter((l) => l.level === 40 && l.msg.startsWith('release declined'))
    assert.equal(warned.length, 2)
    assert.equal(lines.filter((l) => l.msg.includes('installer stopped')).length, 0)
  })
})
