/**
 * `llmesh release publish-agent <package.tar.gz>… --version <v>` (imported only by that command:
 * the policy check loads zod and yaml):
 * publishes a package of llmesh itself (from `npm run package`) as an agent release on the seed
 * (`POST /agent-releases`, seed/agent-routes.ts), which chunks it into the lineage feed of its
 * architecture and signs the manifest with the operator key. The policy file is checked locally
 * first (errors name the line); the seed checks everything again.
 */
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { Readable } from 'node:stream'
import { parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import type { AgentPublishResponse, AgentStagedResponse } from '../../seed/agent-routes.ts'
import { ApiClient, type ApiTarget } from '../api-client.ts'
import { CliError, mib, type OutputOptions, print } from '../output.ts'

/** Options of `release publish-agent`. */
export interface PublishAgentOptions extends ApiTarget, OutputOptions {
  version: string
  arch?: string
  minAgentVersion?: string
  minFrom?: string
  policy?: string
  approvedBy?: string[]
  ttlDays?: string
  allowDowngrade?: boolean
}

/**
 * Streams the package to the seed and prints the signed release. Several packages (one per
 * architecture): each is staged (`stage=1`: chunked, nothing signed), then one release naming them
 * all is signed (`packages=<tokens>`), so every device takes its own architecture's package.
 */
export async function publishAgent(files: string[], opts: PublishAgentOptions): Promise<void> {
  if (files.length > 1 && opts.arch)
    throw new CliError('--arch goes with one package: several take theirs from their names', 'ERR_INVALID_INPUT')
  const headers: Record<string, string> = {}
  if (opts.policy !== undefined) {
    const text = await readFile(opts.policy, 'utf8')
    parsePolicyYaml(text, { filename: opts.policy })
    headers['x-llmesh-policy'] = Buffer.from(text).toString('base64')
  }
  const q = new URLSearchParams({ version: opts.version })
  if (opts.arch) q.set('arch', opts.arch)
  if (opts.minAgentVersion) q.set('min_agent_version', opts.minAgentVersion)
  if (opts.minFrom) q.set('min_from', opts.minFrom)
  if (opts.approvedBy?.length) q.set('approved_by', opts.approvedBy.join(','))
  if (opts.ttlDays) q.set('ttl_days', opts.ttlDays)
  if (opts.allowDowngrade === true) q.set('allow_downgrade', '1')
  const client = await ApiClient.connect(opts)
  const upload = async <T>(file: string, query: URLSearchParams): Promise<T> => {
    const size = (await stat(file).catch(() => null))?.size
    if (size === undefined) throw new CliError(`${file} does not exist`, 'ERR_INVALID_INPUT')
    const h = { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(size) }
    const stream = createReadStream(file, { highWaterMark: 1024 * 1024 })
    const body = Readable.toWeb(stream) as unknown as ReadableStream
    return client.publishAgent<T>(query, { ...h, 'x-llmesh-filename': basename(file) }, body)
  }
  let out: AgentPublishResponse
  if (files.length === 1) out = await upload<AgentPublishResponse>(files[0], q)
  else {
    const staged: AgentStagedResponse['staged'][] = []
    for (const f of files)
      staged.push((await upload<AgentStagedResponse>(f, new URLSearchParams([...q, ['stage', '1']]))).staged)
    const named = new URLSearchParams([...q, ['packages', staged.map((s) => s.token).join(',')]])
    out = await client.publishAgent(named, headers)
    out.new_chunks = staged.reduce((n, s) => n + s.new_chunks, 0)
    out.new_bytes = staged.reduce((n, s) => n + s.new_bytes, 0)
  }
  print(opts, out, (o) =>
    [
      `published agent ${o.release.version} (seq ${o.release.seq}) for ${o.release.packages.map((p) => p.arch).join(', ')}`,
      ...o.release.packages.map(
        (p) =>
          `  package  ${p.name} ${mib(p.size)} in ${p.chunks.chunks.length} chunks, sha256 ${p.sha256.slice(0, 16)}…`,
      ),
      `  new      ${o.new_chunks} chunks (${mib(o.new_bytes)})`,
      `  compat   min_agent_version ${o.release.min_agent_version}${o.release.min_from ? `, from ${o.release.min_from} or later` : ''}`,
      `  digest   ${o.digest}`,
    ].join('\n'),
  )
}
