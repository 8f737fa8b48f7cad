/**
 * `llmesh fleet report --out <dir> [--since <time>]` and `llmesh fleet report import <dir>`: a
 * site's evidence carried back to head office on removable media (protocols/fleet-report.ts).
 *
 * Export runs here, in the CLI, over the API of any node (`--api`, default the local one): the node
 * answers the report stream of the signed messages it holds; the CLI checks each message's bytes
 * against its name and writes `messages/<sha256>` (a file already there is kept: two reports of
 * one site share files, a half-copied directory resumes), then `report.json` last (a directory
 * with report.json is a finished copy).
 *
 * Import streams the directory to a node (`POST /fleet/report/import`), typically the seed, whose
 * own verifier judges every message; the answer counts what was accepted, already known and
 * refused (and names the refused files). A missing message file is skipped and named here.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { Command } from 'commander'
import type { ReportImportResult } from '../../node/fleet/report-import.ts'
import { ApiClient } from '../api-client.ts'
import { nodeApiOptions } from '../api-transport.ts'
import { action, CliError, mib, type OutputOptions, print, UsageError } from '../output.ts'

/** Options of `fleet report` and `fleet report import`. */
export interface ReportOptions extends OutputOptions {
  api?: string
  data?: string
  out?: string
  since?: string
}

/** `--since`: a duration back from now (`2h`), a date (ISO 8601), or ms since the epoch. */
export async function parseSince(text: string, now = Date.now()): Promise<number> {
  const { parseDuration } = await import('../../protocols/duration.ts')
  if (/^\d{12,}$/.test(text)) return Number(text)
  try {
    return Math.max(0, now - parseDuration(text))
  } catch {
    const t = Date.parse(text)
    if (Number.isNaN(t))
      throw new UsageError(`--since takes a duration (2h), a date or ms, got '${text}'`, 'ERR_INVALID_INPUT')
    return t
  }
}

async function sha256Of(path: string): Promise<string | undefined> {
  try {
    return createHash('sha256')
      .update(await readFile(path))
      .digest('hex')
  } catch {
    return undefined
  }
}

/** Writes a report directory from a node's report stream; returns its index and what was written. */
export async function writeReport(out: string, stream: Uint8Array) {
  const r = await import('../../protocols/fleet-report.ts')
  let split: ReturnType<typeof r.splitReportStream>
  try {
    split = r.splitReportStream(stream)
  } catch (err) {
    throw new CliError(`the node sent an invalid report: ${(err as Error).message}`, 'ERR_REPORT_FORMAT')
  }
  await mkdir(join(out, r.REPORT_MESSAGES_DIR), { recursive: true })
  let kept = 0
  for (const f of split.frames) {
    if (createHash('sha256').update(f.bytes).digest('hex') !== f.file)
      throw new CliError(
        `${r.messageFile(f.file)}: the node sent bytes that do not match the name`,
        'ERR_REPORT_DIGEST',
      )
    const path = join(out, r.messageFile(f.file))
    if ((await sha256Of(path)) === f.file) kept++
    else {
      await writeFile(`${path}.partial`, f.bytes)
      await rename(`${path}.partial`, path)
    }
  }
  await writeFile(join(out, r.REPORT_INDEX_FILE), `${JSON.stringify(split.index, null, 2)}\n`)
  return { index: split.index, kept }
}

