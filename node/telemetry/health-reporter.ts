/**
 * HealthReporter: every `intervalMs` folds the health window into a signed HealthReport and
 * publishes it on the mesh.
 *
 * How it works: requests and health events are recorded into a `HealthWindow` (from the
 * inference supervisor's `request`/`queue`/`restart`/`oom` events, and from `record()` calls of
 * the rollout controller for load/probe failures and rollbacks). On each tick (or `flush()`, e.g.
 * right after a local rollback, or `cut()` when the active version changes so that the next window
 * starts on the new version) the window becomes a report: device meta (tags, runtime version,
 * uptime), hardware, active versions, per-version inference figures and events. `seq` is strictly
 * increasing across restarts: the last one is persisted in `<data>/health-seq.json`, and the
 * store's highest own seq is a floor. Reports carry counts and sketches only; prompt text never
 * leaves the device (opt-in salted hashes of a sample, the salt kept in `<data>/prompt-salt.key`).
 * Fault isolation: a report that cannot be built (hardware sampling, the active or staged
 * versions, the seq file) is a `health-report` loop error (counted, logged once per change) and
 * the next interval tries again; `flush()` and `cut()` never reject. A staged list that cannot be
 * read leaves `staged` out of that report rather than losing the report.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { PrivateKey } from '@libp2p/interface'
import { siteOf, siteTag } from '../../protocols/fleet-report.ts'
import type { HealthReport } from '../../protocols/schemas/health.ts'
import type { QualityFigure } from '../../protocols/schemas/probes.ts'
import { signDeviceMessage } from '../../protocols/signing/index.ts'
import type { SupervisorEvents } from '../inference/types.ts'
import type { Logger } from '../logger.ts'
import type { MessageStore } from '../mesh/message-store.ts'
import { MAX_PROMPT_HASHES, PROMPT_HASH_SAMPLE, PROMPT_SALT_FILE, REPORT_SEQ_FILE } from './constants.ts'
import { type Faults, LoopErrors } from './faults.ts'
import { HardwareSampler } from './hardware.ts'
import { type HealthEventKind, HealthWindow, type VersionRef } from './window.ts'

/** The subset of the inference supervisor the reporter listens to. */
export interface ReporterSupervisor {
  readonly model: { name: string; version: string | undefined } | undefined
  on<K extends keyof SupervisorEvents>(event: K, fn: (...args: SupervisorEvents[K]) => void): unknown
  off<K extends keyof SupervisorEvents>(event: K, fn: (...args: SupervisorEvents[K]) => void): unknown
}

/** Options. */
export interface HealthReporterInit {
  fleet: string
  dataDir: string
  intervalMs: number
  /** Device tags when the enrollment gives none. */
  tags: string[]
  deviceType?: string
  runtimeVersion: string
  /** Opt in to salted hashes of a sample of prompts (default off). */
  promptHashes?: boolean
  /** Share of prompts hashed when opted in. */
  promptHashSample?: number
}

/** What the reporter uses. */
export interface HealthReporterComponents {
  identity: { peerId: string; privateKey: PrivateKey }
  store: MessageStore
  publish(bytes: Uint8Array): Promise<unknown>
  logger: Logger
  /** Active version per model on this device. */
  active(): Promise<VersionRef[]>
  /** Versions staged (downloaded and verified) on this device; omitted from reports when absent. */
  staged?(): Promise<VersionRef[]>
  supervisor?: ReporterSupervisor
  /** Quality probe figures to sign (node/quality/prober.ts); left out when empty. */
  quality?(): QualityFigure[]
  /** The agent version running and its rolled-back versions (node/agent-update/); left out when absent. */
  agent?(): HealthReport['agent']
  now?: () => number
  /** Where this loop's faults go (default: a set of its own, `reporter.loops`). */
  loops?: LoopErrors
}

