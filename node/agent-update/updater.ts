/**
 * AgentUpdater: the device side of agent releases. It watches the message store for
 * `AgentRelease`s (verified like every operator message) and takes the version the fleet's rollout
 * admits for this device (`rollout().agentTarget()`, node/rollout/: the highest-seq agent release
 * whose stage — pilot, canary, … — has reached this device's cohort and that the fleet has not
 * aborted), then decides with the pure rules (protocols/agent/upgrade.ts: own architecture,
 * required step, downgrade; going back from a running version the fleet aborted is allowed).
 * A newer release whose stage does not admit this device yet is shown as `waiting`.
 * A version the wrapper already rolled back (`<root>/.agent-failures.json`) is never taken again.
 * Fleet rollback: when the fleet refuses the running version (aborted or conflicted) and admits
 * nothing newer, the device goes back to the newest version it holds under the root that the
 * rule allows (protocols/agent/fallback.ts: not refused, not rolled back here, at or above the
 * running release's `min_agent_version`), through the same pending switch and restart; when none
 * does it stays (`stuck`, with why: /status, health reports, `llmesh_agent_stuck`).
 * To install: fetch the package's chunks from peers, verify and unpack beside the running version
 * (unpack.ts), record the pending switch `{ version, previous }`, switch `current` atomically,
 * then call `restart()` (the daemon stops and exits with `AGENT_RESTART_EXIT_CODE`, or, handed over
 * by the wrapper, execs it: handover.ts; the wrapper, `llmesh agent run`, starts the new version and
 * watches its health window).
 * Every `AGENT_RECONSIDER_MS` it looks again (a failed fetch, a release that came while busy).
 * With `enabled: false` it only reports the running version (status, health reports, metrics).
 * It acts only under the wrapper (`supervised`) and when the running version is itself installed
 * under the root (`<root>/<running>`): otherwise nothing would roll a broken version back.
 */
import { lstat, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AGENT_LINEAGE } from '../../protocols/agent/constants.ts'
import { agentFallback } from '../../protocols/agent/fallback.ts'
import { checkAgentUpgrade } from '../../protocols/agent/upgrade.ts'
import type { AgentPackage, AgentRelease } from '../../protocols/schemas/index.ts'
import { compareVersions } from '../../protocols/version.ts'
import type { Logger } from '../logger.ts'
import type { MessageStore } from '../mesh/message-store.ts'
import type { StoredMessage } from '../mesh/types.ts'
import type { ModelStore } from '../store/model-store.ts'
import { AGENT_ENTRY, AGENT_RECONSIDER_MS, AGENT_REPORTED_FILE, AGENT_TARGET_POLL_MS } from './constants.ts'
import { heldVersions, runningFloor } from './fallback.ts'
import { type AgentFailure, readFailures, switchCurrent, writePending } from './layout.ts'
import type { AgentInfo, AgentRollout } from './types.ts'
import { installAgentPackage } from './unpack.ts'

export type { AgentInfo, AgentRollout } from './types.ts'

/** What the updater uses. */
export interface AgentUpdaterComponents {
  messages: Pick<MessageStore, 'list' | 'on' | 'off'>
  /** The rollout controller, once started (undefined: nothing is admitted yet). */
  rollout: () => AgentRollout | undefined
  /**
   * Counts a rolled-back version as a `rollbacks` event of `llmesh-agent@<version>` in the next
   * health report (the health reporter's `record`), so the gates see it like a model's rollback.
   */
  recordRollback?: (version: string) => void
  /** The distribution's model store (after it started). */
  store: () => ModelStore | undefined
  /** Restarts the replication sessions (the distribution's replicator) when a package fetch stalls. */
  recycle?: (reason: string) => void
  logger: Logger
}

/** Options. */
export interface AgentUpdaterInit {
  /** Where versions live side by side (`agent_root`). */
  root: string
  /** The agent version running now. */
  running: string
  /** Take agent releases (`agent_update`); false: report the version only. */
  enabled: boolean
  /**
   * Run by the wrapper (`llmesh agent run` gave it a ready file): only then is a version that does
   * not come up rolled back, so only then does the updater install (default false).
   */
  supervised?: boolean
  /** Default `process.arch`. */
  arch?: string
  /** How often the newest release is looked at again, ms (default `AGENT_RECONSIDER_MS`). */
  reconsiderMs?: number
  /** How often the admitted version is compared with the last one looked at, ms (default `AGENT_TARGET_POLL_MS`). */
  pollMs?: number
  /** Called once `current` points at the new version: stop and exit for the supervisor. */
  restart?: () => void
}

