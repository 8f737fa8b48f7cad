/**
 * What a process and its children hold, from /proc (Linux): RSS split into anonymous memory
 * (heap, private: what the process really costs) and file pages (the node binary and native
 * modules' code: shared between processes of one binary, and dropped by the kernel under
 * pressure), and CPU time, so benchmarks can print memory and CPU share over a window.
 */
import { readFile } from 'node:fs/promises'

/** Memory of one process, bytes. */
export interface ProcMemory {
  pid: number
  rss: number
  rssAnon: number
  rssFile: number
}

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ: 100 on Linux). */
const TICKS_PER_S = 100

/** The memory of `pid` from /proc/<pid>/status (undefined once it is gone). */
export async function memoryOf(pid: number): Promise<ProcMemory | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const kb = (key: string) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? 0) * 1024
    return { pid, rss: kb('VmRSS'), rssAnon: kb('RssAnon'), rssFile: kb('RssFile') + kb('RssShmem') }
  } catch {
    return undefined
  }
}

/** Direct children of `pid`. */
export async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
  return text.trim().split(/\s+/).filter(Boolean).map(Number)
}

/** CPU seconds (user + system) `pid` has used so far (0 once it is gone). */
export async function cpuSecondsOf(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // after "pid (comm) ": state is field 3, utime 14, stime 15 (1-based) → indexes 11 and 12
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_S
  } catch {
    return 0
  }
}

/** CPU use of `pid` over `ms`, as a percentage of one core. */
export async function cpuPercentOver(pid: number, ms: number): Promise<number> {
  const t0 = performance.now()
  const c0 = await cpuSecondsOf(pid)
  await new Promise((r) => setTimeout(r, ms))
  const c1 = await cpuSecondsOf(pid)
  return ((c1 - c0) / ((performance.now() - t0) / 1000)) * 100
}

/** MiB, one decimal. */
export function mib(bytes: number | undefined): string {
  return bytes === undefined ? '—' : (bytes / 2 ** 20).toFixed(1)
}
