/**
 * Tells a kernel OOM kill of the inference worker from any other SIGKILL (an operator's `kill -9`,
 * a watchdog): only the first is `oom`, the second is a crash the supervisor restarts.
 *
 * How it works, per worker (watch(pid) right after the fork, oomKilled() once it died by SIGKILL):
 * 1. `cgroup`: the worker gets its own memory cgroup, a child `llmesh-worker-<pid>` of the
 *    daemon's own memory cgroup (or of `parent`), optionally with a memory limit. Its OOM-kill
 *    counter (v2 `memory.events` `oom_kill`, v1 `memory.oom_control` `oom_kill`) counts exactly the
 *    worker's OOM kills, by a cgroup limit or by the global OOM killer (the kernel raises it before
 *    it sends the SIGKILL). The cgroup is removed when the worker is gone.
 * 2. `shared-cgroup`: no child cgroup can be made (no write access, v2 controller not delegated),
 *    but the daemon's own cgroup has a counter: an increase since the worker was last seen alive
 *    (rebase() on each answered health check), with the worker dead by SIGKILL, is its OOM kill
 *    (the daemon is alive; another process sharing the cgroup would have to be OOM-killed within
 *    that health interval for a kill -9 to be mistaken for an OOM).
 * 3. `kernel-log`: no cgroup counter at all: the kernel's record in /dev/kmsg after the worker
 *    started, `Killed process <pid> (` or `oom-kill:…,pid=<pid>,` (needs CAP_SYSLOG or
 *    dmesg_restrict=0).
 * 4. `none`: nothing readable; a SIGKILL counts as a crash (a real OOM then repeats and ends as a
 *    restart loop, which rolls the version back locally all the same).
 * The file access is injectable (`OomSources`, oom-sources.ts) so unit tests run on fake trees.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../logger.ts'
import {
  CGROUP_RMDIR_RETRY_MS,
  CGROUP_RMDIR_TRIES,
  KMSG_RETRIES,
  KMSG_RETRY_MS,
  OOM_CGROUP_PREFIX,
} from './constants.ts'
import { type OomSources, realSources } from './oom-sources.ts'

export { type OomSources, realSources } from './oom-sources.ts'

/** How a worker's OOM kill is detected. */
export type OomMethod = 'cgroup' | 'shared-cgroup' | 'kernel-log' | 'none'

/** The watch over one worker process. */
export interface OomWatch {
  readonly method: OomMethod
  /** The worker's own cgroup directory (method `cgroup`). */
  readonly cgroup: string | undefined
  /** Whether the kernel OOM killer killed the worker (call once it exited by SIGKILL). */
  oomKilled(): Promise<boolean>
  /** The worker was seen alive: earlier increases of a shared counter are not its OOM kill. */
  rebase(): void
  /** Removes the worker's cgroup (once it exited). Idempotent. */
  dispose(): void
}

/** Options of the detector. */
export interface OomDetectorInit {
  /** Cgroup under which worker cgroups are made (default: the daemon's own memory cgroup). */
  parent?: string
  /** cgroup v1 memory controller mount. */
  v1Mount?: string
  /** cgroup2 mounts tried in order. */
  v2Mounts?: string[]
}

/** Watches inference workers for OOM kills. */
export interface OomDetector {
  watch(pid: number, opts?: { memoryLimitBytes?: number }): OomWatch
}

interface Counter {
  file: string
  version: 1 | 2
}

/** Reads the `oom_kill` line of a v2 memory.events or v1 memory.oom_control text. */
export function parseOomKill(text: string | undefined): number | undefined {
  const m = text === undefined ? null : /^oom_kill (\d+)$/m.exec(text)
  return m === null ? undefined : Number(m[1])
}

/** Whether a kernel log message records the OOM kill of `pid`. */
export function kmsgNamesOomKill(message: string, pid: number): boolean {
  return message.includes(`Killed process ${pid} (`) || new RegExp(`^oom-kill:.*[,:]pid=${pid}(,|$)`).test(message)
}

function kmsgSeq(record: string): number {
  return Number(record.split(',', 3)[1] ?? -1)
}

function counterFile(dir: string, version: 1 | 2): Counter {
  return { file: `${dir}/${version === 2 ? 'memory.events' : 'memory.oom_control'}`, version }
}

/** The daemon's own memory cgroup and how to reach it (from /proc/self/cgroup). */
export function locateOwnCgroup(
  src: OomSources,
  init: OomDetectorInit = {},
): { dir: string; version: 1 | 2 } | undefined {
  const lines = (src.read('/proc/self/cgroup') ?? '').split('\n')
  const v1 = lines.map((l) => l.split(':')).find((p) => p.length >= 3 && p[1].split(',').includes('memory'))
  if (v1 !== undefined) {
    const dir = `${init.v1Mount ?? '/sys/fs/cgroup/memory'}${v1.slice(2).join(':').replace(/\/$/, '')}`
    if (src.read(`${dir}/memory.oom_control`) !== undefined) return { dir, version: 1 }
  }
  const v2 = lines.find((l) => l.startsWith('0::'))
  if (v2 === undefined) return undefined
  for (const mount of init.v2Mounts ?? ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    const dir = `${mount}${v2.slice(3).replace(/\/$/, '')}`
    if ((src.read(`${dir}/cgroup.controllers`) ?? '').split(/\s+/).includes('memory')) return { dir, version: 2 }
  }
  return undefined
}

