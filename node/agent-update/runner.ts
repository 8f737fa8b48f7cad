/**
 * AgentRunner (`llmesh agent run`): the supervisor wrapper that runs `<root>/current/bin/llmesh`
 * with the given arguments and keeps a device on an agent that works, with no operator and no
 * network. How it works, one loop:
 * 1. resolve `current` to a version V and start V's launcher, with `LLMESH_AGENT_VERSION=V` and
 *    `LLMESH_AGENT_READY_FILE=<root>/.agent-ready-<pid>` (a started daemon writes that file:
 *    node/agent-update/ready.ts);
 * 2. when a pending switch names V (written by the updater before it switched), V is on probation:
 *    it must write the ready file within the health window. If it exits first or the window ends,
 *    it is stopped, `current` is switched back to the previous version (atomic rename), the
 *    failure `{ version, reason, at }` is recorded under the root (the previous version's next
 *    health reports carry it, and its updater never takes V again) and the previous version is
 *    started. Once ready, the switch is confirmed (the pending record is removed);
 * 3. an exit with `AGENT_RESTART_EXIT_CODE` (the updater switched `current`) starts the loop again
 *    at once; any other exit of a confirmed version restarts it after a short delay;
 * 4. SIGTERM/SIGINT are passed to the child, and the wrapper exits when it has.
 * With `handover` (the device unit's `agent_handover`), step 1 for a version that is not on
 * probation is an exec instead of a child: the wrapper becomes the daemon (same PID; the unit's
 * `Restart=` restarts it if it exits), so a steady-state device runs one process; the daemon execs
 * the wrapper again when it switches versions (node/agent-update/handover.ts). A version on
 * probation still runs as the wrapper's child, watched as above; after a rollback the previous
 * version is exec'd; a confirmed one runs on as the child until it exits, then it is exec'd.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { lstat, rm } from 'node:fs/promises'
import { join } from 'node:path'
import {
  AGENT_ENTRY,
  AGENT_HEALTH_WINDOW_MS,
  AGENT_RESTART_EXIT_CODE,
  CHILD_KILL_GRACE_MS,
  CRASH_RESTART_DELAY_MS,
  READY_POLL_MS,
} from './constants.ts'
import { AGENT_HANDBACK_ENV, type Exec, processExec, withoutWrapperEnv } from './handover.ts'
import { readCurrent, readPending, recordFailure, switchCurrent, writePending } from './layout.ts'

/** Environment variables the wrapper gives the agent (options `agent_version`, `agent_ready_file`). */
export const AGENT_VERSION_ENV = 'LLMESH_AGENT_VERSION'
export const AGENT_READY_ENV = 'LLMESH_AGENT_READY_FILE'

/**
 * The log the runner writes: a pino Logger fits, and so does the supervisor's own small logger
 * (node/agent-update/log.ts), which keeps pino out of `llmesh agent run`.
 */
export interface AgentLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/** What the runner uses. */
export interface AgentRunnerComponents {
  logger: AgentLog
  /** How the wrapper hands over to the daemon (default `process.execve`). */
  exec?: Exec
}

/** Options. */
export interface AgentRunnerInit {
  root: string
  /** Arguments of the launcher (e.g. `node start --config /etc/llmesh/llmesh.yaml`). */
  args: string[]
  /** Probation of a new version, ms (default `AGENT_HEALTH_WINDOW_MS`). */
  healthWindowMs?: number
  /** Extra environment of the child (default: the wrapper's own). */
  env?: NodeJS.ProcessEnv
  /**
   * Exec a version that is not on probation instead of running it as a child (option
   * `agent_handover`): `handback` is the wrapper's own argv after the launcher (`agent run …`),
   * which the daemon execs when it switches versions.
   */
  handover?: { handback: string[] }
}

type Outcome =
  | { kind: 'exit'; code: number | null; signal: NodeJS.Signals | null }
  | { kind: 'ready' }
  | { kind: 'timeout' }

/** The wrapper. */
export class AgentRunner {
  private readonly c: AgentRunnerComponents
  private readonly init: AgentRunnerInit
  private child: ChildProcess | null = null
  private stopping = false
  /** Versions rolled back since start (for tests and logs). */
  readonly rollbacks: string[] = []

  constructor(components: AgentRunnerComponents, init: AgentRunnerInit) {
    this.c = components
    this.init = init
  }

