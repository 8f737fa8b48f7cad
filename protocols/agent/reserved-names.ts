/**
 * Model names agent releases own. `llmesh-agent` names agent releases wherever model releases name
 * their model: rollout keys (`llmesh-agent@<v>`: state, votes, commands, gates), health report
 * events, and the operator's seq counter. `llmesh-agent-<arch>` are the feeds of their packages.
 * A model release of such a name would share the agent's rollout state and seq, or append a GGUF to
 * a package feed. So no model may take one: the release manifest schema refuses it (every node
 * refuses such a manifest, ERR_SCHEMA) and the seed refuses the publish (`ReservedNameError`).
 */
import { LlmeshError } from '../errors.ts'
import { AGENT_LINEAGE } from './constants.ts'

/** Whether `model` is a name agent releases own (`llmesh-agent`, `llmesh-agent-<anything>`). */
export function isReservedModelName(model: string): boolean {
  return model === AGENT_LINEAGE || model.startsWith(`${AGENT_LINEAGE}-`)
}

/** Why a reserved name is refused (the schema's message; the error's names the model too). */
export const RESERVED_NAMES_TEXT = `${AGENT_LINEAGE} and ${AGENT_LINEAGE}-* are reserved for agent releases`

/** A model release named like agent releases (`isReservedModelName`). */
export class ReservedNameError extends LlmeshError {
  declare readonly code: 'ERR_RESERVED_NAME'
  constructor(model: string) {
    super('ERR_RESERVED_NAME', `model name ${model.slice(0, 64)}: ${RESERVED_NAMES_TEXT}`)
    this.name = 'ReservedNameError'
  }
}

/** Throws ReservedNameError when `model` is reserved for agent releases. */
export function checkModelName(model: string): void {
  if (isReservedModelName(model)) throw new ReservedNameError(model)
}
