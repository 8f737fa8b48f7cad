/**
 * Output helpers shared by every command: data to stdout (JSON with --json, text otherwise),
 * errors to stderr as one line with a non-zero exit code.
 */

/** Options every data-printing command accepts. */
export interface OutputOptions {
  json?: boolean
}

/** Prints `data` as JSON (with --json) or through `human` as text. */
export function print<T>(opts: OutputOptions, data: T, human: (data: T) => string): void {
  if (opts.json === true) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`)
  else process.stdout.write(`${human(data)}\n`)
}

/** A failure the CLI reports as one line on stderr. `exitCode` defaults to 1. */
export class CliError extends Error {
  readonly exitCode: number
  readonly code: string
  constructor(message: string, code = 'ERR_CLI', exitCode = 1) {
    super(message)
    this.name = 'CliError'
    this.code = code
    this.exitCode = exitCode
  }
}

/** Reports an error on stderr as a single line and sets the exit code. */
export function fail(err: unknown): void {
  const e = err as { message?: string; code?: string; exitCode?: number }
  const msg = (e?.message ?? String(err)).split('\n')[0]
  const code = typeof e?.code === 'string' ? ` [${e.code}]` : ''
  process.stderr.write(`llmesh: error: ${msg}${code}\n`)
  process.exitCode = typeof e?.exitCode === 'number' ? e.exitCode : 1
}

/** Wraps a command action so that any error ends as one stderr line and a non-zero exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args)
    } catch (err) {
      fail(err)
    }
  }
}