/** The agent update service. */
export class AgentUpdater {
  private readonly c: AgentUpdaterComponents
  private readonly init: AgentUpdaterInit
  private state: Omit<AgentInfo, 'version' | 'root' | 'update' | 'failures'> = { state: 'idle' }
  private failures: AgentFailure[] = []
  private busy = false
  /** What the rollout said when last looked at (a change, e.g. a promotion or an abort, is looked at at once). */
  private lastSeen: string | undefined
  private running = false
  private readonly abort = new AbortController()
  private timer: NodeJS.Timeout | undefined
  private poll: NodeJS.Timeout | undefined
  private readonly onRelease = (_m: StoredMessage<AgentRelease>) => void this.consider()

  constructor(components: AgentUpdaterComponents, init: AgentUpdaterInit) {
    this.c = components
    this.init = init
  }

  /** The running version, the update state and the recorded failures. */
  info(): AgentInfo {
    return {
      version: this.init.running,
      root: this.init.root,
      update: this.init.enabled,
      ...this.state,
      failures: this.failures,
    }
  }

  async start(): Promise<void> {
    this.failures = await readFailures(this.init.root)
    await this.reportNewFailures()
    this.running = true
    this.c.messages.on('agent-release', this.onRelease)
    this.timer = setInterval(() => void this.consider(), this.init.reconsiderMs ?? AGENT_RECONSIDER_MS)
    this.timer.unref()
    this.poll = setInterval(() => {
      if (this.seen() !== this.lastSeen) void this.consider()
    }, this.init.pollMs ?? AGENT_TARGET_POLL_MS)
    this.poll.unref()
    void this.consider()
  }

  async stop(): Promise<void> {
    this.running = false
    clearInterval(this.timer)
    clearInterval(this.poll)
    this.abort.abort()
    this.c.messages.off('agent-release', this.onRelease)
  }

  /** Looks at the newest agent release and installs it when the rules say so. Never rejects. */
  async consider(): Promise<void> {
    if (!this.running || !this.init.enabled || this.busy) return
    const rollout = this.c.rollout()
    const store = this.c.store()
    if (rollout === undefined || store === undefined) return
    const all = this.c.messages
      .list('AgentRelease')
      .map((m) => m.message)
      .sort((a, b) => a.seq - b.seq)
    const admitted = rollout.agentTarget()
    this.lastSeen = this.seen()
    const top = all.find((r) => r.version === admitted)
    const newest = all.at(-1)
    if (newest !== undefined && newest.version !== admitted && newest.version !== this.init.running) {
      const key = `${AGENT_LINEAGE}@${newest.version}`
      const reason = rollout.isAborted(key)
        ? 'aborted by the fleet'
        : rollout.isRefused(key)
          ? 'conflicted: refused by the fleet'
          : "its rollout stage has not reached this device's cohort"
      if (!this.failedHere(newest.version)) this.state = { state: 'waiting', target: newest.version, reason }
    } else if (this.state.state === 'waiting') this.state = { state: 'idle' }
    const self = {
      arch: this.init.arch ?? process.arch,
      running: this.init.running,
      runningMinAgent: await runningFloor(this.init.root, this.init.running, all),
      runningAborted: rollout.isRefused(`${AGENT_LINEAGE}@${this.init.running}`),
    }
    if (self.runningAborted && (top === undefined || compareVersions(top.version, self.running) < 0)) {
      // the fleet refuses the running version and admits nothing newer: go back to one held here
      const fb = agentFallback({
        running: self.running,
        floor: self.runningMinAgent,
        held: await heldVersions(this.init.root),
        refused: (v) => rollout.isRefused(`${AGENT_LINEAGE}@${v}`),
        failedHere: (v) => this.failedHere(v),
      })
      if (fb.action === 'return') return this.switchTo(rollout, fb.version, null)
      // nothing held qualifies: the admitted older release, if the rules let it in, is fetched
      if (top === undefined || this.failedHere(top.version) || checkAgentUpgrade(top, self).action !== 'install') {
        if (this.state.reason !== fb.reason) this.c.logger.warn({ version: self.running, code: fb.code }, fb.reason)
        this.state = { state: 'stuck', target: self.running, reason: fb.reason }
        return
      }
    }
    if (top === undefined) return
    if (this.failedHere(top.version)) {
      this.state = { state: 'failed', target: top.version, reason: 'rolled back on this device' }
      return
    }
    const d = checkAgentUpgrade(top, self)
    if (d.action === 'current' || d.action === 'not-mine') return
    if (d.action === 'refuse') {
      this.state = { state: 'refused', target: top.version, reason: `${d.code}: ${d.reason}` }
      this.c.logger.warn({ version: top.version, code: d.code }, d.reason)
      return
    }
    await this.switchTo(rollout, top.version, { release: top, pkg: d.pkg, store })
  }

