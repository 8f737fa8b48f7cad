/**
 * The agent's side of the wrapper's health window: once the daemon has started (mesh and API up),
 * it creates the file the wrapper named in `LLMESH_AGENT_READY_FILE` (option `agent_ready_file`).
 * A version that never gets this far is rolled back by `llmesh agent run`.
 */
import { writeFile } from 'node:fs/promises'

/** Creates the ready file (its content: the pid and the version, for people reading it). */
export async function markAgentReady(file: string, version: string): Promise<void> {
  await writeFile(file, `${process.pid} ${version}\n`, { mode: 0o644 })
}
