/**
 * The options of the agent update (llmesh updating itself, node/agent-update/), part of the one
 * option table (node/config/options.ts spreads them in). `agent_version` and `agent_ready_file`
 * are set by the wrapper (`llmesh agent run`) for the agent it starts, not by the operator.
 */
/**
 * The agent update's options, in the order the docs show them (typed as `OptionSpec` where
 * options.ts spreads them in: no import back, no cycle).
 */
export const AGENT_OPTIONS = [
  {
    name: 'agent_update',
    flag: '--no-agent-update',
    env: 'LLMESH_AGENT_UPDATE',
    key: 'agent_update',
    kind: 'bool',
    default: () => true,
    defaultText: '`true`',
    help: 'take agent releases (llmesh updating itself) when the fleet’s rollout admits this device: install beside the running version, switch, restart; only under the wrapper (`llmesh agent run`, the device unit), which rolls a version that does not come up back',
  },
  {
    name: 'agent_root',
    flag: '--agent-root <dir>',
    env: 'LLMESH_AGENT_ROOT',
    key: 'agent_root',
    kind: 'path',
    default: () => '/opt/llmesh',
    defaultText: '`/opt/llmesh`',
    help: 'where agent versions live side by side (<dir>/<version>, <dir>/current)',
  },
  {
    name: 'agent_health_window',
    flag: '--agent-health-window <duration>',
    env: 'LLMESH_AGENT_HEALTH_WINDOW',
    key: 'agent_health_window',
    kind: 'duration',
    default: () => '120s',
    defaultText: '`120s`',
    help: '`llmesh agent run`: a new agent version must be ready within this window, else the previous one takes over',
  },
  {
    name: 'agent_handover',
    env: 'LLMESH_AGENT_HANDOVER',
    kind: 'bool',
    default: () => false,
    defaultText: '`false`',
    help: '`llmesh agent run`: when no new version is on probation, exec the daemon in its place (one process; set by the device unit, whose Restart= restarts a daemon that exits) instead of running it as a child',
  },
  {
    name: 'agent_version',
    env: 'LLMESH_AGENT_VERSION',
    kind: 'string',
    defaultText: "package.json's version",
    help: 'the agent version running (set by `llmesh agent run` for the version it starts)',
  },
  {
    name: 'agent_ready_file',
    env: 'LLMESH_AGENT_READY_FILE',
    kind: 'path',
    defaultText: 'none',
    help: 'file the daemon creates once started (set by `llmesh agent run` for its health window)',
  },
] as const
