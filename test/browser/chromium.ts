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

/** A running browser with its own profile directory. */
export interface TestBrowser {
  context: BrowserContext
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
      await context.close().catch(() => {})
      await rm(profile, { recursive: true, force: true })
    },
  }
}
