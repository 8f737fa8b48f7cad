/**
 * The device's inputs to the fleet rollback of an agent version (protocols/agent/fallback.ts):
 * the versions it holds under the agent root, and the `min_agent_version` of the version it runs.
 *
 * How it works:
 * - held: the entries of `<root>` whose name is a version and that hold the launcher
 *   (`<root>/<v>/bin/llmesh`; unpack.ts renames a version into place only once whole), at most
 *   `MAX_HELD_VERSIONS` of them (a root full of junk cannot make the updater read without bound);
 * - floor: the signed releases of the running version in the message store (the highest
 *   `min_agent_version` of them, should several exist), else the manifest the version was
 *   installed from (`<root>/<v>/.llmesh-agent-release.json`), else unknown.
 */
import { lstat, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentRelease } from '../../protocols/schemas/index.ts'
import { compareVersions, isVersion } from '../../protocols/version.ts'
import { AGENT_ENTRY, AGENT_RELEASE_FILE, MAX_AGENT_STATE_BYTES, MAX_HELD_VERSIONS } from './constants.ts'

/** The versions installed side by side under `root` (whole: the launcher is there). */
export async function heldVersions(root: string): Promise<string[]> {
  const names = await readdir(root).catch(() => [] as string[])
  const out: string[] = []
  for (const name of names) {
    if (out.length >= MAX_HELD_VERSIONS) break
    if (!isVersion(name)) continue
    if ((await lstat(join(root, name, AGENT_ENTRY)).catch(() => null)) !== null) out.push(name)
  }
  return out
}

/** `min_agent_version` of the running version, from its signed releases or its install record. */
export async function runningFloor(
  root: string,
  running: string,
  releases: readonly AgentRelease[],
): Promise<string | undefined> {
  const signed = releases.filter((r) => r.version === running).map((r) => r.min_agent_version)
  if (signed.length > 0) return signed.reduce((a, b) => (compareVersions(b, a) > 0 ? b : a))
  const text = await readFile(join(root, running, AGENT_RELEASE_FILE), 'utf8').catch(() => null)
  if (text === null || text.length > MAX_AGENT_STATE_BYTES * 64) return undefined
  try {
    const r = AgentRelease.safeParse(JSON.parse(text))
    return r.success ? r.data.min_agent_version : undefined
  } catch {
    return undefined
  }
}
