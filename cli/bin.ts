#!/usr/bin/env node
/**
 * The `llmesh` entry point. Loads commander and the command definitions only: each command
 * imports what it needs (the daemon, zod, sigstore) when it runs, so `llmesh --version` and
 * `llmesh status` start fast. Exit codes are those of cli/output.ts (usage errors: 2).
 *
 * `agent run` (the device unit's supervisor, a process as long-lived as the daemon) goes to its
 * lean entry, cli/agent-run.ts, before commander or any other module is loaded; `agent run --help`
 * stays with the command table.
 */
const argv = process.argv.slice(2)
const own = argv.indexOf('--') === -1 ? argv : argv.slice(0, argv.indexOf('--'))
if (argv[0] === 'agent' && argv[1] === 'run' && !own.includes('--help') && !own.includes('-h')) {
  const { agentRun } = await import('./agent-run.ts')
  await agentRun(argv.slice(2))
} else {
  // first: before any module imports node:http (node/http-undici-fix.ts)
  await import('../node/http-undici-fix.ts')
  const { CommanderError } = await import('commander')
  const { EXIT_CODES, fail, UsageError } = await import('./output.ts')
  const { buildProgram } = await import('./program.ts')
  const json = process.argv.includes('--json')
  try {
    await buildProgram().exitOverride().parseAsync(process.argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander printed its message (and the help) already
      if (err.exitCode === 0) process.exitCode = 0
      else if (json) fail(new UsageError(err.message.replace(/^error: /, ''), 'ERR_USAGE'), true)
      else process.exitCode = EXIT_CODES.usage
    } else fail(err, json)
  }
}
