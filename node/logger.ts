/**
 * Structured logs (pino) to stderr. One root logger per process; services take child loggers.
 * Never log prompt or completion text. Two formats: `json` (one object per line, for journald and
 * collectors) and `pretty` (one readable line per entry, node/log-pretty.ts); by default pretty
 * when stderr is a terminal, else JSON.
 */
import pino from 'pino'
import { envValue } from './config/options.ts'
import { prettyDestination } from './log-pretty.ts'

/** The log formats (`--log-format`). */
export const LOG_FORMATS = ['pretty', 'json'] as const
/** A log format. */
export type LogFormat = (typeof LOG_FORMATS)[number]

/** The format when none is given: `LLMESH_LOG_FORMAT`, else pretty on a terminal, else JSON. */
export function defaultLogFormat(): LogFormat {
  const env = envValue('log_format')
  if (env === 'pretty' || env === 'json') return env
  return process.stderr.isTTY === true ? 'pretty' : 'json'
}

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
  /** Default defaultLogFormat(). */
  format?: LogFormat
}

/** Creates a pino logger writing to stderr (fd 2, synchronously so nothing is lost on exit). */
export function createLogger(init: LoggerInit = {}): Logger {
  return pino(
    {
      name: init.name ?? 'llmesh',
      level: init.level ?? envValue('log_level') ?? 'info',
      base: { pid: process.pid, ...init.base },
    },
    (init.format ?? defaultLogFormat()) === 'pretty' ? prettyDestination(2) : pino.destination({ dest: 2, sync: true }),
  )
}

/** A logger that drops everything (tests, benches). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
