/**
 * The side-by-side layout of agent versions under a root (default /opt/llmesh, as install.sh
 * lays it out): `<root>/<version>/` per version, `<root>/current` a relative symlink to the one to
 * run. `switchCurrent` is atomic: a temporary symlink renamed over `current` (rename(2) replaces
 * it in one step, so a crash leaves the old or the new link, never none). The wrapper's records
 * (pending switch, failures) are small JSON files under the root, written whole (temp + rename).
 */
import { mkdir, readFile, readlink, rename, rm, symlink } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { writeSynced } from '../durable-file.ts'
import {
  AGENT_FAILURES_FILE,
  AGENT_PENDING_FILE,
  CURRENT_LINK,
  MAX_AGENT_FAILURES,
  MAX_AGENT_STATE_BYTES,
} from './constants.ts'
import { isVersionName as isVersion } from './version-name.ts'

/** A switch the wrapper has not confirmed yet. */
export interface PendingSwitch {
  version: string
  /** The version to go back to when the new one does not come up. */
  previous: string
}

/** A version that was rolled back. */
export interface AgentFailure {
  version: string
  reason: string
  at: number
}

/** The version `current` points at, or null when there is none (or it is not a version). */
export async function readCurrent(root: string): Promise<string | null> {
  const target = await readlink(join(root, CURRENT_LINK)).catch(() => null)
  if (target === null) return null
  const v = basename(target)
  return isVersion(v) ? v : null
}

/** Points `current` at `version` atomically (temp symlink + rename). */
export async function switchCurrent(root: string, version: string): Promise<void> {
  if (!isVersion(version)) throw new TypeError(`not a version: ${version}`)
  const tmp = join(root, `.${CURRENT_LINK}.${process.pid}.${Date.now()}`)
  await rm(tmp, { force: true })
  await symlink(version, tmp)
  await rename(tmp, join(root, CURRENT_LINK))
}

async function readJson(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch(() => null)
  if (text === null || text.length > MAX_AGENT_STATE_BYTES) return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

async function writeJson(root: string, name: string, value: unknown): Promise<void> {
  await mkdir(root, { recursive: true })
  const tmp = join(root, `${name}.tmp`)
  await writeSynced(tmp, JSON.stringify(value), 0o644)
  await rename(tmp, join(root, name))
}

/** The pending switch, if any (a malformed record counts as none). */
export async function readPending(root: string): Promise<PendingSwitch | null> {
  const v = (await readJson(join(root, AGENT_PENDING_FILE))) as Partial<PendingSwitch> | undefined
  if (typeof v?.version !== 'string' || typeof v.previous !== 'string') return null
  return isVersion(v.version) && isVersion(v.previous) ? { version: v.version, previous: v.previous } : null
}

/** Records (or clears, with null) the pending switch. */
export async function writePending(root: string, p: PendingSwitch | null): Promise<void> {
  if (p === null) await rm(join(root, AGENT_PENDING_FILE), { force: true })
  else await writeJson(root, AGENT_PENDING_FILE, p)
}

/** The versions rolled back, oldest first. */
export async function readFailures(root: string): Promise<AgentFailure[]> {
  const v = await readJson(join(root, AGENT_FAILURES_FILE))
  if (!Array.isArray(v)) return []
  return v
    .filter(
      (f): f is AgentFailure => typeof f?.version === 'string' && typeof f.reason === 'string' && Number.isFinite(f.at),
    )
    .slice(-MAX_AGENT_FAILURES)
}

/** Appends a failure (the record keeps the newest `MAX_AGENT_FAILURES`). */
export async function recordFailure(root: string, f: AgentFailure): Promise<void> {
  const all = [...(await readFailures(root)), { ...f, reason: f.reason.slice(0, 256) }]
  await writeJson(root, AGENT_FAILURES_FILE, all.slice(-MAX_AGENT_FAILURES))
}
