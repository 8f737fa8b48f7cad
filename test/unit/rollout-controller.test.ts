/**
 * The rollout controller's plumbing with the real pure logic (decide, activationFor, gates) and
 * in-memory fakes of the installer, inference supervisor and health reporter: activation,
 * local rollback on a load failure (never retried), fleet abort → previous version, the abort
 * remembered across restarts, verdicts published once; plus the pure helpers (target choice,
 * baseline release, local triggers) and the health window.
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
import { localRollbackTrigger } from '../../node/rollout/local-triggers.ts'
import { chooseTarget, previousRelease } from '../../node/rollout/plan.ts'
import { RolloutController } from '../../node/rollout/rollout-controller.ts'
import { HealthWindow } from '../../node/telemetry/window.ts'
import { canonicalBytes, sha256Hex } from '../../protocols/encoding.ts'
import { mergeSketches, quantile } from '../../protocols/rollout/sketch.ts'
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

/** An in-memory installer with the real one's version links. */
class FakeInstaller {
  active: string | null = null
  previous: string | null = null
  staged = new Set<string>()
  calls: string[] = []
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
    this.calls.push(`activate ${v}`)
    if (this.active !== v) {
      this.previous = this.active
      this.active = v
    }
  }
  async rollback() {
    this.calls.push(`rollback ${this.previous}`)
    this.active = this.previous
    this.previous = null
    return this.active as string
  }
  async markHealthy() {
    this.calls.push('healthy')
    this.previous = null
  }
}

/** A supervisor that fails to load the versions in `broken` and goes back to what it served. */
class FakeSupervisor extends EventEmitter {
  model: { name: string; version: string | undefined } | undefined
  state = 'idle' as const
  broken = new Set<string>()
  async switchModel(_path: string, meta: { name?: string; version?: string }) {
    if (this.broken.has(meta.version ?? '')) {
      throw Object.assign(new Error('llama.cpp refused the model'), { code: 'ERR_MODEL_LOAD' })
    }
    this.model = { name: meta.name ?? 'tiny', version: meta.version }
    return this.model
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

async function setup(dataDir?: string, mesh: unknown = { state: 'stopped', peers: () => [] }) {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'llmesh-ctl-')))
  if (!dataDir) dirs.push(dir)
  const me = await deviceKey()
  const store = new MessageStore({}, { logger: silentLogger() })
  const published: Uint8Array[] = []
  const installer = new FakeInstaller()
  const supervisor = new FakeSupervisor()
  const reporter = new FakeReporter()
  const ctx = {
    config: { role: 'node', fleet: 'test-fleet', dataDir: dir, tags: [], reportIntervalMs: 1000 } as never,
    identity: { peerId: me.peerId, privateKey: me.key, created: false },
    logger: silentLogger(),
    store,
    mesh: mesh as never,
    publish: async (b: Uint8Array) => {
      published.push(b)
      return { status: 'accepted' } as never
    },
    status: new StatusRegistry(),
  }
  const controller = new RolloutController(
    { startupCatchUpMs: 0, decideIntervalMs: 60_000 },
    { ctx, installer: installer as never, supervisor: supervisor as never, reporter },
  )
  add(store, exampleEnrollment({ device: me.peerId, issued_at: Date.now() - 1000, expires_at: undefined }))
  return { dir, me, store, installer, supervisor, reporter, controller, published, ctx }
}

const release = (version: string, seq: number, policy = ONE_STAGE) =>
  exampleRelease({
    model: 'tiny',
    version,
    seq,
    policy,
    created_at: Date.now() - 500,
    expires_at: Date.now() + 86_400_000,
  })

