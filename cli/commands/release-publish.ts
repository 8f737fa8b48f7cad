/**
 * `llmesh release publish <file>` (imported only by that command: the GGUF and policy checks load
 * zod and yaml). Before uploading a byte it checks the GGUF header locally (errors name the user's
 * file) and asks the seed whether the version would be a duplicate or a downgrade (the seed checks
 * again: it is the authority), then streams the file to `POST /releases`.
 */
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { Readable } from 'node:stream'
import cliProgress from 'cli-progress'
import { checkGgufForLlama } from '../../node/model/gguf.ts'
import { encodeProbeHeader, parseProbeFile } from '../../protocols/probe-file.ts'
import { parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import { checkVersion } from '../../seed/release-checks.ts'
import { ApiClient, type ApiTarget } from '../api-client.ts'
import { CliError, mib, type OutputOptions, print } from '../output.ts'

/** Options of `release publish`. */
export interface PublishOptions extends ApiTarget, OutputOptions {
  model: string
  version: string
  policy?: string
  /** Quality probe set (JSON or YAML) carried in the signed manifest. */
  probes?: string
  approvedBy?: string[]
  arch?: string
  runtime?: string
  minRamMb?: string
  ttlDays?: string
  allowDowngrade?: boolean
}

/** Publishes `file` as a release on the seed. */
export async function publish(file: string, opts: PublishOptions): Promise<void> {
  const size = (await stat(file).catch(() => null))?.size
  if (size === undefined) throw new CliError(`${file} does not exist`, 'ERR_INVALID_INPUT')
  await checkGgufForLlama(file) // refuse locally, naming the user's file, before uploading a byte
  const client = await ApiClient.connect(opts)
  // the seed refuses a duplicate or a downgrade before reading the body; asking first saves the upload
  const { releases } = await client.releases()
  checkVersion(opts.model, opts.version, releases, opts.allowDowngrade === true)
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
    const out = await client.publish(q, headers, Readable.toWeb(stream) as unknown as ReadableStream)
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