/** The detector over `src` (real files by default). */
export function createOomDetector(
  components: { logger?: Logger; sources?: OomSources } = {},
  init: OomDetectorInit = {},
): OomDetector {
  const src = components.sources ?? realSources()
  const own = locateOwnCgroup(src, init)
  const parent =
    init.parent !== undefined
      ? { dir: init.parent.replace(/\/$/, ''), version: src.read(`${init.parent}/memory.oom_control`) ? 1 : 2 }
      : own
  sweepStale(src, parent?.dir)
  let logged = false
  return {
    watch(pid, opts = {}) {
      const w = makeWatch(src, parent as { dir: string; version: 1 | 2 } | undefined, own, pid, opts)
      if (!logged) {
        logged = true
        components.logger?.info({ method: w.method, cgroup: w.cgroup }, 'inference worker OOM detection')
      }
      return w
    },
  }
}

let shared: OomDetector | undefined

/** One detector per process over the real files (the cgroup layout is probed once). */
export function sharedOomDetector(logger?: Logger): OomDetector {
  shared ??= createOomDetector({ logger })
  return shared
}

/**
 * Removes a dead worker's cgroup. Right after its last task died (an OOM kill above all) the
 * kernel may still refuse (EBUSY) for a moment: retried in the background, bounded.
 */
function removeSoon(src: OomSources, dir: string, tries = CGROUP_RMDIR_TRIES): void {
  if (src.rmdir(dir) || tries <= 1) return
  setTimeout(() => removeSoon(src, dir, tries - 1), CGROUP_RMDIR_RETRY_MS).unref()
}

/** Removes empty worker cgroups a crashed daemon left behind (non-empty ones refuse rmdir). */
function sweepStale(src: OomSources, dir: string | undefined): void {
  if (dir === undefined) return
  for (const name of src.list(dir)) if (name.startsWith(OOM_CGROUP_PREFIX)) src.rmdir(`${dir}/${name}`)
}

function makeWatch(
  src: OomSources,
  parent: { dir: string; version: 1 | 2 } | undefined,
  own: { dir: string; version: 1 | 2 } | undefined,
  pid: number,
  opts: { memoryLimitBytes?: number },
): OomWatch {
  const mine = parent === undefined ? undefined : ownCgroup(src, parent, pid, opts.memoryLimitBytes)
  if (mine !== undefined) {
    const c = counterFile(mine, parent!.version)
    const before = parseOomKill(src.read(c.file)) ?? 0
    let disposed = false
    return {
      method: 'cgroup',
      cgroup: mine,
      oomKilled: async () => (parseOomKill(src.read(c.file)) ?? 0) > before,
      rebase: () => {},
      dispose: () => {
        if (disposed) return
        disposed = true
        removeSoon(src, mine)
      },
    }
  }
  if (own !== undefined) {
    const c = counterFile(own.dir, own.version)
    let before = parseOomKill(src.read(c.file))
    if (before !== undefined) {
      return {
        method: 'shared-cgroup',
        cgroup: undefined,
        oomKilled: async () => (parseOomKill(src.read(c.file)) ?? before!) > before!,
        rebase: () => {
          before = parseOomKill(src.read(c.file)) ?? before
        },
        dispose: () => {},
      }
    }
  }
  const records = src.kmsg()
  if (records !== undefined) {
    const since = records.length > 0 ? kmsgSeq(records[records.length - 1]) : -1
    return {
      method: 'kernel-log',
      cgroup: undefined,
      oomKilled: async () => {
        // the kernel prints its record just after sending the SIGKILL: allow it a moment
        for (let i = 0; i <= KMSG_RETRIES; i++) {
          const found = (src.kmsg() ?? []).some(
            (r) => kmsgSeq(r) > since && kmsgNamesOomKill(r.slice(r.indexOf(';') + 1), pid),
          )
          if (found) return true
          if (i < KMSG_RETRIES) await sleep(KMSG_RETRY_MS)
        }
        return false
      },
      rebase: () => {},
      dispose: () => {},
    }
  }
  return { method: 'none', cgroup: undefined, oomKilled: async () => false, rebase: () => {}, dispose: () => {} }
}

/** Makes the worker's own cgroup and moves it there; undefined (nothing left behind) on failure. */
function ownCgroup(
  src: OomSources,
  parent: { dir: string; version: 1 | 2 },
  pid: number,
  limit: number | undefined,
): string | undefined {
  if (parent.version === 2) {
    const sub = (src.read(`${parent.dir}/cgroup.subtree_control`) ?? '').split(/\s+/)
    if (!sub.includes('memory') && !src.write(`${parent.dir}/cgroup.subtree_control`, '+memory')) return undefined
  }
  const dir = `${parent.dir}/${OOM_CGROUP_PREFIX}${pid}`
  if (!src.mkdir(dir)) return undefined
  const limitFile = parent.version === 2 ? 'memory.max' : 'memory.limit_in_bytes'
  const ok =
    src.read(counterFile(dir, parent.version).file) !== undefined &&
    (limit === undefined || src.write(`${dir}/${limitFile}`, String(limit))) &&
    src.write(`${dir}/cgroup.procs`, String(pid))
  if (ok) return dir
  src.rmdir(dir)
  return undefined
}