/** The health reporter service. */
export class HealthReporter {
  private readonly init: HealthReporterInit
  private readonly c: HealthReporterComponents
  private readonly now: () => number
  private readonly hw = new HardwareSampler()
  private readonly startedAt: number
  private window: HealthWindow
  private seq = -1
  private timer: NodeJS.Timeout | undefined
  private chain: Promise<unknown> = Promise.resolve()
  private salt: Buffer | undefined
  private promptHashes: string[] = []
  private running = false
  /** Reports published since start. */
  published = 0
  /** The loop-error set holding this loop's faults (`health-report`). */
  readonly loops: LoopErrors
  private readonly faults: Faults
  private readonly onRequest = (r: SupervisorEvents['request'][0]): void => {
    const ref = this.current()
    if (ref === undefined) return
    this.window.request(ref, {
      ok: r.outcome === 'ok',
      latencyMs: r.durationMs,
      ttftMs: r.ttftMs,
      tokensIn: r.tokensIn,
      tokensOut: r.tokensOut,
    })
  }
  private readonly onQueue = (q: SupervisorEvents['queue'][0]): void => {
    const ref = this.current()
    if (ref !== undefined) this.window.concurrency(ref, q.active)
  }
  private readonly onRestart = (): void => this.recordCurrent('restarts')
  private readonly onOom = (e: SupervisorEvents['oom'][0]): void => {
    if (e.during === 'serving') this.recordCurrent('ooms')
  }

  constructor(components: HealthReporterComponents, init: HealthReporterInit) {
    this.init = init
    this.c = components
    this.now = components.now ?? Date.now
    this.startedAt = this.now()
    this.window = new HealthWindow(this.startedAt)
    this.loops = components.loops ?? new LoopErrors()
    this.faults = this.loops.loop('health-report', components.logger, this.now)
  }

  /** Loads the seq floor and the salt, hooks the supervisor, starts the timer. Idempotent. */
  async start(): Promise<void> {
    if (this.running) return
    this.running = true
    this.seq = Math.max(await this.loadSeq(), this.ownHighestSeq())
    if (this.init.promptHashes === true) this.salt = await this.loadSalt()
    const s = this.c.supervisor
    if (s !== undefined) {
      s.on('request', this.onRequest)
      s.on('queue', this.onQueue)
      s.on('restart', this.onRestart)
      s.on('oom', this.onOom)
    }
    this.window = new HealthWindow(this.now())
    this.timer = setInterval(() => void this.flush(), this.init.intervalMs)
    this.timer.unref()
  }

  /** Stops the timer and unhooks. Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    clearInterval(this.timer)
    const s = this.c.supervisor
    if (s !== undefined) {
      s.off('request', this.onRequest)
      s.off('queue', this.onQueue)
      s.off('restart', this.onRestart)
      s.off('oom', this.onOom)
    }
    await this.chain.catch(() => {})
  }

  /** Counts a health event against a version (the rollout controller's load/probe failures, rollbacks). */
  record(ref: VersionRef, kind: HealthEventKind, n = 1): void {
    this.window.event(ref, kind, n)
  }

  /**
   * Opt-in only: keeps a salted sha256 of a sample of prompts. The text itself is dropped here and
   * never stored, logged or sent; without the opt-in this does nothing.
   */
  notePrompt(text: string): void {
    if (this.salt === undefined || this.promptHashes.length >= MAX_PROMPT_HASHES) return
    if (Math.random() >= (this.init.promptHashSample ?? PROMPT_HASH_SAMPLE)) return
    this.promptHashes.push(createHash('sha256').update(this.salt).update(text).digest('hex'))
  }

  /**
   * Publishes the current window now (serialized with the timer). Resolves with the report, or
   * undefined when none could be built (a loop error); never rejects.
   */
  flush(): Promise<HealthReport | undefined> {
    const next = this.chain.then(
      () => this.report(),
      () => undefined,
    )
    const safe = next.then(
      (r) => {
        this.faults.ok('report')
        return r
      },
      (err: unknown) => {
        this.faults.fail('report', err)
        return undefined
      },
    )
    this.chain = safe
    return safe
  }

  /** Closes the window now (e.g. before activating a version) so the next one starts clean. */
  cut(): Promise<HealthReport | undefined> {
    return this.flush()
  }

