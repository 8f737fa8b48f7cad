/** Types of the agent update shared by the updater, its service and the CLI (`/status` `agent`). */
import type { AgentFailure } from './layout.ts'

/** The fleet's rollout of agent releases as the updater reads it (the RolloutController). */
export interface AgentRollout {
  /** The agent version this device's stage admits now, or null. */
  agentTarget(): string | null
  /** Whether the fleet aborted a release (`llmesh-agent@<version>`). */
  isAborted(key: string): boolean
  /** Whether the fleet refuses a release: aborted, or conflicted (two manifests, or one seq for two versions). */
  isRefused(key: string): boolean
  /**
   * Catches up with peers (anti-entropy) and decides again before going to `version`: false when
   * it is not admitted any more (e.g. a device that was off learns of an abort before installing).
   */
  confirmAgent(version: string): Promise<boolean>
}

/** The agent's state in /status and health reports. */
export interface AgentInfo {
  version: string
  root: string
  update: boolean
  state: 'idle' | 'waiting' | 'installing' | 'switched' | 'refused' | 'failed' | 'stuck'
  /**
   * The release the state is about, and why when refused, failed or stuck (`stuck`: the fleet
   * refuses the running version and nothing it holds may replace it; the target is the running one).
   */
  target?: string
  reason?: string
  /** Versions the wrapper rolled back on this device (newest last). */
  failures: AgentFailure[]
}
