/**
 * Parent-side handle of one inference worker child process: spawns it, sends typed messages,
 * matches replies, keeps a short stderr tail and classifies how it exited.
 *
 * Exit kinds: 'stopped' (we asked), 'timeout' (we killed it for not answering), 'oom' (the kernel
 * OOM killer killed it, as the OomDetector of oom-detector.ts tells, or it died with out-of-memory
 * text on stderr), 'crash' (anything else: abort(), segfault, non-zero exit, unexpected exit 0,
 * and a SIGKILL from anyone but the OOM killer, e.g. an operator's `kill -9`).
 *
 * Right after the fork the child's /proc/<pid>/oom_score_adj is raised (WORKER_OOM_SCORE_ADJ by
 * default): under memory pressure the kernel then kills the worker, whose death the supervisor
 * sees and counts, rather than the daemon (raising needs no privilege; a failure is logged).
 */
import { type ChildProcess, fork } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import type { Logger } from '../logger.ts'
import { siblingModule } from '../module-path.ts'
import type { FromWorker, ToWorker } from './ipc.ts'
import type { OomDetector, OomMethod, OomWatch } from './oom-detector.ts'

/** How the worker process ended. */
export type WorkerExitKind = 'stopped' | 'crash' | 'oom' | 'timeout'

/** Why we killed the worker ourselves, if we did. */
export type KillReason = 'stop' | 'timeout'

/** Details of a worker exit. */
export interface WorkerExit {
  kind: WorkerExitKind
  code: number | null
  signal: NodeJS.Signals | null
  /** Last lines of the worker's stderr (llama.cpp messages; never prompts). */
  stderrTail: string
}

const OOM_TEXT = /out of memory|failed to allocate|std::bad_alloc|cannot allocate memory|oom-kill/i
const STDERR_TAIL_BYTES = 8 * 1024
const WORKER_PATH = siblingModule(import.meta.url, './worker')

/** Classifies a worker exit (pure). */
export function classifyExit(e: {
  code: number | null
  signal: NodeJS.Signals | null
  killReason: KillReason | undefined
  stderrTail: string
  /** The kernel's OOM killer killed it (from the OomDetector). */
  oomKilled?: boolean
}): WorkerExitKind {
  if (e.killReason === 'stop') return 'stopped'
  if (e.killReason === 'timeout') return 'timeout'
  if (e.oomKilled === true || OOM_TEXT.test(e.stderrTail)) return 'oom'
  return 'crash'
}

/** Options of a worker process. */
export interface WorkerProcessInit {
  /** Deadline for the child to start node-llama-cpp and say 'ready'. */
  startTimeoutMs: number
  /** Memory limit of the worker's own cgroup, when the OomDetector can make one. */
  memoryLimitBytes?: number
  /** The child's oom_score_adj (-1000..1000), set right after the fork; undefined: inherited. */
  oomScoreAdj?: number
}

function checkOomScoreAdj(adj: number): void {
  if (!Number.isInteger(adj) || adj < -1000 || adj > 1000) {
    throw new RangeError(`oom_score_adj ${adj} is not an integer in -1000..1000`)
  }
}

/**
 * Writes /proc/<pid>/oom_score_adj and reads it back: the value now in force, or undefined when
 * the write failed (no procfs, or lowering it without CAP_SYS_RESOURCE).
 */
export function setOomScoreAdj(pid: number, adj: number): number | undefined {
  checkOomScoreAdj(adj)
  const file = `/proc/${pid}/oom_score_adj`
  try {
    writeFileSync(file, String(adj))
    return Number(readFileSync(file, 'utf8').trim())
  } catch {
    return undefined
  }
}

/** What a worker process uses. */
export interface WorkerProcessComponents {
  logger: Logger
  /** Tells the kernel's OOM kills from other SIGKILLs; without it every SIGKILL is a crash. */
  oom?: OomDetector
}

/** Events of a worker process. */
export interface WorkerProcessEvents {
  message: [FromWorker]
  exit: [WorkerExit]
}

/** One worker child process. Single use: after it exits, make a new one. */
export class WorkerProcess extends EventEmitter<WorkerProcessEvents> {
  private readonly init: WorkerProcessInit
  private readonly logger: Logger
  private readonly oom: OomDetector | undefined
  private oomWatch: OomWatch | undefined
  private child: ChildProcess | undefined
  private killReason: KillReason | undefined
  private stderrTail = ''
  private adj: number | undefined
  private exited: Promise<WorkerExit> | undefined
  /** Set once the child exited. */
  exit: WorkerExit | undefined