  /** Runs until stopped; resolves with the last child's exit code. */
  async run(): Promise<number> {
    let last = 0
    while (!this.stopping) {
      const version = await readCurrent(this.init.root)
      if (version === null) throw new Error(`${join(this.init.root, 'current')} names no version`)
      const pending = await readPending(this.init.root)
      const probation = pending !== null && pending.version === version
      const readyFile = join(this.init.root, `.agent-ready-${process.pid}`)
      await rm(readyFile, { force: true })
      if (this.stopping) break // a signal came while the records were read: start nothing
      if (!probation && this.init.handover !== undefined) this.handOver(version, readyFile)
      const child = this.start(version, readyFile)
      // a launcher that cannot be started (missing, not executable) emits 'error' and maybe no 'exit'
      const exited = new Promise<Outcome>((resolve) => {
        child.once('exit', (code, signal) => resolve({ kind: 'exit', code, signal }))
        child.once('error', () => resolve({ kind: 'exit', code: null, signal: null }))
      })
      let outcome = probation ? await Promise.race([exited, this.readiness(readyFile, child)]) : await exited
      if (probation && pending !== null) {
        if (outcome.kind === 'ready') {
          await writePending(this.init.root, null)
          this.c.logger.info({ version }, 'agent version confirmed healthy')
          outcome = await exited
        } else if (!this.stopping) {
          const reason =
            outcome.kind === 'timeout'
              ? `not ready within ${this.window()} ms`
              : `exited before ready (code ${outcome.code ?? '-'}, signal ${outcome.signal ?? '-'})`
          await this.kill(child, exited)
          await switchCurrent(this.init.root, pending.previous)
          await recordFailure(this.init.root, { version, reason, at: Date.now() })
          await writePending(this.init.root, null)
          this.rollbacks.push(version)
          this.c.logger.warn({ version, previous: pending.previous, reason }, 'agent version rolled back')
          continue
        }
      }
      if (outcome.kind !== 'exit') continue
      last = outcome.code ?? 1
      if (this.stopping) break
      if (outcome.code === AGENT_RESTART_EXIT_CODE) continue
      this.c.logger.warn({ version, code: outcome.code, signal: outcome.signal }, 'agent exited: restarting')
      await new Promise((r) => setTimeout(r, CRASH_RESTART_DELAY_MS))
    }
    return last
  }

  /** Passes `signal` to the child and ends the loop once it exits. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.stopping = true
    this.child?.kill(signal)
  }

  private window(): number {
    return this.init.healthWindowMs ?? AGENT_HEALTH_WINDOW_MS
  }

  private env(version: string, readyFile: string): NodeJS.ProcessEnv {
    const base = withoutWrapperEnv(this.init.env ?? process.env)
    return { ...base, [AGENT_VERSION_ENV]: version, [AGENT_READY_ENV]: readyFile }
  }

  /** Replaces this process with `version`'s daemon; returns only if the exec failed (then it runs as a child). */
  private handOver(version: string, readyFile: string): void {
    const entry = join(this.init.root, version, AGENT_ENTRY)
    const handback = [entry, ...(this.init.handover?.handback ?? [])]
    this.c.logger.info({ version, entry, handover: true }, 'starting agent')
    try {
      ;(this.c.exec ?? processExec)(entry, [entry, ...this.init.args], {
        ...this.env(version, readyFile),
        [AGENT_HANDBACK_ENV]: JSON.stringify(handback),
      })
    } catch (err) {
      this.c.logger.error({ err, version }, 'agent exec failed: running it as a child')
    }
  }

  private start(version: string, readyFile: string): ChildProcess {
    const entry = join(this.init.root, version, AGENT_ENTRY)
    this.c.logger.info({ version, entry }, 'starting agent')
    const child = spawn(entry, this.init.args, { stdio: 'inherit', env: this.env(version, readyFile) })
    child.on('error', (err) => this.c.logger.error({ err, version }, 'agent failed to start'))
    this.child = child
    return child
  }

  /** Resolves `ready` once the file exists, or `timeout` after the window (never while the child lives on its own). */
  private readiness(file: string, child: ChildProcess): Promise<Outcome> {
    const deadline = Date.now() + this.window()
    return new Promise((resolve) => {
      const tick = async () => {
        if (child.exitCode !== null || child.signalCode !== null) return // the exit wins the race
        if ((await lstat(file).catch(() => null)) !== null) return resolve({ kind: 'ready' })
        if (Date.now() >= deadline) return resolve({ kind: 'timeout' })
        setTimeout(tick, READY_POLL_MS)
      }
      void tick()
    })
  }

  private async kill(child: ChildProcess, exited: Promise<Outcome>): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
    child.kill('SIGTERM')
    const force = setTimeout(() => child.kill('SIGKILL'), CHILD_KILL_GRACE_MS)
    await exited
    clearTimeout(force)
  }
}
