/**
 * The operator's rollout policy as YAML (`llmesh release publish … --policy <file>`), parsed into
 * the signed `RolloutPolicy` schema. Durations are written `30s`, `10m`, `24h` (also `ms`, `d`, and
 * compounds such as `1h30m`) and become milliseconds. Every refusal names the file, the line and
 * the reason: `policy.yaml:4: stages[1].percent: must be <= 100`.
 *
 * The text is hostile until parsed: its size, nesting depth and aliases are bounded
 * (`POLICY_LIMITS`), and whatever the YAML library throws (alias bombs, unresolved aliases,
 * stack overflows) comes out as InvalidInputError with the file and a line, never anything else.
 */
import { isAlias, isMap, isScalar, LineCounter, type Node, parseDocument } from 'yaml'
import type { z } from 'zod'
import { parseDuration } from '../duration.ts'
import { InvalidInputError } from '../errors.ts'
import { RolloutPolicy } from '../schemas/policy.ts'
import { flowDepthLine, POLICY_LIMITS, walk } from './yaml-bounds.ts'

export { POLICY_LIMITS } from './yaml-bounds.ts'

/** Keys the YAML accepts, and their name in the schema. */
const STAGE_KEYS: Record<string, string> = {
  name: 'name',
  percent: 'percent',
  min_devices: 'min_devices',
  tags: 'tags',
  sites: 'sites',
  window: 'window_ms',
}
const GATE_KEYS = [
  'latency_p95_ms',
  'error_rate',
  'restarts',
  'ooms',
  'failures',
  'quality',
  'min_reports',
  'vote_max_age',
]
const QUALITY_KEYS = ['min_agreement', 'max_perplexity_regression_pct', 'min_devices']
const METRIC_KEYS = ['max', 'max_regression_pct']
const TOP_KEYS = ['stages', 'gates', 'exclude_tags', 'inconclusive', 'prestage', 'forward_to_canary']
/** Schema field name → YAML key name, for error paths. */
const YAML_NAME: Record<string, string> = { window_ms: 'window', per_ms: 'per', vote_max_age_ms: 'vote_max_age' }

type Path = Array<string | number>

/** Options of parsePolicyYaml. */
export interface ParsePolicyOptions {
  /** File name used in error messages (default `policy.yaml`). */
  filename?: string
}

/**
 * Parses and validates a policy file. Throws InvalidInputError naming the line and the reason.
 * Checks beyond the schema: unknown keys, non-decreasing stage percents, the last stage at 100 %,
 * unique stage names.
 */
export function parsePolicyYaml(text: string, options: ParsePolicyOptions = {}): RolloutPolicy {
  const file = options.filename ?? 'policy.yaml'
  if (typeof text !== 'string') throw new InvalidInputError(`${file}:1: expected the policy text`)
  if (text.length > POLICY_LIMITS.maxChars) {
    throw new InvalidInputError(`${file}:1: the policy is larger than ${POLICY_LIMITS.maxChars} characters`)
  }
  const deep = flowDepthLine(text, POLICY_LIMITS.maxDepth)
  if (deep !== undefined) {
    throw new InvalidInputError(`${file}:${deep}: nested deeper than ${POLICY_LIMITS.maxDepth} levels`)
  }
  try {
    return parseChecked(text, file)
  } catch (err) {
    if (err instanceof InvalidInputError) throw err
    // the library's own throws (RangeError on a stack overflow, …): still a refusal of the input
    throw new InvalidInputError(
      `${file}:1: cannot read the policy: ${String((err as Error)?.message).split('\n')[0]}`,
      {
        cause: err,
      },
    )
  }
}

