/**
 * The one duration parser: rollout policies (`window: 1h30m`) and the CLI (`--report-interval`)
 * read durations through it.
 */
import { InvalidInputError } from './errors.ts'

/** Milliseconds per unit. */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * Parses a duration (`500ms`, `30s`, `10m`, `24h`, `7d`, `1h30m`, or `0`) into milliseconds.
 * Throws InvalidInputError on anything else.
 */
export function parseDuration(text: string | number): number {
  if (text === 0 || text === '0') return 0
  if (typeof text !== 'string') throw new InvalidInputError(`expected a duration such as 30s, 10m or 24h, got ${text}`)
  const t = text.trim()
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(t)) {
    throw new InvalidInputError(`expected a duration such as 30s, 10m or 24h, got '${text}'`)
  }
  let ms = 0
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) ms += Number(m[1]) * UNITS[m[2]]
  return Math.round(ms)
}
