/** What the alerting-rule tests share: where the rules and the runbook are, and the rules parsed. */
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parse } from 'yaml'

/** The repository's root. */
export const ROOT = resolve(import.meta.dirname, '../..')
/** The Prometheus alerting rules. */
export const RULES = join(ROOT, 'docs/alerts/llmesh.rules.yml')
/** The on-call runbook the rules link to. */
export const RUNBOOK = join(ROOT, 'docs/runbook.md')

/** One alerting rule as the rules file has it. */
export interface Rule {
  alert: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

/** Every rule of every group of the rules file. */
export async function loadRules(): Promise<Rule[]> {
  const doc = parse(await readFile(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }
  return doc.groups.flatMap((g) => g.rules)
}
