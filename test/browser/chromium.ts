/**
 * Debian's Chromium driven by playwright-core (no browser download: `/usr/bin/chromium` from
 * `apt-get install chromium`, which .ci/run does). Headless, no sandbox (root), no network
 * beyond what the page asks for, a fresh profile per launch.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium } from 'playwright-core'
import { childPids } from '../helpers/processes.ts'

/** Where Debian installs Chromium. */
export const CHROMIUM = '/usr/bin/chromium'

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/**
 * True when Chromium is there. Without it: skipped with a message, except under CI=true, where a
 * skipped browser tier would hide a broken install step, so it throws.
 */
export function canRunBrowser(): boolean {
  if (existsSync(CHROMIUM)) return true
  const why = `needs ${CHROMIUM} (Debian package chromium)`
  if (process.env.CI === 'true') throw new Error(`CI=true but the browser tests cannot run: ${why}`)
  process.stderr.write(`# browser tests skipped: ${why}\n`)
  return false
}

/** How long closing the browser may take before its processes are killed. */
const CLOSE_TIMEOUT_MS = 15_000

/** A running browser with its own profile directory. */
export interface TestBrowser {
  context: BrowserContext
  /**
   * Closes the browser and removes its profile. A close that hangs (a known class of playwright and
   * Chromium issues) is ended after 15 s by killing the browser's process group, reported on stderr,
   * so that a test file's after-hook cannot wait forever.
   */
  close(): Promise<void>
}

/** Launches Chromium with a fresh user-data-dir. */
export async function launchBrowser(): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'llmesh-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1400, height: 1000 },
  })
  return {
    context,
    async close() {
      let timer: NodeJS.Timeout | undefined
      const closed = await Promise.race([
        context.close().then(
          () => true,
          () => true,
        ),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), CLOSE_TIMEOUT_MS)
        }),
      ])
      clearTimeout(timer)
      if (!closed) {
        // playwright starts Chromium as a process-group leader, its profile dir on its command line
        const pids = await childPids(profile)
        process.stderr.write(`# chromium did not close within ${CLOSE_TIMEOUT_MS} ms: killing ${pids.join(', ')}\n`)
        for (const pid of pids) {
          for (const target of [-pid, pid]) {
            try {
              process.kill(target, 'SIGKILL')
              break
            } catch {
              // not a group leader, or already gone
            }
          }
        }
      }
      await rm(profile, { recursive: true, force: true })
    },
  }
}
