/**
 * Benchmarks run daemons as the package's launcher does (packaging/llmesh: its Node flags and
 * MALLOC_ARENA_MAX, packaging/constants.ts `launcherSettings`), so a figure is what a device gets.
 * A benchmark whose own process plays a daemon (bench/distribution.ts: the seed) re-runs itself
 * under those settings.
 */
import { spawnSync } from 'node:child_process'
import { DAEMON_NODE_FLAGS, launcherSettings } from '../packaging/constants.ts'

const MARK = 'LLMESH_BENCH_AS_DAEMON'

/** Node flags and environment of a daemon process (`node start`). */
export function daemonSettings(): { flags: string[]; env: Record<string, string> } {
  return launcherSettings(['node', 'start'])
}

/**
 * Unless this process already runs with the daemon's settings (or `raw`), runs `script` again with
 * them, the same arguments and stdio, and exits with its status; returns in the process that runs
 * with them.
 */
export function runAsDaemon(script: string, raw: boolean): void {
  if (raw || process.env[MARK] === '1') return
  if (DAEMON_NODE_FLAGS.every((f) => process.execArgv.includes(f))) return
  const { flags, env } = daemonSettings()
  const r = spawnSync(process.execPath, [...process.execArgv, ...flags, script, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, ...env, [MARK]: '1' },
  })
  process.exit(r.status ?? 1)
}
