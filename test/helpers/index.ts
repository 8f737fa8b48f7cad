/**
 * The shared test kit: deadlines scaled for a loaded machine, condition waits, temporary
 * directories removed by `t.after`, and the `llmesh` CLI as a child process.
 *
 * Deadlines. Every wait in the mesh and LAN tiers is on a condition, never a fixed sleep, and its
 * deadline goes through `scaled()`: the suite must pass on 2 cores with a CPU hog beside it, where
 * a process start or a gossip round can take several times longer than on an idle machine. Waits
 * return as soon as their condition holds, so a generous deadline costs nothing when things work.
 * `LLMESH_TEST_SLOWDOWN` sets the factor (default 3).
 */
import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, type TestContext } from 'node:test'
import { canonicalBytes, fromBase64, toBase64 } from '../../protocols/index.ts'

/** How much longer than on an idle machine a deadline may take (env `LLMESH_TEST_SLOWDOWN`, default 3). */
export const SLOWDOWN = (() => {
  const v = Number(process.env.LLMESH_TEST_SLOWDOWN)
  return Number.isFinite(v) && v >= 1 ? v : 3
})()

/** A deadline of `ms` on an idle machine, scaled for a loaded one. */
export function scaled(ms: number): number {
  return Math.round(ms * SLOWDOWN)
}

/** Options of `waitFor`. */
export interface WaitOptions {
  /** Deadline on an idle machine, ms (scaled by `SLOWDOWN`; default 10 s). */
  timeoutMs?: number
  /** What is awaited, for the error message. */
  what?: string
  /** What the state was when the deadline passed, for the error message (so a CI log says why). */
  detail?: () => unknown
  /** Poll interval, ms (default 25). */
  intervalMs?: number
}

/** Polls `check` until it returns true; throws once the scaled deadline has passed. */
export async function waitFor(check: () => boolean | Promise<boolean>, opts: WaitOptions = {}): Promise<void> {
  const timeoutMs = scaled(opts.timeoutMs ?? 10_000)
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() >= end) {
      const detail = opts.detail === undefined ? '' : ` (${JSON.stringify(await opts.detail())})`
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'condition'}${detail}`)
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 25))
  }
}

/**
 * Awaits a teardown step, writing `# <what> still pending after N s` to stderr every 20 s while it
 * is: a hook that hangs then names what it waits on in the CI log, instead of a bare file timeout.
 */
export async function watched<T>(what: string, p: Promise<T> | undefined): Promise<T | undefined> {
  const t0 = Date.now()
  const warn = setInterval(
    () => process.stderr.write(`# ${what} still pending after ${Math.round((Date.now() - t0) / 1000)} s\n`),
    20_000,
  )
  try {
    return await p
  } finally {
    clearInterval(warn)
  }
}

/** `p`, or a rejection naming `what` once the scaled deadline `ms` has passed (an await that must not hang). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${scaled(ms)} ms waiting for ${what}`)), scaled(ms))
  })
  try {
    return await Promise.race([p, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** A temporary directory, removed when the test (or suite hook) `t` ends. */
export async function tmpDir(t: Pick<TestContext, 'after'>, prefix = 'llmesh-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * A temporary directory for a whole suite (or file): call it in a `describe` body or at the top of
 * a file, never inside a hook (an `after` registered there runs as soon as the hook ends). It is
 * removed once the suite ends.
 */
export function suiteTmpDir(prefix = 'llmesh-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * Named rollout policies (YAML, as `--policy` and the seed's publish take them).
 * `ONE_STAGE`: every device at once, one-second window, no reports needed: a release is promoted
 * as soon as it serves. `PILOT_THEN_ALL`: the devices tagged `pilot` first, for `window`, then all.
 */
export const POLICIES = {
  ONE_STAGE: `
stages:
  - { name: full, percent: 100, window: 1s }
gates:
  min_reports: 0
`,
  /** `ONE_STAGE` for every device but those tagged `tag` (e.g. the seed). */
  ONE_STAGE_EXCEPT: (tag: string) => `
stages:
  - { name: full, percent: 100, window: 1s }
gates:
  min_reports: 0
exclude_tags: [${tag}]
`,
  PILOT_THEN_ALL: (window: string, minReports = 1) => `
stages:
  - { name: pilot, tags: [pilot], window: ${window} }
  - { name: full, percent: 100 }
gates:
  min_reports: ${minReports}
exclude_tags: [seed]
`,
} as const

/** The `llmesh` entry point. */
export const CLI_BIN = join(import.meta.dirname, '../../cli/bin.ts')

/** What a CLI run printed and how it exited. */
export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs `llmesh <args>` with this Node; never throws on a non-zero exit. */
export function cli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}) {
  return new Promise<CliResult>((resolve) => {
    execFile(
      process.execPath,
      [CLI_BIN, ...args],
      {
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        timeout: scaled(opts.timeoutMs ?? 60_000),
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
        resolve({ code, stdout, stderr })
      },
    )
  })
}

/**
 * The rows of an aligned CLI table (cli/table.ts) as objects keyed by lower-case header: each
 * column is cut at its header's offset (cells hold no control characters; `-` is empty).
 */
export function parseTable(text: string): Array<Record<string, string>> {
  const lines = text.split('\n').filter((l) => l.trim() !== '')
  const at = lines.findIndex((l) => /^[A-Z][A-Z /]*( {2}[A-Z][A-Z /]*)+$/.test(l.trimEnd()))
  if (at < 0) throw new Error(`no table header in:\n${text}`)
  const head = lines[at]
  const starts = [...head.matchAll(/(?:^| {2})([A-Z][A-Z /]*?)(?= {2}|$)/g)].map((m) => ({
    name: m[1].toLowerCase(),
    from: (m.index ?? 0) + (m[0].length - m[1].length),
  }))
  return lines.slice(at + 1).map((l) =>
    Object.fromEntries(
      starts.map((c, i) => {
        const v = l.slice(c.from, i + 1 < starts.length ? starts[i + 1].from : undefined).trim()
        return [c.name, v === '-' ? '' : v]
      }),
    ),
  )
}

/**
 * `wire`, an operator-signed envelope, with one bit of its signature flipped: it names a key of the
 * trust root but does not verify (ERR_BAD_SIGNATURE, refused alike by every node: gossip Rejects
 * it). A message signed by a key outside the root is ERR_UNKNOWN_SIGNER instead, which gossip
 * Ignores (it depends on the root a node holds).
 */
export function withBadSignature(wire: Uint8Array): Uint8Array {
  const env = JSON.parse(Buffer.from(wire).toString('utf8'))
  const sigs = env.bundle.dsseEnvelope.signatures as Array<{ sig: string }>
  const sig = fromBase64(sigs[0].sig)
  sig[sig.length - 1] ^= 0x01
  sigs[0].sig = toBase64(sig)
  return canonicalBytes(env)
}
