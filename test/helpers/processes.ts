/**
 * Processes as the kernel sees them, for tests that check which child processes exist (the
 * inference worker lives only while a model is served): reads /proc, so Linux only.
 */
import { readdir, readFile } from 'node:fs/promises'

/** The live children of `parent` whose command line contains `match` (zombies excluded). */
export async function childPids(match: string, parent = process.pid): Promise<number[]> {
  const out: number[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8')
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(ppid) !== parent || state === 'Z') continue
      const cmd = (await readFile(`/proc/${name}/cmdline`, 'utf8')).replaceAll('\0', ' ')
      if (cmd.includes(match)) out.push(Number(name))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

/** The inference workers (node/inference/worker.ts) this process runs. */
export function workerPids(parent = process.pid): Promise<number[]> {
  return childPids('node/inference/worker.ts', parent)
}

/** Whether a process with this pid exists (a zombie counts as gone). */
export async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}
