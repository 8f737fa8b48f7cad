/**
 * Deactivation by the rollout controller (real pure logic, in-memory installer/supervisor/reporter):
 * a model's first release aborted by the operator, or failing to load with nothing to go back to,
 * leaves the device with no active version and nothing served (supervisor stopped first, then
 * the `active` link), the reason in /status, health reports claiming nothing; it is never
 * reactivated by itself, the state survives a restart, and a later good release activates.
 */
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { StatusRegistry } from '../../node/api/status.ts'
import { silentLogger } from '../../node/logger.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import type { AnyMessage } from '../../node/mesh/types.ts'
import { RolloutController } from '../../node/rollout/rollout-controller.ts'
import { canonicalBytes, sha256Hex } from '../../protocols/encoding.ts'
import type { ReleaseManifest, RolloutPolicy } from '../../protocols/schemas/index.ts'
import { deviceKey, exampleCommand, exampleEnrollment, exampleRelease } from '../fixtures/messages.ts'

const ONE_STAGE: RolloutPolicy = {
  stages: [{ name: 'full', percent: 100, min_devices: 0, tags: [], window_ms: 0 }],
  gates: { min_reports: 0 },
  exclude_tags: [],
  inconclusive: 'hold',
  prestage: true,
}

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

function add(store: MessageStore, message: AnyMessage): void {
  const bytes = canonicalBytes(message)
  store.add({ digest: sha256Hex(bytes), type: message.type, message, signer: 'test' }, bytes)
}

/** An in-memory installer with the real one's version links; `log` is shared with the supervisor. */
class FakeInstaller {
  active: string | null = null
  previous: string | null = null
  staged = new Set<string>()
  readonly log: string[]
  constructor(log: string[]) {
    this.log = log
  }
  layout = { file: (_m: string, v: string) => `/models/${v}.gguf` }
  async status() {
    return {
      tiny: { active: this.active, previous: this.previous, staged: [...this.staged], downloading: null, refused: [] },
    }
  }
  async installedManifest(_m: string, v: string) {
    return this.staged.has(v) ? ({} as ReleaseManifest) : null
  }
  async prestage(m: ReleaseManifest) {
    this.staged.add(m.version)
    return ''
  }
  async activate(_m: string, v: string) {
    this.log.push(`activate ${v}`)
    if (this.active !== v) {
      this.previous = this.active
      this.active = v
    }
  }
  async rollback() {
    if (this.previous === null) throw Object.assign(new Error('no previous'), { code: 'ERR_NO_PREVIOUS' })
    this.log.push(`rollback ${this.previous}`)
    this.active = this.previous
    this.previous = null
    return this.active
  }
  async deactivate() {
    this.log.push(`unlink ${this.active}`)
    const was = this.active
    this.active = null
    this.previous = null
    return was
  }
  async markHealthy() {
    this.previous = null
  }
}

/** A supervisor that fails to load the versions in `broken`; with no previous model it ends failed. */
class FakeSupervisor extends EventEmitter {
  model: { name: string; version: string | undefined } | undefined
  state: 'idle' | 'ready' | 'failed' = 'idle'
  deactivation: { name: string; version?: string; reason: string; at: number } | undefined
  broken = new Set<string>()
  readonly log: string[]
  constructor(log: string[]) {
    super()
    this.log = log
  }
  async switchModel(_path: string, meta: { name?: string; version?: string }) {
    this.log.push(`load ${meta.version}`)
    if (this.broken.has(meta.version ?? '')) {
      if (this.model === undefined) this.state = 'failed'
      throw Object.assign(new Error('llama.cpp refused the model'), { code: 'ERR_MODEL_LOAD' })
    }
    this.model = { name: meta.name ?? 'tiny', version: meta.version }
    this.state = 'ready'
    this.deactivation = undefined
    return this.model
  }
  async deactivate(note: { name: string; version?: string; reason: string }) {
    this.log.push(`stop worker ${note.version}`)
    this.model = undefined
    this.state = 'idle'
    this.deactivation = { ...note, at: Date.now() }
  }
}

class FakeReporter {
  events: string[] = []
  record(ref: { version: string }, kind: string) {
    this.events.push(`${ref.version} ${kind}`)
  }
  async flush() {}
  async cut() {}
}

async function setup(dataDir?: string) {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'llmesh-deact-')))
  if (!dataDir) dirs.push(dir)
  const me = await deviceKey()
  const store = new MessageStore({}, { logger: silentLogger() })
  const log: string[] = []
  const installer = new FakeInstaller(log)
  const supervisor = new FakeSupervisor(log)
  const reporter = new FakeReporter()
  const status = new StatusRegistry()
  status.setModels(() => installer.status())
  const ctx = {
    config: { role: 'node', fleet: 'test-fleet', dataDir: dir, tags: [], reportIntervalMs: 1000 } as never,
    identity: { peerId: me.peerId, privateKey: me.key, created: false },
    logger: silentLogger(),
    store,
    mesh: { state: 'stopped', peers: () => [] } as never,
    publish: async () => ({ status: 'accepted' }) as never,
    status,
  }
  const controller = new RolloutController(
    { startupCatchUpMs: 0, decideIntervalMs: 60_000 },
    { ctx, installer: installer as never, supervisor: supervisor as never, reporter },
  )
  add(store, exampleEnrollment({ device: me.peerId, issued_at: Date.now() - 1000, expires_at: undefined }))
  return { dir, store, log, installer, supervisor, reporter, controller, status }
}

