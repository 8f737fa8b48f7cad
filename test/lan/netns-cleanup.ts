/**
 * Cleanup of LAN test beds: every namespace a bed made is deleted on destroy(), on process exit and
 * on SIGINT/SIGTERM (beds register here), and leftovers of crashed runs are swept by name prefix
 * and dead owner pid before a new bed is built. Also: whether this machine can run a bed at all.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Name prefix of everything a test bed creates. */
export const NETNS_PREFIX = 'llmt-'

/** What the exit hook destroys: the beds alive in this process. */
interface Destroyable {
  destroySync(): void
}

const live = new Set<Destroyable>()
let hooked = false

/** Tracks a bed so that process exit and SIGINT/SIGTERM destroy it; installs the hooks once. */
export function trackBed(bed: Destroyable): void {
  live.add(bed)
  hookExit()
}

/** Stops tracking a destroyed bed. */
export function untrackBed(bed: Destroyable): void {
  live.delete(bed)
}

function hookExit(): void {
  if (hooked) return
  hooked = true
  process.on('exit', () => {
    for (const bed of live) bed.destroySync()
  })
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const bed of live) bed.destroySync()
      process.kill(process.pid, sig)
    })
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function listNamespaces(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim().split(' ')[0])
      .filter((n) => n !== undefined && n !== '')
  } catch {
    return []
  }
}

function killNamespacePids(ns: string): void {
  let pids: number[] = []
  try {
    pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      .split('\n')
      .map((p) => Number(p.trim()))
      .filter((p) => p > 0)
  } catch {
    return
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

/** Kills what runs in namespace `ns` and deletes it (gone already: nothing). */
export function deleteNamespace(ns: string): void {
  killNamespacePids(ns)
  try {
    execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' })
  } catch {
    // already gone
  }
}

/**
 * Deletes namespaces left by crashed runs (prefix match, owner pid dead), and the log directories
 * of finished runs (kept after a run for inspection until the next run). Returns the namespaces.
 */
export function sweepStale(): string[] {
  const out: string[] = []
  for (const d of readdirSync(tmpdir())) {
    const m = /^llmesh-lan-(\d+)-/.exec(d)
    if (m !== null && !pidAlive(Number(m[1]))) rmSync(join(tmpdir(), d), { recursive: true, force: true })
  }
  for (const ns of listNamespaces()) {
    const m = /^llmt-(\d+)-/.exec(ns)
    if (m === null) continue
    if (pidAlive(Number(m[1]))) continue
    deleteNamespace(ns)
    out.push(ns)
  }
  return out
}

/** Whether the kernel has sch_netem (delay/loss shaping); checked in a throwaway namespace. */
export function netemAvailable(): boolean {
  const ns = `${NETNS_PREFIX}${process.pid}-probe`
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'ignore' })
    execFileSync('ip', ['-n', ns, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'a1'], { stdio: 'ignore' })
    execFileSync('tc', ['-n', ns, 'qdisc', 'add', 'dev', 'a0', 'root', 'netem', 'delay', '1ms'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  } finally {
    deleteNamespace(ns)
  }
}

/** Whether the machine can run the bed (root and `ip netns`). */
export function canRunBed(): boolean {
  let why: string | undefined
  if (process.getuid?.() !== 0) why = 'needs root'
  else {
    try {
      execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' })
    } catch {
      why = 'needs `ip netns` (Debian iproute2)'
    }
  }
  if (why === undefined) return true
  // Under CI the LAN tier must run: a skipped tier would hide a broken install step.
  if (process.env.CI === 'true') throw new Error(`CI=true but the LAN test bed cannot run: ${why}`)
  process.stderr.write(`# LAN test bed skipped: ${why}\n`)
  return false
}
