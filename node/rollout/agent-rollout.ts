/**
 * The rollout of agent releases as the agent updater reads it (node/agent-update/, its
 * `AgentRollout`): the version this device's stage admits, whether the fleet refuses a version
 * (aborted, or conflicted), and a catch-up with peers before going forward. A view over the
 * controller's decisions and memory; the controller owns the ticks.
 */
import type { Decisions } from './decisions.ts'
import type { RolloutMemory } from './memory.ts'

/** What the view reads. */
export interface AgentRolloutComponents {
  decisions: Pick<Decisions, 'agentTarget'>
  memory: Pick<RolloutMemory, 'isAborted' | 'isConflicted'>
  /** Catches up with peers and decides again (false: not caught up yet, look again later). */
  catchUp: () => Promise<boolean>
}

/** The agent updater's view of the rollout. */
export class AgentRolloutView {
  private readonly c: AgentRolloutComponents

  constructor(components: AgentRolloutComponents) {
    this.c = components
  }

  /** The agent version this device's stage admits now (not aborted, highest seq), or null. */
  agentTarget(): string | null {
    return this.c.decisions.agentTarget()
  }

  /** Whether the fleet aborted a release (`llmesh-agent@<version>`), as known here. */
  isAborted(key: string): boolean {
    return this.c.memory.isAborted(key)
  }

  /** Whether the fleet refuses a release: aborted, or conflicted (protocols/rollout/conflicts.ts). */
  isRefused(key: string): boolean {
    return this.c.memory.isAborted(key) || this.c.memory.isConflicted(key)
  }

  /** Catches up with peers and decides again; whether `version` is still the admitted agent version. */
  async confirmAgent(version: string): Promise<boolean> {
    if (!(await this.c.catchUp())) return false
    return this.agentTarget() === version
  }
}