  /**
   * Switches to `version` (installing `from` first, when given: a release to fetch) and restarts,
   * only under the wrapper and when the running version is installed under the root.
   */
  private async switchTo(
    rollout: AgentRollout,
    version: string,
    from: { release: AgentRelease; pkg: AgentPackage; store: ModelStore } | null,
  ): Promise<void> {
    const unsupervised = this.init.supervised !== true
    if (unsupervised || !(await exists(join(this.init.root, this.init.running, AGENT_ENTRY)))) {
      const reason = unsupervised
        ? 'not run by the wrapper (llmesh agent run): nothing would put a version that does not come up back'
        : `the running ${this.init.running} is not installed under ${this.init.root}: nothing to roll back to`
      this.state = { state: 'refused', target: version, reason }
      this.c.logger.warn({ version }, reason)
      return
    }
    this.busy = true
    try {
      // going forward: catch up with peers first (a device that was off learns of an abort); going
      // back from a refused version: the refusal is final, nothing to wait for
      if (from !== null && (!(await rollout.confirmAgent(version)) || !this.running)) {
        this.lastSeen = undefined // not yet caught up, or no longer admitted: look again at the next poll
        return
      }
      if (from !== null) {
        this.state = { state: 'installing', target: version }
        this.c.logger.info({ version, arch: from.pkg.arch }, 'installing agent release')
        await installAgentPackage(from.store, this.init.root, from.release, from.pkg, this.abort.signal, {
          logger: this.c.logger,
          onStall: () => this.c.recycle?.(`download of the agent package ${version} stalled`),
        })
      } else {
        this.c.logger.warn({ version, from: this.init.running }, 'agent version refused by the fleet: going back')
      }
      if (!this.running) return
      await writePending(this.init.root, { version, previous: this.init.running })
      await switchCurrent(this.init.root, version)
      this.state = { state: 'switched', target: version }
      this.c.logger.info({ version, previous: this.init.running }, 'agent switched: restarting')
      this.init.restart?.()
    } catch (err) {
      if (!this.running) return
      this.state = { state: 'failed', target: version, reason: (err as Error).message.slice(0, 256) }
      this.c.logger.warn({ err, version }, 'agent release install failed')
    } finally {
      this.busy = false
    }
  }

  /** The admitted version and whether the newest release is aborted, as the rollout says now. */
  private seen(): string | undefined {
    const rollout = this.c.rollout()
    if (rollout === undefined) return undefined
    const newest = this.c.messages
      .list('AgentRelease')
      .reduce<AgentRelease | undefined>((a, m) => (a === undefined || m.message.seq > a.seq ? m.message : a), undefined)
    const aborted = newest !== undefined && rollout.isAborted(`${AGENT_LINEAGE}@${newest.version}`)
    const refused = rollout.isRefused(`${AGENT_LINEAGE}@${this.init.running}`)
    return `${rollout.agentTarget()}/${newest?.version}/${aborted}/${refused}`
  }

  private failedHere(version: string): boolean {
    return this.failures.some((f) => f.version === version)
  }

  /** Counts the failures the wrapper recorded since the last start as health events, once each. */
  private async reportNewFailures(): Promise<void> {
    if (this.c.recordRollback === undefined) return
    const file = join(this.init.root, AGENT_REPORTED_FILE)
    const mark = Number((await readFile(file, 'utf8').catch(() => '0')).slice(0, 32)) || 0
    const fresh = this.failures.filter((f) => f.at > mark)
    if (fresh.length === 0) return
    for (const f of fresh) this.c.recordRollback(f.version)
    await writeFile(file, String(Math.max(...fresh.map((f) => f.at)))).catch((err) =>
      this.c.logger.warn({ err }, 'agent failure mark not written'),
    )
  }
}

async function exists(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => null)) !== null
}
