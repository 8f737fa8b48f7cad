/**
 * The supervisor's log (`llmesh agent run`): the lines pino writes for the daemon, without pino
 * (a CommonJS package, ~14 MiB RSS in a process that logs a few lines a day;
 * docs/benchmarks.md, "Idle footprint of a device"). One JSON object per line on stderr, written
 * synchronously — `{"level":30,"time":…,"pid":…,"role":"agent-run","name":"llmesh",…fields,"msg":…}`,
 * an error under `err` as pino's serializer gives it (`type`, `message`, `stack`, its own fields) —
 * or, with the `pretty` format, those lines through node/log-pretty.ts.
 */
import { writeSync } from 'node:fs'
import { prettyLine } from '../log-pretty.ts'
import type { AgentLog } from './runner.ts'

/** pino's level numbers. */
const LEVELS: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
}

/** Options of `createAgentLog`. */
export interface AgentLogInit {
  /** A pino level name (default `info`); `silent` writes nothing. */
  level?: string
  /** `json` (default) or `pretty`. */
  format?: 'json' | 'pretty'
  /** Fields of every line after `pid` (e.g. `{ role: 'agent-run' }`). */
  base?: Record<string, unknown>
  /** Where the lines go (default: fd 2, synchronously). */
  write?: (line: string) => void
}

function serializeError(err: Error): Record<string, unknown> {
  const own = Object.fromEntries(Object.entries(err).filter(([k]) => k !== 'message' && k !== 'stack'))
  return { type: err.constructor?.name ?? 'Error', message: err.message, stack: err.stack, ...own }
}

/** A logger writing pino's JSON lines (or pretty ones) for the supervisor. */
export function createAgentLog(init: AgentLogInit = {}): AgentLog {
  const threshold = LEVELS[init.level ?? 'info'] ?? LEVELS.info
  const head = { pid: process.pid, ...init.base, name: 'llmesh' }
  const write = init.write ?? ((line: string) => writeSync(2, line))
  const at =
    (level: number) =>
    (obj: object, msg: string): void => {
      if (level < threshold) return
      const fields = Object.fromEntries(
        Object.entries(obj).map(([k, v]) => [k, v instanceof Error ? serializeError(v) : v]),
      )
      const json = `${JSON.stringify({ level, time: Date.now(), ...head, ...fields, msg })}\n`
      write(init.format === 'pretty' ? prettyLine(json) : json)
    }
  return { info: at(LEVELS.info), warn: at(LEVELS.warn), error: at(LEVELS.error) }
}
