/** Constants of agent releases (llmesh updating itself). */

/** Rollback key of agent releases in the sequence table (protocols/trust/sequence.ts). */
export const AGENT_SEQUENCE_KEY = 'agent'
/** The name agent releases take where model releases name their model (publish checks, logs). */
export const AGENT_LINEAGE = 'llmesh-agent'

/** The lineage feed (model store name) that holds one architecture's packages. */
export function agentLineage(arch: string): string {
  return `${AGENT_LINEAGE}-${arch}`
}