describe('rollout controller plumbing', () => {
  test('activates a one-stage release, rolls back locally on a load failure and never retries it', async () => {
    const s = await setup()
    await s.controller.start()
    add(s.store, release('1.0.0', 1))
    await s.controller.tick()
    await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    assert.equal(s.supervisor.model?.version, '1.0.0')
    assert.deepEqual(await s.controller.activeVersions(), [{ model: 'tiny', version: '1.0.0' }])
    assert.equal(s.ctx.status.releaseState('tiny', '1.0.0'), 'promoted')

    s.supervisor.broken.add('2.0.0')
    add(s.store, release('2.0.0', 2))
    for (let i = 0; i < 4; i++) await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    assert.equal(s.supervisor.model?.version, '1.0.0')
    assert.equal(s.installer.calls.filter((c) => c === 'activate 2.0.0').length, 1)
    assert.deepEqual(s.reporter.events, ['2.0.0 load_failures', '2.0.0 rollbacks'])
    assert.equal(s.controller.counters.localRollbacks, 1)
    await s.controller.stop()
  })

  test('more than 3 restarts of a new version within 5 minutes roll it back locally', async () => {
    const s = await setup()
    await s.controller.start()
    add(s.store, release('1.0.0', 1))
    await s.controller.tick()
    add(s.store, release('2.0.0', 2))
    await s.controller.tick()
    await s.controller.tick()
    assert.equal(s.supervisor.model?.version, '2.0.0')
    const t = Date.now()
    for (let i = 0; i < 3; i++) s.supervisor.emit('restart', { at: t + i, count: i + 1, reason: 'crash' })
    await s.controller.tick()
    assert.equal(s.installer.active, '2.0.0')
    s.supervisor.emit('restart', { at: t + 3, count: 4, reason: 'crash' })
    await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    assert.equal(s.supervisor.model?.version, '1.0.0')
    assert.deepEqual(s.reporter.events, ['2.0.0 rollbacks'])
    for (let i = 0; i < 3; i++) await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    await s.controller.stop()
  })

  test('a fleet abort brings the previous version back, and is remembered across restarts', async () => {
    const s = await setup()
    await s.controller.start()
    const r1 = release('1.0.0', 1)
    const r3 = release('3.0.0', 2)
    add(s.store, r1)
    await s.controller.tick()
    add(s.store, r3)
    await s.controller.tick()
    await s.controller.tick()
    assert.equal(s.installer.active, '3.0.0')
    add(
      s.store,
      exampleCommand({ model: 'tiny', version: '3.0.0', action: 'abort', issued_at: Date.now(), id: 'ab'.repeat(8) }),
    )
    await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    assert.equal(s.supervisor.model?.version, '1.0.0')
    assert.ok(s.controller.isAborted('tiny@3.0.0'))
    assert.equal(s.ctx.status.releaseState('tiny', '3.0.0'), 'aborted')
    await s.controller.stop()

    // a restart that lost the abort command still knows: v3 is never activated again by itself
    const again = await setup(s.dir)
    again.installer.staged = new Set(['1.0.0', '3.0.0'])
    await again.controller.start()
    add(again.store, r1)
    add(again.store, r3)
    for (let i = 0; i < 3; i++) await again.controller.tick()
    assert.equal(again.installer.active, '1.0.0')
    assert.ok(!again.installer.calls.includes('activate 3.0.0'))
    await again.controller.stop()
  })

  test('before going forward it catches up with peers: an abort learned then stops the activation', async () => {
    let onSync: () => void = () => {}
    const antiEntropy = Object.assign(new EventEmitter(), { sync: async () => onSync() })
    const libp2p = { getConnections: () => [{ remotePeer: { toString: () => 'peer' } }] }
    const s = await setup(undefined, { state: 'running', peers: () => ['peer'], antiEntropy, libp2p })
    await s.controller.start()
    add(s.store, release('1.0.0', 1))
    await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    // the catch-up round brings the abort of 2.0.0 (it happened while this device was away)
    onSync = () =>
      add(
        s.store,
        exampleCommand({ model: 'tiny', version: '2.0.0', action: 'abort', issued_at: Date.now(), id: 'cd'.repeat(8) }),
      )
    add(s.store, release('2.0.0', 2))
    for (let i = 0; i < 3; i++) await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    assert.ok(!s.installer.calls.includes('activate 2.0.0'))
    assert.ok(s.controller.isAborted('tiny@2.0.0'))
    // without news from peers it goes ahead
    onSync = () => {}
    add(s.store, release('3.0.0', 3))
    for (let i = 0; i < 3; i++) await s.controller.tick()
    assert.equal(s.installer.active, '3.0.0')
    await s.controller.stop()
  })

  test('an enrolled device publishes a gate verdict once, not on every tick', async () => {
    const s = await setup()
    await s.controller.start()
    const two: RolloutPolicy = {
      ...ONE_STAGE,
      stages: [
        { name: 'canary', percent: 100, min_devices: 0, tags: [], window_ms: 0 },
        { name: 'full', percent: 100, min_devices: 0, tags: [], window_ms: 0 },
      ],
    }
    add(s.store, release('1.0.0', 1, two))
    for (let i = 0; i < 3; i++) await s.controller.tick()
    assert.equal(s.published.length, 1)
    await s.controller.stop()
  })
})

