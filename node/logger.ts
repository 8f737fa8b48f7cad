/**
 * Structured logs (pino) to stderr. One root logger per process; services take child loggers.
 * Never log prompt or completion text.
 */
import pino from 'pino'
import { envValue } from './config/options.ts'

/** The logger type every service takes. */
export type Logger = pino.Logger

/** Options of `createLogger`. */
export interface LoggerInit {
  /** pino level; default `LLMESH_LOG_LEVEL` or `info`. */
  level?: string
  /** Name shown in every line. */
  name?: string
  /** Extra fields on every line (e.g. the peer id). */
  base?: Record<string, unknown>
}

/** Creates a pino logger writing JSON lines to stderr (fd 2, synchronously so nothing is lost on exit). */
export function createLogger(init: LoggerInit = {}): Logger {
  return pino(
    {
      name: init.name ?? 'llmesh',
      level: init.level ?? envValue('log_level') ?? 'info',
      base: { pid: process.pid, ...init.base },
    },
    pino.destination({ dest: 2, sync: true }),
  )
}

/** A logger that drops everything (tests, benches). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
