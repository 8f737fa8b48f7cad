/**
 * `docs/config.md`, generated from the option table (node/config/options.ts). Regenerate with
 * `node scripts/config-docs.ts`; test/unit/config.test.ts fails when the file is stale.
 */
import { INSTALLED_CONFIG_FILE, MAX_CONFIG_BYTES, OPTIONS } from './options.ts'

const cell = (s: string): string => s.replaceAll('|', '\\|')

/** The whole of docs/config.md. */
export function configMarkdown(): string {
  const rows = OPTIONS.map(
    (o) =>
      `| \`${o.name}\` | ${o.flag === undefined ? '–' : `\`${o.flag}\``} | \`${o.env}\` | ${o.key === undefined ? '–' : `\`${o.key}\``} | ${cell(o.defaultText)} | ${cell(o.help)} |`,
  )
  return [
    '# Configuration',
    '',
    '<!-- generated from node/config/options.ts by `node scripts/config-docs.ts`: do not edit -->',
    '',
    '`llmesh node start` and `llmesh seed start` take every option from, in this order of precedence:',
    'the command-line flag, the `LLMESH_*` environment variable, the configuration file, the default.',
    `The configuration file is YAML (\`${INSTALLED_CONFIG_FILE}\` on an installed device), a mapping of the`,
    `keys below, at most ${MAX_CONFIG_BYTES / 1024} KiB, no anchors or aliases; an unknown key or a wrong value is refused`,
    'with the file and line. Relative paths in the file are taken from its directory.',
    '`llmesh config print [--role seed] [flags]` shows the effective value of each option and where it came from.',
    '',
    '```yaml',
    '# /etc/llmesh/llmesh.yaml',
    'tags: [pilot, shop-12]',
    'device_type: rpi5-8gb',
    'inference_concurrency: 1',
    'keep_versions: 2',
    '```',
    '',
    '| option | flag | variable | file key | default | what |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n')
}
