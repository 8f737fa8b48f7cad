/**
 * The configuration of `llmesh agent run`, resolved by a short-lived child process of the
 * supervisor (cli/agent-run.ts): the full resolver (node/config/resolve.ts: flag > env > file >
 * default, the whole file checked, YAML and zod and all) runs here and exits, so the long-lived
 * supervisor never loads it (~20 MiB RSS for the rest of its life; docs/benchmarks.md, "Idle
 * footprint of a device"). A file the daemon would refuse is refused here, with the same error.
 *
 * Usage: `node cli/agent-config.js '<flags as JSON, by option name>'`; prints one JSON document on
 * stdout: `{ "config": AgentRunConfig }` or `{ "error": { code, message, class } }` (cli/output.ts).
 */
import type { AgentRunConfig } from './agent-run.ts'
import { loadConfig } from './config-flags.ts'
import { describeError } from './output.ts'

let answer: { config: AgentRunConfig } | { error: ReturnType<typeof describeError> }
try {
  const flags = JSON.parse(process.argv[2] ?? '{}') as Record<string, string>
  const { values: c } = await loadConfig('node', flags)
  answer = {
    config: {
      agent_root: c.agent_root,
      agent_health_window: c.agent_health_window,
      agent_handover: c.agent_handover,
      log_level: c.log_level,
      ...(c.log_format === undefined ? {} : { log_format: c.log_format }),
    },
  }
} catch (err) {
  answer = { error: describeError(err) }
}
process.stdout.write(`${JSON.stringify(answer)}\n`)
