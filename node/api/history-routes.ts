/**
 * The fleet's history on a node's API (a fastify plugin), from node/telemetry/fleet-history.ts:
 *
 *   GET /history                                   → { releases, devices, bytes, fine_ms, coarse_ms }
 *   GET /history/releases/:model/:version?from&to → { step_ms, points: ReleasePoint[] }
 *   GET /history/devices/:id?from&to              → { step_ms, points: DevicePoint[] }
 *   GET /history/fleet?from&to                    → { step_ms, points: { t, known, reporting, offline_ratio }[] }
 *
 * `from`/`to` are ms since the epoch (default: the last 6 hours up to now). A range that starts
 * within the fine rings' horizon is answered in fine buckets, else in coarse ones. Errors are the
 * one contract (node/api/errors.ts): ERR_INVALID_INPUT for a bad range, ERR_NOT_FOUND for a
 * release or device with no history.
 */
import type { FastifyPluginAsync } from 'fastify'
import { InvalidInputError } from '../../protocols/errors.ts'
import type { FleetHistory } from '../telemetry/fleet-history.ts'
import { sendError } from './errors.ts'

/** Default range when `from` is not given. */
export const HISTORY_DEFAULT_RANGE_MS = 6 * 60 * 60 * 1000

/** What the routes use. */
export interface HistoryRoutesComponents {
  history: () => FleetHistory | undefined
  now?: () => number
}

interface RangeQuery {
  from?: string
  to?: string
}

/** Parses ?from&to (ms since the epoch, integers, from ≤ to). */
export function parseRange(q: RangeQuery, now: number): { from: number; to: number } {
  const num = (name: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt
    if (!/^\d{1,15}$/.test(v)) throw new InvalidInputError(`${name} must be ms since the epoch (an integer)`)
    return Number(v)
  }
  const to = num('to', q.to, now)
  const from = num('from', q.from, to - HISTORY_DEFAULT_RANGE_MS)
  if (from > to) throw new InvalidInputError('from must not be after to')
  return { from, to }
}

/** The history routes. */
export function historyRoutes(components: HistoryRoutesComponents): FastifyPluginAsync {
  const now = components.now ?? Date.now
  return async (app) => {
    const history = (): FleetHistory => {
      const h = components.history()
      if (h === undefined) throw new InvalidInputError('this node keeps no history')
      return h
    }
    app.get('/history', async () => history().summary())
    app.get<{ Params: { model: string; version: string }; Querystring: RangeQuery }>(
      '/history/releases/:model/:version',
      async (req, reply) => {
        const { from, to } = parseRange(req.query, now())
        const r = history().release(req.params.model, req.params.version, from, to)
        if (r === undefined)
          return sendError(reply, 'ERR_NOT_FOUND', `no history of ${req.params.model}@${req.params.version}`)
        return r
      },
    )
    app.get<{ Params: { id: string }; Querystring: RangeQuery }>('/history/devices/:id', async (req, reply) => {
      const { from, to } = parseRange(req.query, now())
      const r = history().device(req.params.id, from, to)
      if (r === undefined) return sendError(reply, 'ERR_NOT_FOUND', `no history of device ${req.params.id}`)
      return r
    })
    app.get<{ Querystring: RangeQuery }>('/history/fleet', async (req) => {
      const { from, to } = parseRange(req.query, now())
      return history().fleet(from, to)
    })
  }
}