  constructor(components: WorkerProcessComponents, init: WorkerProcessInit) {
    super()
    if (init.oomScoreAdj !== undefined) checkOomScoreAdj(init.oomScoreAdj)
    this.init = init
    this.logger = components.logger
    this.oom = components.oom
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  get alive(): boolean {
    return this.child !== undefined && this.exit === undefined
  }

  /** Spawns the child and resolves once node-llama-cpp is up inside it. */
  async start(): Promise<{ pid: number; cpuMathCores: number }> {
    if (this.child !== undefined) throw new Error('worker already started')
    const child = fork(WORKER_PATH, [], {
      execPath: process.execPath,
      execArgv: ['--disable-warning=ExperimentalWarning'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    })
    this.child = child
    if (child.pid !== undefined && this.init.oomScoreAdj !== undefined) {
      this.adj = setOomScoreAdj(child.pid, this.init.oomScoreAdj)
      if (this.adj !== this.init.oomScoreAdj) {
        this.logger.warn(
          { pid: child.pid, wanted: this.init.oomScoreAdj, got: this.adj },
          'could not set the inference worker oom_score_adj: under memory pressure the kernel may kill the daemon instead',
        )
      }
    }
    if (child.pid !== undefined) {
      this.oomWatch = this.oom?.watch(child.pid, { memoryLimitBytes: this.init.memoryLimitBytes })
    }
    child.stdout?.resume() // llama.cpp may print; never block on a full pipe
    child.stderr?.on('data', (b: Buffer) => {
      this.stderrTail = (this.stderrTail + b.toString('utf8')).slice(-STDERR_TAIL_BYTES)
    })
    child.on('message', (m: FromWorker) => this.emit('message', m))
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        void this.classify(code, signal).then((exit) => {
          this.exit = exit
          this.emit('exit', exit)
          resolve(exit)
        })
      })
    })
    child.on('error', (err) => this.logger.warn({ err: err.message }, 'inference worker process error'))
    try {
      const ready = await this.waitFor((m) => m.type === 'ready', this.init.startTimeoutMs, 'start')
      if (ready.type !== 'ready') throw new Error('unreachable')
      return { pid: ready.pid, cpuMathCores: ready.cpuMathCores }
    } catch (err) {
      this.kill('timeout')
      throw err
    }
  }

  /** How the child ended; asks the OomDetector only about a SIGKILL we did not send. */
  private async classify(code: number | null, signal: NodeJS.Signals | null): Promise<WorkerExit> {
    const watch = this.oomWatch
    let oomKilled = false
    if (signal === 'SIGKILL' && this.killReason === undefined && watch !== undefined) {
      oomKilled = await watch.oomKilled().catch(() => false)
      if (oomKilled) this.logger.warn({ method: watch.method }, 'the kernel OOM killer killed the inference worker')
    }
    watch?.dispose()
    const kind = classifyExit({ code, signal, killReason: this.killReason, stderrTail: this.stderrTail, oomKilled })
    return { kind, code, signal, stderrTail: this.stderrTail.split('\n').slice(-12).join('\n').trim() }
  }

  /** The oom_score_adj set on the child after its fork (undefined: not set, or the write failed). */
  get oomScoreAdj(): number | undefined {
    return this.adj
  }

  /** How an OOM kill of this worker would be told from another SIGKILL. */
  get oomMethod(): OomMethod | undefined {
    return this.oomWatch?.method
  }

  /** The worker answered (health check): an OOM kill counted before now was not its own. */
  seenAlive(): void {
    if (this.alive) this.oomWatch?.rebase()
  }

  /** Sends a message; false when the worker is gone. */
  send(msg: ToWorker): boolean {
    if (!this.alive || this.child?.connected !== true) return false
    try {
      this.child.send(msg)
      return true
    } catch {
      return false
    }
  }

  /**
   * Waits for the first message matching `match`. Rejects on timeout or if the worker exits first
   * (the error then carries `exit`).
   */
  waitFor(match: (m: FromWorker) => boolean, timeoutMs: number, what: string): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: FromWorker): void => {
        if (!match(m)) return
        cleanup()
        resolve(m)
      }
      const onExit = (exit: WorkerExit): void => {
        cleanup()
        reject(Object.assign(new Error(`worker exited during ${what} (${exit.kind})`), { exit }))
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(Object.assign(new Error(`worker ${what} timed out after ${timeoutMs} ms`), { timeout: true }))
      }, timeoutMs)
      const cleanup = (): void => {
        clearTimeout(timer)
        this.off('message', onMessage)
        this.off('exit', onExit)
      }
      if (this.exit !== undefined) {
        onExit(this.exit)
        return
      }
      this.on('message', onMessage)
      this.on('exit', onExit)
    })
  }

  /** SIGKILLs the worker, remembering why (so the exit is not mistaken for an OOM kill). */
  kill(reason: KillReason): void {
    if (!this.alive) return
    this.killReason ??= reason
    this.child?.kill('SIGKILL')
  }

  /** Asks the worker to shut down; SIGKILL after `timeoutMs`. Resolves once it has exited. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.child === undefined || this.exited === undefined) return
    if (this.alive) {
      this.killReason ??= 'stop'
      if (!this.send({ type: 'shutdown' })) this.child.kill('SIGKILL')
      const timer = setTimeout(() => this.child?.kill('SIGKILL'), timeoutMs)
      await this.exited
      clearTimeout(timer)
    }
  }

  /** Resolves when the child has exited. */
  async exitedPromise(): Promise<WorkerExit | undefined> {
    return this.exited
  }
}