describe('rollout helpers', () => {
  test('chooseTarget: the highest-seq activated release that is not bad', () => {
    const c = [
      { version: '1.0.0', seq: 1, activation: 'activate' as const },
      { version: '2.0.0', seq: 2, activation: 'activate' as const },
      { version: '3.0.0', seq: 3, activation: 'stay' as const },
    ]
    assert.equal(chooseTarget(c, new Set()), '2.0.0')
    assert.equal(chooseTarget(c, new Set(['2.0.0'])), '1.0.0')
    assert.equal(chooseTarget(c, new Set(['1.0.0', '2.0.0'])), null)
  })

  test('previousRelease skips aborted releases', () => {
    const rs = [release('1.0.0', 1), release('2.0.0', 2), release('3.0.0', 3)]
    assert.deepEqual(
      previousRelease(rs, rs[2], () => false),
      { model: 'tiny', version: '2.0.0' },
    )
    assert.deepEqual(
      previousRelease(rs, rs[2], (k) => k === 'tiny@2.0.0'),
      { model: 'tiny', version: '1.0.0' },
    )
    assert.equal(
      previousRelease(rs, rs[0], () => false),
      null,
    )
  })

  test('local triggers: more than 3 restarts in 5 minutes, load/probe failure, OOM', () => {
    const t = 10 * 60_000
    const r = (at: number) => ({ kind: 'restart' as const, at })
    assert.equal(localRollbackTrigger([r(t - 1000), r(t - 2000), r(t - 3000)], t), null)
    assert.equal(localRollbackTrigger([r(t - 1000), r(t - 2000), r(t - 3000), r(t - 4000)], t), 'restart-loop')
    assert.equal(localRollbackTrigger([r(t - 9 * 60_000), r(t - 8 * 60_000), r(t - 1000), r(t - 2000)], t), null)
    assert.equal(localRollbackTrigger([{ kind: 'oom', at: t }], t), 'oom')
    assert.equal(localRollbackTrigger([{ kind: 'load-failure', at: t }], t), 'load-failure')
    assert.equal(localRollbackTrigger([{ kind: 'probe-failure', at: t }], t), 'probe-failure')
  })

  test('health window: per-version counts, a mergeable latency sketch, events; fold starts a new window', () => {
    const w = new HealthWindow(1000)
    const v1 = { model: 'tiny', version: '1.0.0' }
    const all: number[] = []
    for (let i = 1; i <= 100; i++) {
      w.request(v1, { ok: i % 10 !== 0, latencyMs: i * 3, tokensIn: 4, tokensOut: 8 })
      all.push(i * 3)
    }
    w.concurrency(v1, 3)
    w.event(v1, 'restarts')
    const f = w.fold(5000)
    assert.deepEqual([f.start, f.end], [1000, 5000])
    const s = f.inference[0]
    assert.deepEqual([s.requests, s.errors, s.tokens_in, s.tokens_out, s.concurrency_max], [100, 10, 400, 800, 3])
    const p95 = quantile(mergeSketches(s.latency_ms), 0.95)!
    assert.ok(Math.abs(p95 - 285) / 285 <= 0.011, String(p95))
    assert.equal(f.events[0].counts.restarts, 1)
    assert.ok(w.empty)
    assert.equal(w.startedAt, 5000)
  })
})
