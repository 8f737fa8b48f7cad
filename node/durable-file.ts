/**
 * Durable small-file writes for the node's own state (`manifest.json`, `rollout-state.json`): the
 * content is written to a temporary file and fsynced, renamed over the target, and the directory
 * fsynced, so after a crash or power loss the file is either the old one or the new one, whole.
 */
import { open, rename, rm } from 'node:fs/promises'
import { dirname } from 'node:path'

/** Observes the fsyncs (tests). */
export interface DurableHooks {
  synced?: (what: 'file' | 'dir', path: string) => void
}

/** Writes `data` to `path` and fsyncs it (no rename: for callers that rename themselves). */
export async function writeSynced(path: string, data: string | Uint8Array, mode = 0o600, hooks: DurableHooks = {}) {
  const fh = await open(path, 'w', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
    hooks.synced?.('file', path)
  } finally {
    await fh.close()
  }
}

/** fsyncs a directory (entries created or renamed in it survive a crash). */
export async function syncDirectory(dir: string, hooks: DurableHooks = {}): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
    hooks.synced?.('dir', dir)
  } finally {
    await fh.close()
  }
}

/**
 * Replaces `file` with `data` durably: temp file written and fsynced, renamed over `file`,
 * directory fsynced. On a failure the temp file is removed and `file` is left as it was.
 */
export async function writeFileDurable(
  file: string,
  data: string | Uint8Array,
  mode = 0o600,
  hooks: DurableHooks = {},
): Promise<void> {
  const tmp = `${file}.tmp`
  try {
    await writeSynced(tmp, data, mode, hooks)
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {})
    throw err
  }
  await syncDirectory(dirname(file), hooks)
}
