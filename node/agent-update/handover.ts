/**
 * The one-process steady state of a device (`agent_handover`, set by the device unit): when no new
 * agent version is on probation, `llmesh agent run` does not stay up beside the daemon as its
 * parent; it replaces itself with the daemon (`process.execve`: same PID, so the unit's main process
 * is the daemon and systemd's `Restart=` supervises it directly). The daemon it hands over to gets,
 * beside `LLMESH_AGENT_VERSION` and `LLMESH_AGENT_READY_FILE`, the command line of the wrapper to
 * come back to (`AGENT_HANDBACK_ENV`, JSON): when its updater switches `current`, the daemon stops
 * and execs that wrapper (its own version's `bin/llmesh agent run …`) instead of exiting with
 * `AGENT_RESTART_EXIT_CODE`, and the wrapper watches the new version through its health window as
 * before. Should that exec fail, the daemon exits with `AGENT_RESTART_EXIT_CODE` and the unit
 * (`RestartForceExitStatus=75`) restarts the wrapper. Measured: 48 MiB RSS less per device
 * (docs/benchmarks.md, "Idle footprint of a device", fourth pass).
 */

/** The wrapper's command line a handed-over daemon execs when it switched versions (JSON array: file, then argv). */
export const AGENT_HANDBACK_ENV = 'LLMESH_AGENT_HANDBACK'
/** Variables the wrapper sets for the agent, dropped before the wrapper runs again (it sets them anew). */
const WRAPPER_SET = ['LLMESH_AGENT_VERSION', 'LLMESH_AGENT_READY_FILE', AGENT_HANDBACK_ENV]

/** Replaces the process with `file` (argv[0] = file), as execve(2); never returns on success. */
export type Exec = (file: string, args: string[], env: NodeJS.ProcessEnv) => never

/** `process.execve` (Node ≥ 22.15). */
export const processExec: Exec = (file, args, env) => {
  const execve = (process as { execve?: (f: string, a: string[], e: NodeJS.ProcessEnv) => never }).execve
  if (typeof execve !== 'function') throw new Error('process.execve is not available in this Node')
  return execve(file, args, env)
}

/** The wrapper's command line in the agent's environment, or null (not handed over, or malformed). */
export function handbackOf(env: NodeJS.ProcessEnv): string[] | null {
  const text = env[AGENT_HANDBACK_ENV]
  if (text === undefined || text === '') return null
  try {
    const v = JSON.parse(text) as unknown
    return Array.isArray(v) && v.length > 0 && v.every((a) => typeof a === 'string' && !a.includes('\0'))
      ? (v as string[])
      : null
  } catch {
    return null
  }
}

/** The environment without what the wrapper sets for its agent. */
export function withoutWrapperEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env }
  for (const k of WRAPPER_SET) delete out[k]
  return out
}

/**
 * Called by a daemon that switched versions, after it stopped: execs the wrapper it was handed
 * over by, if any. Returns false when there is none (the caller exits with
 * `AGENT_RESTART_EXIT_CODE`); throws when the exec fails.
 */
export function handBack(env: NodeJS.ProcessEnv = process.env, exec: Exec = processExec): boolean {
  const argv = handbackOf(env)
  if (argv === null) return false
  exec(argv[0], argv, withoutWrapperEnv(env))
}
