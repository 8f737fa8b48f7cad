#!/usr/bin/env node
/**
 * The `llmesh` entry point. Loads commander and the command definitions only: each command
 * imports what it needs (the daemon, zod, sigstore) when it runs, so `llmesh --version` and
 * `llmesh status` start fast. Exit codes are those of cli/output.ts (usage errors: 2).
 */
// first: before any module imports node:http (node/http-undici-fix.ts)
import '../node/http-undici-fix.ts'
import { CommanderError } from 'commander'
import { EXIT_CODES, fail, UsageError } from './output.ts'
import { buildProgram } from './program.ts'

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
