/**
 * Fleet report routes, on every node (devices and the seed):
 *
 *   GET  /fleet/report[?since=<ms>]  → the report stream (protocols/fleet-report.ts,
 *        application/octet-stream) of the signed messages this node holds
 *        | 413 ERR_REPORT_TOO_LARGE (narrow it with since)
 *   POST /fleet/report/import  body: a report stream (application/octet-stream)
 *        → 201 ReportImportResult (each message verified and stored by this node's ingest; the
 *          refused ones counted and listed) | 400/413 ReportError naming the report file at fault
 *
 * The CLI (cli/commands/fleet-report.ts) turns the first into a report directory and a report
 * directory into the second. Imports run one at a time.
 */
import type { FastifyPluginAsync } from 'fastify'
import { LlmeshError } from '../../protocols/errors.ts'
import { siteOf } from '../../protocols/fleet-report.ts'
import type { DaemonContext } from '../daemon-context.ts'
import { planReport, reportStream } from './report-export.ts'
import { importReport } from './report-import.ts'

/** The report routes (a fastify plugin). */
export function reportRoutes(
  ctx: Pick<DaemonContext, 'store' | 'mesh' | 'identity' | 'config' | 'logger'>,
): FastifyPluginAsync {
  const log = ctx.logger.child({ svc: 'reports' })
  let importing = false
  return async (app) => {
    app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload))

    app.get<{ Querystring: { since?: string } }>('/fleet/report', async (req, reply) => {
      const raw = req.query.since
      let since: number | undefined
      if (typeof raw === 'string' && raw !== '') {
        since = Number(raw)
        if (!Number.isSafeInteger(since) || since < 0)
          throw new LlmeshError('ERR_INVALID_INPUT', 'since is a time in ms since the epoch')
      }
      const plan = planReport(
        { messages: ctx.store, fleet: ctx.config.fleet, self: ctx.identity.peerId, site: siteOf(ctx.config.tags) },
        since,
      )
      return reply.type('application/octet-stream').send(reportStream(plan))
    })

    app.post('/fleet/report/import', async (req, reply) => {
      const body = req.body as AsyncIterable<Uint8Array> & { resume?: () => void }
      if (typeof body?.[Symbol.asyncIterator] !== 'function')
        throw new LlmeshError('ERR_UNSUPPORTED_MEDIA_TYPE', 'a report is uploaded as application/octet-stream')
      if (importing) {
        body.resume?.()
        throw new LlmeshError('ERR_IMPORT_BUSY', 'another report is being imported on this node')
      }
      importing = true
      try {
        const out = await importReport(body, {
          ingest: (bytes) => ctx.mesh.ingest.ingest(bytes, 'import'),
          fleet: ctx.config.fleet,
        })
        const { refused, devices, ...counts } = out
        log.info({ ...counts, devices: devices.length }, 'fleet report imported')
        return reply.status(201).send(out)
      } catch (err) {
        body.resume?.()
        log.warn({ code: (err as { code?: unknown }).code, reason: (err as Error).message }, 'fleet report refused')
        throw err
      } finally {
        importing = false
      }
    })
  }
}
