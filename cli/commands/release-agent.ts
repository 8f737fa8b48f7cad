/**
 * `llmesh release publish-agent` and `llmesh release agents`: registration only (the publish
 * itself is in release-agent-run.ts, imported when the command runs, so `--version` and `status`
 * load no zod or yaml).
 */
import type { Command } from 'commander'
import { ApiClient, type ApiTarget } from '../api-client.ts'
import { action, type OutputOptions, print } from '../output.ts'
import { table } from '../table.ts'
import type { PublishAgentOptions } from './release-agent-run.ts'

/** Registers `release publish-agent` and `release agents` on the `release` command. */
export function registerReleaseAgent(release: Command, api: (c: Command) => Command): void {
  api(
    release
      .command('publish-agent <packages...>')
      .description(
        'sign and publish packages of llmesh itself (llmesh-<v>-linux-<arch>.tar.gz, one per architecture) as one agent release',
      )
      .requiredOption('--version <semver>', 'agent version')
      .option('--arch <arch>', 'architecture of a single package (default: from the file name, -linux-<arch>.tar.gz)')
      .option(
        '--min-agent-version <semver>',
        'lowest agent able to read what this one writes (default: the first version of its semver line, e.g. 0.9.0 for 0.9.2, 2.0.0 for 2.4.1)',
      )
      .option('--min-from <semver>', 'lowest running version that may upgrade directly (required step)')
      .option('--policy <policy.yaml>', 'rollout policy (default policy otherwise)')
      .option('--approved-by <name...>', 'approvers recorded in the provenance')
      .option('--ttl-days <n>', 'manifest lifetime in days (default 90)')
      .option('--allow-downgrade', 'publish below the highest agent version (recorded in the manifest)'),
  ).action(
    action(async (files: string[], opts: PublishAgentOptions) => {
      const { publishAgent } = await import('./release-agent-run.ts')
      await publishAgent(files, opts)
    }),
  )
  api(release.command('agents').description('list published agent releases')).action(
    action(async (opts: ApiTarget & OutputOptions) => {
      const out = await (await ApiClient.connect(opts)).agentReleases()
      print(opts, { releases: out.releases }, ({ releases: rows }) =>
        rows.length === 0
          ? 'no agent releases'
          : table(
              ['agent', 'seq', 'archs', 'min agent', 'state'],
              rows.map((r) => [r.version, r.seq, r.archs.join(','), r.min_agent_version, r.state ?? '-']),
            ),
      )
    }),
  )
}
