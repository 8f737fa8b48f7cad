/**
 * `llmesh release publish|list|show|get|export|import`: talks to a running seed over its HTTP API
 * (`POST /releases` streams the GGUF; `GET /releases`, `GET /releases/:model/:version`; `get` in
 * release-get.ts; `export`/`import`, release bundles for offline sites, in release-bundle.ts). Before uploading a byte, `publish` checks the GGUF header locally (errors
 * name the user's file) and asks the seed whether the version would be a duplicate or a
 * downgrade (the seed checks again: it is the authority).
 */
import type { Command } from 'commander'
import { DEFAULT_API } from '../../node/constants.ts'
import { ApiClient, type ApiTarget } from '../api-client.ts'
import { action, mib, type OutputOptions, print } from '../output.ts'
import { table } from '../table.ts'
import { registerReleaseAgent } from './release-agent.ts'
import { registerReleaseBundle } from './release-bundle.ts'
import { registerReleaseGet, splitRef } from './release-get.ts'
import type { PublishOptions } from './release-publish.ts'

/** Where a release command talks to. */
type ApiOptions = ApiTarget & OutputOptions

/** Registers `release publish|list|show`. */
export function registerRelease(program: Command): void {
  const release = program
    .command('release')
    .description('publish and inspect model releases (the seed), carry them to offline sites (any node)')
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
  ).action(
    action(async (file: string, opts: PublishOptions) => {
      const { publish } = await import('./release-publish.ts')
      await publish(file, opts)
    }),
  )
  api(release.command('list').description('list published releases')).action(
    action(async (opts: ApiOptions) => {
      const out = await (await ApiClient.connect(opts)).releases()
      // the envelope every list prints under --json: { <items>: [...] } (as device list)
      print(opts, { releases: out.releases }, ({ releases: rows }) =>
        rows.length === 0
          ? 'no releases'
          : table(
              ['release', 'seq', 'size', 'chunks', 'created', 'note'],
              rows.map((r) => [
                `${r.model}@${r.version}`,
                r.seq,
                mib(r.size),
                r.chunks,
                new Date(r.created_at).toISOString(),
                r.downgrade_from ? `downgrade from ${r.downgrade_from}` : '',
              ]),
            ),
      )
    }),
  )
  api(release.command('show <model@version>').description('show a release manifest')).action(
    action(async (ref: string, opts: ApiOptions) => {
      const { model, version } = splitRef(ref)
      const out = await (await ApiClient.connect(opts)).release(model, version)
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
  registerReleaseBundle(release)
  registerReleaseAgent(release, api)
}