function parseChecked(text: string, file: string): RolloutPolicy {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true })
  if (doc.errors.length > 0) {
    const e = doc.errors[0]
    const line = e.linePos?.[0].line ?? 1
    // yaml catches its own stack overflow on deep block nesting (`- - - - …`): say what it means
    const reason = /call stack/i.test(e.message)
      ? `nested deeper than ${POLICY_LIMITS.maxDepth} levels`
      : e.message.split('\n')[0]
    throw new InvalidInputError(`${file}:${line}: ${reason}`)
  }
  const lineOf = (path: Path): number => {
    for (let p = path; ; p = p.slice(0, -1)) {
      const node = (p.length === 0 ? doc.contents : doc.getIn(p, true)) as Node | undefined
      if (node?.range) return lineCounter.linePos(node.range[0]).line
      if (p.length === 0) return 1
    }
  }
  const keyLine = (path: Path, key: string): number => {
    const parent = path.length === 0 ? doc.contents : doc.getIn(path, true)
    if (isMap(parent)) {
      const pair = parent.items.find((it) => isScalar(it.key) && it.key.value === key)
      const k = pair?.key as Node | undefined
      if (k?.range) return lineCounter.linePos(k.range[0]).line
    }
    return lineOf(path)
  }
  const fail = (path: Path, reason: string, line = lineOf(path)): never => {
    throw new InvalidInputError(`${file}:${line}: ${pathText(path)}${path.length ? ': ' : ''}${reason}`)
  }

  if (!isMap(doc.contents)) fail([], 'expected a mapping with at least `stages` and `gates`')
  const at = (node: Node): number => (node.range ? lineCounter.linePos(node.range[0]).line : 1)
  const shape = { aliases: 0 }
  walk(doc.contents as Node, 1, (node, depth) => {
    if (depth > POLICY_LIMITS.maxDepth) {
      throw new InvalidInputError(`${file}:${at(node)}: nested deeper than ${POLICY_LIMITS.maxDepth} levels`)
    }
    if (isAlias(node)) {
      if (++shape.aliases > POLICY_LIMITS.maxAliases) {
        throw new InvalidInputError(`${file}:${at(node)}: more than ${POLICY_LIMITS.maxAliases} aliases`)
      }
      if (node.resolve(doc) === undefined) {
        throw new InvalidInputError(`${file}:${at(node)}: alias *${node.source} refers to no anchor before it`)
      }
    }
  })
  let raw: Record<string, unknown>
  try {
    raw = doc.toJS({ maxAliasCount: POLICY_LIMITS.maxAliasCount }) as Record<string, unknown>
  } catch (err) {
    const reason = /alias count/i.test(String((err as Error)?.message))
      ? 'aliases expand too much (alias bomb)'
      : `cannot read the policy: ${String((err as Error)?.message).split('\n')[0]}`
    throw new InvalidInputError(`${file}:1: ${reason}`, { cause: err })
  }
  checkKeys(raw, TOP_KEYS, [], keyLine, fail)

  const out: Record<string, unknown> = { ...raw }
  if (Array.isArray(raw.stages)) {
    out.stages = raw.stages.map((st: unknown, i: number) => {
      if (st === null || typeof st !== 'object' || Array.isArray(st)) return fail(['stages', i], 'expected a mapping')
      const s = st as Record<string, unknown>
      checkKeys(s, Object.keys(STAGE_KEYS), ['stages', i], keyLine, fail)
      const o: Record<string, unknown> = { ...s }
      if ('window' in s) {
        delete o.window
        o.window_ms = toDuration(s.window, ['stages', i, 'window'], fail)
      }
      return o
    })
  }
  if (raw.gates !== null && typeof raw.gates === 'object' && !Array.isArray(raw.gates)) {
    const g = { ...(raw.gates as Record<string, unknown>) }
    checkKeys(g, GATE_KEYS, ['gates'], keyLine, fail)
    for (const metric of ['latency_p95_ms', 'error_rate']) {
      const m = g[metric]
      if (m !== null && typeof m === 'object' && !Array.isArray(m)) {
        checkKeys(m as Record<string, unknown>, METRIC_KEYS, ['gates', metric], keyLine, fail)
      }
    }
    if ('vote_max_age' in g) {
      g.vote_max_age_ms = toDuration(g.vote_max_age, ['gates', 'vote_max_age'], fail)
      delete g.vote_max_age
    }
    if (g.restarts !== null && typeof g.restarts === 'object' && !Array.isArray(g.restarts)) {
      const r = { ...(g.restarts as Record<string, unknown>) }
      checkKeys(r, ['max', 'per'], ['gates', 'restarts'], keyLine, fail)
      if (!('per' in r)) fail(['gates', 'restarts'], 'missing `per` (a duration such as 5m)')
      r.per_ms = toDuration(r.per, ['gates', 'restarts', 'per'], fail)
      delete r.per
      g.restarts = r
    }
    if (g.ooms !== null && typeof g.ooms === 'object' && !Array.isArray(g.ooms)) {
      checkKeys(g.ooms as Record<string, unknown>, ['max'], ['gates', 'ooms'], keyLine, fail)
    }
    if (g.failures !== null && typeof g.failures === 'object' && !Array.isArray(g.failures)) {
      checkKeys(g.failures as Record<string, unknown>, ['max_devices', 'max_pct'], ['gates', 'failures'], keyLine, fail)
    }
    if (g.quality !== null && typeof g.quality === 'object' && !Array.isArray(g.quality)) {
      checkKeys(g.quality as Record<string, unknown>, QUALITY_KEYS, ['gates', 'quality'], keyLine, fail)
    }
    out.gates = g
  }

  const parsed = RolloutPolicy.safeParse(out)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const path = issue.path.map((p) => (typeof p === 'string' ? (YAML_NAME[p] ?? p) : (p as number)))
    fail(path, reasonOf(issue))
  }
  const policy = parsed.data as RolloutPolicy
  const names = new Set<string>()
  policy.stages.forEach((st, i) => {
    if (names.has(st.name)) fail(['stages', i, 'name'], `duplicate stage name '${st.name}'`)
    names.add(st.name)
    if (i > 0 && st.percent < policy.stages[i - 1].percent) {
      fail(['stages', i, 'percent'], `must not be lower than the previous stage's ${policy.stages[i - 1].percent}`)
    }
  })
  const last = policy.stages.length - 1
  if (policy.stages[last].percent !== 100) {
    fail(['stages', last, 'percent'], 'the last stage must have percent: 100', lineOf(['stages', last]))
  }
  return policy
}

function toDuration(v: unknown, path: Path, fail: (p: Path, r: string) => never): number {
  try {
    return parseDuration(v as string)
  } catch (err) {
    return fail(path, (err as Error).message)
  }
}

function checkKeys(
  obj: Record<string, unknown>,
  allowed: string[],
  path: Path,
  keyLine: (path: Path, key: string) => number,
  fail: (p: Path, r: string, line?: number) => never,
): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k))
      fail([...path, k], `unknown key (expected one of ${allowed.join(', ')})`, keyLine(path, k))
  }
}

function pathText(path: Path): string {
  let s = ''
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p
  return s
}

function reasonOf(issue: z.core.$ZodIssue): string {
  const i = issue as z.core.$ZodIssue & { maximum?: number; minimum?: number; inclusive?: boolean; expected?: string }
  if (i.code === 'too_big') return `must be ${i.inclusive === false ? '<' : '<='} ${i.maximum}`
  if (i.code === 'too_small') return `must be ${i.inclusive === false ? '>' : '>='} ${i.minimum}`
  if (i.code === 'invalid_type') return `expected ${i.expected}`
  return issue.message
}
