/**
 * In-memory installer, supervisor and reporter around a real RolloutController, for unit tests
 * of what a device runs (deactivation, resumed activations).
 */
import { EventEmitter } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after } from 'node:test'
import { StatusRegistry } from '../../node/api/status.ts'
import { type Logger, silentLogger } from '../../node/logger.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import type { AnyMessage } from '../../node/mesh/types.ts'
import { RolloutController, type RolloutControllerComponents } from '../../node/rollout/rollout-controller.ts'
import { canonicalBytes, sha256Hex } from '../../protocols/encoding.ts'
import type { HealthReport, ReleaseManifest, RolloutPolicy } from '../../protocols/schemas/index.ts'
import {
  deviceKey,
  exampleCommand,
  exampleEnrollment,
  exampleHealthReport,
  exampleRelease,
} from '../fixtures/messages.ts'

export const ONE_STAGE: RolloutPolicy = {
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

export function add(store: MessageStore, message: AnyMessage): void {
  const bytes = canonicalBytes(message)
  store.add({ digest: sha256Hex(bytes), type: message.type, message, signer: 'test' }, bytes)
}

/** An in-memory installer with the real one's version links; `log` is shared with the supervisor. */
export class FakeInstaller {
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
export class FakeSupervisor extends EventEmitter {
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

export class FakeReporter {
  events: string[] = []
  record(ref: { version: string }, kind: string) {
    this.events.push(`${ref.version} ${kind}`)
  }
  async flush() {}
  async cut() {}
}

/** Options of `setup`: a logger to read, a `decide` that may throw, the mesh the controller sees. */
export interface SetupOptions {
  logger?: Logger
  decide?: RolloutControllerComponents['decide']
  mesh?: unknown
}

export async function setup(dataDir?: string, opts: SetupOptions = {}) {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'llmesh-deact-')))
  if (!dataDir) dirs.push(dir)
  const me = await deviceKey()
  const store = new MessageStore({ logger: silentLogger() }, {})
  const log: string[] = []
  const installer = new FakeInstaller(log)
  const supervisor = new FakeSupervisor(log)
  const reporter = new FakeReporter()
  const status = new StatusRegistry()
  status.setModels(() => installer.status())
  const published: Uint8Array[] = []
  const ctx = {
    config: { role: 'node', fleet: 'test-fleet', dataDir: dir, tags: [], reportIntervalMs: 1000 } as never,
    identity: { peerId: me.peerId, privateKey: me.key, created: false },
    logger: opts.logger ?? silentLogger(),
    store,
    mesh: (opts.mesh ?? { state: 'stopped', peers: () => [] }) as never,
    publish: async (b: Uint8Array) => {
      published.push(b)
      return { status: 'accepted' } as never
    },
    status,
  }
  const controller = new RolloutController(
    { ctx, installer: installer as never, supervisor: supervisor as never, reporter, decide: opts.decide },
    { startupCatchUpMs: 0, decideIntervalMs: 60_000 },
  )
  add(store, exampleEnrollment({ device: me.peerId, issued_at: Date.now() - 1000, expires_at: undefined }))
  return { dir, me, store, log, installer, supervisor, reporter, controller, status, ctx, published }
}

export const release = (version: string, seq: number, policy: RolloutPolicy = ONE_STAGE) =>
  exampleRelease({
    model: 'tiny',
    version,
    seq,
    policy,
    created_at: Date.now() - 500,
    expires_at: Date.now() + 86_400_000,
  })
export const abort = (version: string, id: string) =>
  exampleCommand({ model: 'tiny', version, action: 'abort', issued_at: Date.now(), id: id.repeat(16) })

/** A health report of `device` in setup()'s fleet for the second up to now, with nothing active or counted unless `over` says so. */
export function healthReport(device: string, seq: number, over: Partial<HealthReport> = {}): HealthReport {
  const end = Date.now()
  return exampleHealthReport({
    fleet: 'test-fleet',
    device,
    seq,
    window: { start: end - 1000, end },
    active: [],
    inference: [],
    events: [],
    ...over,
  })
}

export async function ticks(c: RolloutController, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await c.tick()
}