/** Writes the report of a node into `opts.out`. */
export async function fleetReport(opts: ReportOptions): Promise<void> {
  if (opts.out === undefined) throw new UsageError('give the report directory with --out <dir>', 'ERR_INVALID_INPUT')
  const since = opts.since === undefined ? undefined : await parseSince(opts.since)
  const client = await ApiClient.connect(opts)
  const { index, kept } = await writeReport(opts.out, await client.fleetReport(since))
  const byType: Record<string, number> = {}
  for (const m of index.messages) byType[m.type] = (byType[m.type] ?? 0) + 1
  const o = {
    out: opts.out,
    fleet: index.fleet,
    site: index.site ?? null,
    messages: index.messages.length,
    bytes: index.bytes,
    kept,
    by_type: byType,
    since: index.since ?? null,
  }
  print(opts, o, (x) =>
    [
      `wrote the report of ${x.site === null ? 'this node' : `site ${x.site}`} to ${x.out}: ${x.messages} signed messages (${mib(x.bytes)})${x.kept > 0 ? `, ${x.kept} already there` : ''}`,
      `  ${
        Object.entries(x.by_type)
          .map(([t, n]) => `${t} ${n}`)
          .join(', ') || 'no messages'
      }`,
      `  import at head office with: llmesh fleet report import ${x.out} [--api <seed>]`,
    ].join('\n'),
  )
}

/** The import upload of the report in `dir`: the index, then a frame per message file there. */
export async function reportUpload(dir: string) {
  const r = await import('../../protocols/fleet-report.ts')
  const path = join(dir, r.REPORT_INDEX_FILE)
  const st = await stat(path).catch(() => undefined)
  if (st === undefined)
    throw new CliError(`${r.REPORT_INDEX_FILE}: missing from the report directory ${dir}`, 'ERR_REPORT_FORMAT')
  if (st.size > r.MAX_REPORT_INDEX_BYTES)
    throw new CliError(`${r.REPORT_INDEX_FILE}: ${st.size} bytes, too large`, 'ERR_REPORT_TOO_LARGE')
  let index: ReturnType<typeof r.parseReportIndex>
  try {
    index = r.parseReportIndex(await readFile(path))
  } catch (err) {
    throw new CliError((err as Error).message, 'ERR_REPORT_FORMAT')
  }
  const missing: string[] = []
  async function* body(): AsyncGenerator<Uint8Array> {
    yield r.reportHead(index)
    for (const m of index.messages) {
      const file = r.messageFile(m.file)
      const size = (await stat(join(dir, file)).catch(() => undefined))?.size
      if (size === undefined || size > r.MAX_REPORT_MESSAGE_BYTES) {
        missing.push(file)
        continue
      }
      const data = await readFile(join(dir, file))
      yield r.reportFrameHeader(m.file, data.byteLength)
      yield data
    }
  }
  return { index, body: body(), missing }
}

/** Streams the report in `dir` to a node, which verifies and stores each message. */
export async function fleetReportImport(dir: string, opts: ReportOptions): Promise<void> {
  const up = await reportUpload(dir)
  const client = await ApiClient.connect(opts)
  const res = await client.fleetReportImport(Readable.toWeb(Readable.from(up.body)) as unknown as ReadableStream)
  const out: ReportImportResult & { missing: string[] } = { ...res, missing: up.missing }
  print(opts, out, (o) =>
    [
      `imported the report of ${o.site === null ? `node ${o.exported_by}` : `site ${o.site}`}: ${o.messages} messages, ${o.accepted} new, ${o.duplicate} already known, ${o.rejected} refused`,
      `  devices  ${o.devices.length} (${o.devices.join(', ') || '-'})`,
      ...o.refused.map((x) => `  refused  ${x.file}: ${x.code} ${x.reason}`),
      ...o.missing.map((f) => `  missing  ${f} (not in the directory, not sent)`),
      '  see them with: llmesh device list, llmesh rollout status',
    ].join('\n'),
  )
}

/** Registers `fleet report` and `fleet report import`. */
export function registerFleetReport(fleet: Command): void {
  const report = nodeApiOptions(
    fleet
      .command('report')
      .description("write a node's signed evidence (health reports, verdicts, commands, enrollments) to a directory")
      .option('--out <dir>', 'report directory (created; an existing one is resumed)')
      .option('--since <time>', 'only what the node received since: a duration back (24h), a date, or ms'),
  ).action(action(fleetReport))
  nodeApiOptions(
    report
      .command('import <dir>')
      .description("verify a report's messages on a node (typically the seed) and add them to what it knows"),
  ).action(action(fleetReportImport))
}
