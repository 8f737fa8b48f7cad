/**
 * Readiness check of the systemd units (ExecStartPost): `node wait-ready.ts <data dir> [seconds]`
 * waits until the daemon started by this unit has written `<data>/node.json` (the same pid as
 * $MAINPID, so a stale file of a killed run does not count) and its API answers `GET /status` with
 * 200, then exits 0; exits 1 at the deadline, which fails the start (and Restart=on-failure retries).
 *
 * Why not Type=notify: sd_notify is a datagram on the unix socket $NOTIFY_SOCKET, and Node has no
 * unix datagram sockets without a native module; `systemd-notify` run as a child races with its own
 * exit (systemd may no longer find its cgroup). Type=exec + this check gives dependents the same
 * guarantee: the unit is "active" only once the API answers.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

const DEFAULT_WAIT_S = 90
const POLL_MS = 250
const REQUEST_TIMEOUT_MS = 2000

async function ready(dataDir: string, mainPid: number | undefined): Promise<boolean> {
  let info: { api?: unknown; pid?: unknown }
  try {
    info = JSON.parse(await readFile(join(dataDir, 'node.json'), 'utf8')) as { api?: unknown; pid?: unknown }
  } catch {
    return false
  }
  if (typeof info.api !== 'string' || !/^https?:\/\/[^/]+\/?$/.test(info.api)) return false
  if (mainPid !== undefined && info.pid !== mainPid) return false
  try {
    const res = await fetch(new URL('/status', info.api), { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    await res.body?.cancel()
    return res.status === 200
  } catch {
    return false
  }
}

const [dataDir, seconds] = process.argv.slice(2)
if (dataDir === undefined) {
  process.stderr.write('usage: wait-ready.ts <data dir> [seconds]\n')
  process.exit(2)
}
const pidText = process.env.MAINPID
const mainPid = pidText !== undefined && /^\d+$/.test(pidText) ? Number(pidText) : undefined
const deadline = Date.now() + Number(seconds ?? DEFAULT_WAIT_S) * 1000
while (!(await ready(dataDir, mainPid))) {
  if (Date.now() > deadline) {
    process.stderr.write(`llmesh: the daemon in ${dataDir} did not answer /status in time\n`)
    process.exit(1)
  }
  await new Promise((r) => setTimeout(r, POLL_MS))
}