const release = (version: string, seq: number) =>
  exampleRelease({
    model: 'tiny',
    version,
    seq,
    policy: ONE_STAGE,
    created_at: Date.now() - 500,
    expires_at: Date.now() + 86_400_000,
  })
const abort = (version: string, id: string) =>
  exampleCommand({ model: 'tiny', version, action: 'abort', issued_at: Date.now(), id: id.repeat(16) })

async function ticks(c: RolloutController, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await c.tick()
}

describe('deactivation when there is nothing to go back to', () => {
  test('a first release aborted by the operator: worker stopped, then active removed; v2 later activates', async () => {
    const s = await setup()
    await s.controller.start()
    add(s.store, release('1.0.0', 1))
    await ticks(s.controller, 2)
    assert.equal(s.installer.active, '1.0.0')
    assert.deepEqual(await s.controller.activeVersions(), [{ model: 'tiny', version: '1.0.0' }])

    add(s.store, abort('1.0.0', 'a'))
    await ticks(s.controller, 1)
    assert.equal(s.installer.active, null)
    const served = (): unknown => s.supervisor.model
    assert.equal(served(), undefined)
    assert.equal(s.supervisor.deactivation?.reason, 'release aborted')
    // the worker let go of the file before the link went away
    assert.deepEqual(s.log.slice(-2), ['stop worker 1.0.0', 'unlink 1.0.0'])
    assert.deepEqual(await s.controller.activeVersions(), [])
    assert.ok(s.reporter.events.includes('1.0.0 rollbacks'))
    assert.equal(s.controller.counters.deactivations, 1)
    const models = await s.status.models()
    assert.equal(models.tiny.active, null)
    assert.equal(models.tiny.deactivated?.version, '1.0.0')
    assert.equal(models.tiny.deactivated?.reason, 'release aborted')
    assert.equal(s.controller.statusJson().deactivated.tiny?.reason, 'release aborted')

    // never reactivated by itself
    const before = s.log.length
    await ticks(s.controller, 3)
    assert.deepEqual(s.log.slice(before), [])
    assert.equal(s.installer.active, null)

    // a later good release activates normally and clears the note
    add(s.store, release('2.0.0', 2))
    await ticks(s.controller, 2)
    assert.equal(s.installer.active, '2.0.0')
    assert.equal(s.supervisor.model?.version, '2.0.0')
    assert.deepEqual(await s.controller.activeVersions(), [{ model: 'tiny', version: '2.0.0' }])
    assert.equal((await s.status.models()).tiny.deactivated, undefined)
    assert.deepEqual(s.controller.statusJson().deactivated, {})
    await s.controller.stop()
  })

  test('a first release that fails to load: local rollback to nothing, never retried', async () => {
    const s = await setup()
    s.supervisor.broken.add('1.0.0')
    await s.controller.start()
    add(s.store, release('1.0.0', 1))
    await ticks(s.controller, 4)
    assert.equal(s.installer.active, null)
    assert.equal(s.supervisor.deactivation?.reason, 'local rollback: load-failure')
    assert.equal(s.log.filter((l) => l === 'load 1.0.0').length, 1)
    assert.deepEqual(s.reporter.events, ['1.0.0 load_failures', '1.0.0 rollbacks'])
    assert.deepEqual(await s.controller.activeVersions(), [])
    assert.equal((await s.status.models()).tiny.deactivated?.reason, 'local rollback: load-failure')
    assert.equal(s.controller.counters.localRollbacks, 1)
    await s.controller.stop()
  })

  test('a bad active version whose previous is bad too is deactivated, not rolled back onto', async () => {
    const s = await setup()
    await s.controller.start()
    add(s.store, release('1.0.0', 1))
    await ticks(s.controller, 2)
    add(s.store, release('2.0.0', 2))
    await ticks(s.controller, 2)
    assert.equal(s.installer.active, '2.0.0')
    s.installer.previous = '1.0.0' // still kept (not yet declared healthy, say)
    add(s.store, abort('1.0.0', 'b'))
    add(s.store, abort('2.0.0', 'c'))
    await ticks(s.controller, 2)
    assert.equal(s.installer.active, null)
    assert.ok(!s.log.includes('rollback 1.0.0'))
    assert.equal(s.supervisor.deactivation?.version, '2.0.0')
    await s.controller.stop()
  })

  test('the deactivation survives a restart: nothing activated, the supervisor told why', async () => {
    const s = await setup()
    await s.controller.start()
    const r1 = release('1.0.0', 1)
    add(s.store, r1)
    await ticks(s.controller, 2)
    add(s.store, abort('1.0.0', 'd'))
    await ticks(s.controller, 1)
    assert.equal(s.installer.active, null)
    await s.controller.stop()

    const again = await setup(s.dir)
    again.installer.staged = new Set(['1.0.0'])
    await again.controller.start()
    add(again.store, r1) // the abort command itself was lost
    await ticks(again.controller, 3)
    assert.equal(again.installer.active, null)
    assert.ok(!again.log.includes('activate 1.0.0'))
    assert.equal(again.supervisor.deactivation?.reason, 'release aborted')
    assert.equal((await again.status.models()).tiny.deactivated?.reason, 'release aborted')
    await again.controller.stop()
  })
})
