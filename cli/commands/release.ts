/**
 * `llmesh release publish|list|show|get`: talks to a running seed over its HTTP API
 * (`POST /releases` streams the GGUF; `GET /releases`, `GET /releases/:model/:version`; `get` in
 * release-get.ts). Before uploading a byte, `publish` checks the GGUF header locally (errors
 * name the user's file) and asks the seed whether the version would be a duplicate or a
 * downgrade (the seed checks again: it is the authority).
 */
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { Readable } from 'node:stream'
import cliProgress from 'cli-progress'
import type { Command } from 'commander'
import { DEFAULT_API, NODE_INFO_FILE } from '../../node/constants.ts'
import { checkGgufForLlama } from '../../node/model/gguf.ts'
import { encodeProbeHeader, parseProbeFile } from '../../protocols/probe-file.ts'
import { parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { checkVersion } from '../../seed/release-checks.ts'
import { apiError } from '../api-client.ts'
import { action, CliError, type OutputOptions, print } from '../output.ts'
import { registerReleaseGet } from './release-get.ts'

interface ApiOptions extends OutputOptions {
  api?: string
  data?: string
}

interface PublishOptions extends ApiOptions {
  model: string
  version: string
  policy?: string
  probes?: string
  approvedBy?: string[]
  arch?: string
  runtime?: string
  minRamMb?: string
  ttlDays?: string
  allowDowngrade?: boolean
}

async function seedUrl(opts: ApiOptions): Promise<string> {
  if (opts.api !== undefined) return (opts.api.includes('://') ? opts.api : `http://${opts.api}`).replace(/\/$/, '')
  if (opts.data !== undefined) {
    try {
      const api = (JSON.parse(await readFile(join(opts.data, NODE_INFO_FILE), 'utf8')) as { api: string }).api
      return api.includes('://') ? api : `http://${api}`
    } catch {
      throw new CliError(`no running seed found in ${opts.data} (no ${NODE_INFO_FILE})`, 'ERR_NOT_RUNNING')
    }
  }
  return `http://${DEFAULT_API}`
}

async function call(url: string, init?: RequestInit & { duplex?: 'half' }): Promise<unknown> {
  let res: Response
  try {
    res = await fetch(url, init)
  } catch (err) {
    throw new CliError(`cannot reach the seed at ${url}: ${(err as Error).message}`, 'ERR_NOT_RUNNING')
  }
  const body: unknown = await res.json().catch(() => ({}))
  if (!res.ok) throw apiError(res.status, body)
  return body
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`
}

async function publish(file: string, opts: PublishOptions): Promise<void> {
  const size = (await stat(file).catch(() => null))?.size
  if (size === undefined) throw new CliError(`${file} does not exist`, 'ERR_INVALID_INPUT')
  await checkGgufForLlama(file) // refuse locally, naming the user's file, before uploading a byte
  const base = await seedUrl(opts)
  // the seed refuses a duplicate or a downgrade before reading the body; asking first saves the upload
  const rows = ((await call(`${base}/releases`)) as { releases: ReleaseRow[] }).releases
  checkVersion(opts.model, opts.version, rows, opts.allowDowngrade === true)
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'content-length': String(size),
    'x-llmesh-filename': basename(file),
  }
  if (opts.policy !== undefined) {
    const text = await readFile(opts.policy, 'utf8')
    parsePolicyYaml(text, { filename: opts.policy }) // refuse locally with the line number
    headers['x-llmesh-policy'] = Buffer.from(text).toString('base64')
    headers['x-llmesh-policy-name'] = opts.policy
  }
  if (opts.probes !== undefined) {
    // refuse locally, naming the file, before uploading a byte; the seed checks it again
    const set = parseProbeFile(await readFile(opts.probes, 'utf8'), opts.probes)
    headers['x-llmesh-probes'] = encodeProbeHeader(set)
  }
  const q = new URLSearchParams({ model: opts.model, version: opts.version })
  if (opts.approvedBy?.length) q.set('approved_by', opts.approvedBy.join(','))
  if (opts.arch) q.set('arch', opts.arch)
  if (opts.runtime) q.set('runtime', opts.runtime)
  if (opts.minRamMb) q.set('min_ram_mb', opts.minRamMb)
  if (opts.ttlDays) q.set('ttl_days', opts.ttlDays)
  if (opts.allowDowngrade === true) q.set('allow_downgrade', '1')
  const bar =
    process.stderr.isTTY && opts.json !== true
      ? new cliProgress.SingleBar(
          { format: 'upload [{bar}] {percentage}% | {value}/{total} bytes', stream: process.stderr },
          cliProgress.Presets.shades_classic,
        )
      : null
  bar?.start(size, 0)
  const stream = createReadStream(file, { highWaterMark: 1024 * 1024 })
  let sent = 0
  stream.on('data', (d) => {
    sent += d.length
    bar?.update(sent)
  })
  try {
    const out = (await call(`${base}/releases?${q}`, {
      method: 'POST',
      headers,
      body: Readable.toWeb(stream) as unknown as RequestInit['body'],
      duplex: 'half',
    })) as { manifest: ReleaseManifest; digest: string; new_chunks: number; new_bytes: number }
    bar?.stop()
    print(opts, out, (o) =>
      [
        `published ${o.manifest.model}@${o.manifest.version} (seq ${o.manifest.seq})${o.manifest.downgrade ? `, a downgrade from ${o.manifest.downgrade.from}` : ''}`,
        `  sha256   ${o.manifest.file.sha256}`,
        `  size     ${mib(o.manifest.file.size)} in ${o.manifest.chunks.chunks.length} chunks, ${o.new_chunks} new (${mib(o.new_bytes)})`,
        `  digest   ${o.digest}`,
        `  expires  ${new Date(o.manifest.expires_at).toISOString()}`,
      ].join('\n'),
    )
  } finally {
    bar?.stop()
  }
}

interface ReleaseRow {
  model: string
  version: string
  seq: number
  size: number
  chunks: number
  created_at: number
  digest: string
  downgrade_from?: string
}

/** Registers `release publish|list|show`. */
export function registerRelease(program: Command): void {
  const release = program.command('release').description('publish and inspect model releases (talks to the seed)')
  const api = (c: Command) =>
    c
      .option('--api <url>', `seed API (default http://${DEFAULT_API})`)
      .option('--data <dir>', "read the seed's API address from <dir>/node.json")
      .option('--json', 'print JSON')
  api(
    release
      .command('publish <file>')
      .description('sign and publish a GGUF file as a release')
      .requiredOption('--model <name>', 'model name (lineage)')
      .requiredOption('--version <semver>', 'release version')
      .option('--policy <policy.yaml>', 'rollout policy (default policy otherwise)')
      .option('--probes <file>', 'quality probes (JSON or YAML) carried in the signed manifest')
      .option('--approved-by <name...>', 'approvers recorded in the provenance')
      .option('--arch <list>', 'CPU architectures, comma-separated (default any)')
      .option('--runtime <range>', 'node-llama-cpp semver range')
      .option('--min-ram-mb <n>', 'RAM the model needs')
      .option('--ttl-days <n>', 'manifest lifetime in days (default 90)')
      .option('--allow-downgrade', "publish below the model's highest version (recorded in the manifest)"),
  ).action(action(publish))
  api(release.command('list').description('list published releases')).action(
    action(async (opts: ApiOptions) => {
      const out = (await call(`${await seedUrl(opts)}/releases`)) as { releases: ReleaseRow[] }
      print(opts, out.releases, (rows) =>
        rows.length === 0
          ? 'no releases'
          : rows
              .map(
                (r) =>
                  `${r.model}@${r.version}  seq ${r.seq}  ${mib(r.size)}  ${r.chunks} chunks  ${new Date(r.created_at).toISOString()}${r.downgrade_from ? `  downgrade from ${r.downgrade_from}` : ''}`,
              )
              .join('\n'),
      )
    }),
  )
  api(release.command('show <model@version>').description('show a release manifest')).action(
    action(async (ref: string, opts: ApiOptions) => {
      const at = ref.lastIndexOf('@')
      if (at <= 0) throw new CliError(`expected model@version, got ${ref}`, 'ERR_INVALID_INPUT')
      const url = `${await seedUrl(opts)}/releases/${encodeURIComponent(ref.slice(0, at))}/${encodeURIComponent(ref.slice(at + 1))}`
      const out = (await call(url)) as { manifest: ReleaseManifest; digest: string }
      print(opts, out, ({ manifest: m, digest }) =>
        [
          `${m.model}@${m.version} (seq ${m.seq}, fleet ${m.fleet})`,
          `  file      ${mib(m.file.size)} ${m.file.format} ${m.file.quantization} ${m.file.model_arch} ctx ${m.file.context_length ?? '?'}`,
          `  sha256    ${m.file.sha256}`,
          `  chunks    ${m.chunks.chunks.length} in feed ${m.chunks.feed.slice(0, 16)}… (length ${m.chunks.feed_length})`,
          `  needs     ${m.architectures.join(',')} · runtime ${m.runtime} · ${m.min_ram_mb} MiB RAM`,
          `  policy    ${m.policy.stages.map((s) => `${s.name}:${s.percent}%`).join(' → ')}`,
          `  approved  ${m.provenance.approved_by.join(', ') || '-'}`,
          ...(m.downgrade ? [`  downgrade from ${m.downgrade.from} (published with --allow-downgrade)`] : []),
          `  created   ${new Date(m.created_at).toISOString()}  expires ${new Date(m.expires_at).toISOString()}`,
          `  digest    ${digest}`,
        ].join('\n'),
      )
    }),
  )
  registerReleaseGet(release, api)
}