  private current(): VersionRef | undefined {
    const m = this.c.supervisor?.model
    return m?.version === undefined ? undefined : { model: m.name, version: m.version }
  }

  private recordCurrent(kind: HealthEventKind): void {
    const ref = this.current()
    if (ref !== undefined) this.window.event(ref, kind)
  }

  private async report(): Promise<HealthReport | undefined> {
    if (!this.running) return undefined
    const now = this.now()
    const folded = this.window.fold(now)
    const own = this.c.store.enrollmentOf(this.c.identity.peerId)
    const hardware = await this.hw.sample()
    const seq = Math.max(this.seq, this.ownHighestSeq()) + 1
    const report: HealthReport = {
      type: 'HealthReport',
      v: 1,
      fleet: this.init.fleet,
      device: this.c.identity.peerId,
      seq,
      window: { start: folded.start, end: folded.end },
      meta: {
        device_type: (this.init.deviceType ?? own?.capabilities.device_type ?? 'generic').slice(0, 64),
        tags: withSite(own?.tags ?? this.init.tags, siteOf(this.init.tags)).slice(0, 32),
        runtime_version: this.init.runtimeVersion.slice(0, 64),
        uptime_s: Math.max(0, Math.round((now - this.startedAt) / 1000)),
      },
      active: (await this.c.active()).slice(0, 16),
      ...(await this.stagedPart()),
      hardware,
      inference: folded.inference,
      events: folded.events,
    }
    const quality = this.c.quality?.().slice(-16) ?? []
    if (quality.length > 0) report.quality = quality
    const agent = this.c.agent?.()
    if (agent !== undefined) report.agent = agent
    if (this.salt !== undefined && this.promptHashes.length > 0) {
      report.prompt_hashes = this.promptHashes
      this.promptHashes = []
    }
    this.seq = seq
    await this.saveSeq(seq)
    try {
      const bytes = await signDeviceMessage(report, this.c.identity.privateKey)
      await this.c.publish(bytes)
      this.published++
      this.c.logger.debug({ seq, events: report.events.length }, 'health report published')
    } catch (err) {
      this.c.logger.warn({ err: (err as Error).message, seq }, 'health report not published')
    }
    return report
  }

  /** `staged` of a report; left out (and a loop error) when it cannot be read. */
  private async stagedPart(): Promise<{ staged?: VersionRef[] }> {
    if (this.c.staged === undefined) return {}
    try {
      const staged = (await this.c.staged()).slice(0, 64)
      this.faults.ok('staged')
      return { staged }
    } catch (err) {
      this.faults.fail('staged', err)
      return {}
    }
  }

  private ownHighestSeq(): number {
    let s = -1
    for (const m of this.c.store.forDevice(this.c.identity.peerId)) {
      if (m.type === 'HealthReport') s = Math.max(s, (m.message as HealthReport).seq)
    }
    return s
  }

  private async loadSeq(): Promise<number> {
    try {
      const v = JSON.parse(await readFile(join(this.init.dataDir, REPORT_SEQ_FILE), 'utf8')) as { seq?: unknown }
      return typeof v.seq === 'number' ? v.seq : -1
    } catch {
      return -1
    }
  }

  private async saveSeq(seq: number): Promise<void> {
    const file = join(this.init.dataDir, REPORT_SEQ_FILE)
    await writeFile(`${file}.tmp`, JSON.stringify({ seq }), { mode: 0o600 })
    await rename(`${file}.tmp`, file)
  }

  private async loadSalt(): Promise<Buffer> {
    const file = join(this.init.dataDir, PROMPT_SALT_FILE)
    try {
      return await readFile(file)
    } catch {
      const salt = randomBytes(32)
      await writeFile(file, salt, { mode: 0o600 })
      return salt
    }
  }
}

/** `tags`, with the node's `site:<name>` tag when they name no site (a site is declared, not enrolled). */
function withSite(tags: readonly string[], site: string | null): string[] {
  return site === null || siteOf(tags) !== null ? [...tags] : [...tags, siteTag(site)]
}
