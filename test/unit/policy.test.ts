import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseDuration } from '../../protocols/duration.ts'
import { InvalidInputError } from '../../protocols/errors.ts'
import { DEFAULT_POLICY } from '../../protocols/rollout/policy-defaults.ts'
import { parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import { RolloutPolicy } from '../../protocols/schemas/policy.ts'

const ISSUE_YAML = `stages:
  - { name: pilot, tags: [pilot], window: 10m }
  - { name: canary, percent: 5, min_devices: 1, window: 24h }
  - { name: wide, percent: 50, window: 24h }
  - { name: full, percent: 100 }
gates:
  latency_p95_ms: { max: 800, max_regression_pct: 20 }
  error_rate: { max: 0.01 }
  restarts: { max: 3, per: 5m }
  ooms: { max: 0 }
  min_reports: 1
exclude_tags: [low-ram]
inconclusive: hold
prestage: true
`

function refusal(text: string): string {
  try {
    parsePolicyYaml(text)
  } catch (err) {
    assert.ok(err instanceof InvalidInputError)
    return (err as Error).message
  }
  assert.fail('policy was accepted')
}

describe('policy yaml', () => {
  test('parses the issue example', () => {
    const p = parsePolicyYaml(ISSUE_YAML)
    assert.equal(p.stages.length, 4)
    assert.deepEqual(p.stages[0], { name: 'pilot', tags: ['pilot'], window_ms: 600_000, percent: 0, min_devices: 0 })
    assert.equal(p.stages[1].window_ms, 24 * 3_600_000)
    assert.equal(p.stages[3].window_ms, 0)
    assert.deepEqual(p.gates.restarts, { max: 3, per_ms: 300_000 })
    assert.deepEqual(p.gates.latency_p95_ms, { max: 800, max_regression_pct: 20 })
    assert.deepEqual(p.exclude_tags, ['low-ram'])
    assert.equal(p.prestage, true)
  })

  test('a one-stage policy is valid', () => {
    const p = parsePolicyYaml('stages:\n  - { name: all, percent: 100, window: 1s }\ngates:\n  min_reports: 0\n')
    assert.equal(p.stages.length, 1)
    assert.equal(p.stages[0].window_ms, 1000)
    assert.equal(p.gates.min_reports, 0)
  })

  test('refusals name the line and the reason', () => {
    assert.equal(
      refusal(ISSUE_YAML.replace('percent: 5,', 'percent: 500,')),
      'policy.yaml:3: stages[1].percent: must be <= 100',
    )
    assert.match(
      refusal(ISSUE_YAML.replace('percent: 50,', 'percent: 3,')),
      /^policy\.yaml:4: stages\[2\]\.percent: must not be lower/,
    )
    assert.match(
      refusal(ISSUE_YAML.replace('percent: 100', 'percent: 90')),
      /^policy\.yaml:5: stages\[3\]\.percent: the last stage must/,
    )
    assert.match(
      refusal(ISSUE_YAML.replace('window: 24h }\n  - { name: wide', 'window: 24x }\n  - { name: wide')),
      /^policy\.yaml:3: stages\[1\]\.window: expected a duration/,
    )
    assert.match(
      refusal(ISSUE_YAML.replace('per: 5m', 'per: soon')),
      /^policy\.yaml:9: gates\.restarts\.per: expected a duration/,
    )
    assert.match(
      refusal(ISSUE_YAML.replace('  ooms: { max: 0 }', '  oom: { max: 0 }')),
      /^policy\.yaml:10: gates\.oom: unknown key/,
    )
    assert.match(
      refusal(ISSUE_YAML.replace('min_reports: 1', 'min_reports: -1')),
      /^policy\.yaml:11: gates\.min_reports: must be >= 0/,
    )
    assert.match(
      refusal(ISSUE_YAML.replace('name: wide', 'name: canary')),
      /^policy\.yaml:4: stages\[2\]\.name: duplicate/,
    )
    assert.match(refusal('stages: [\n'), /^policy\.yaml:\d+: /)
    assert.match(refusal('gates: {}\n'), /^policy\.yaml:1: stages: /)
    assert.match(
      refusal(ISSUE_YAML.replace('prestage: true', 'prestage: maybe')),
      /^policy\.yaml:14: prestage: expected boolean/,
    )
  })

  test('custom file name in messages', () => {
    assert.throws(
      () => parsePolicyYaml('stages: 3\ngates: {}\n', { filename: 'p.yml' }),
      /^InvalidInputError: p\.yml:1: stages: /,
    )
  })

  test('parseDuration', () => {
    assert.equal(parseDuration('30s'), 30_000)
    assert.equal(parseDuration('10m'), 600_000)
    assert.equal(parseDuration('24h'), 86_400_000)
    assert.equal(parseDuration('1h30m'), 5_400_000)
    assert.equal(parseDuration('250ms'), 250)
    assert.equal(parseDuration('0'), 0)
    assert.throws(() => parseDuration('10'), InvalidInputError)
    assert.throws(() => parseDuration('m10'), InvalidInputError)
    assert.throws(() => parseDuration(5 as unknown as string), InvalidInputError)
  })

  test('DEFAULT_POLICY is a valid policy with a 100 % last stage', () => {
    const p = RolloutPolicy.parse(DEFAULT_POLICY)
    assert.deepEqual(p, DEFAULT_POLICY)
    assert.equal(p.stages.at(-1)!.percent, 100)
  })
})

test('gates.vote_max_age is a duration', () => {
  const p = parsePolicyYaml('stages:\n  - { name: all, percent: 100 }\ngates:\n  min_reports: 1\n  vote_max_age: 2m\n')
  assert.equal(p.gates.vote_max_age_ms, 120_000)
  assert.throws(
    () => parsePolicyYaml('stages:\n  - { name: all, percent: 100 }\ngates:\n  vote_max_age: soon\n'),
    /policy\.yaml:4/,
  )
})

test('stages[].sites: site names, bounded; absent leaves the stage unlimited (policies signed before it mean the same)', () => {
  const p = parsePolicyYaml(
    'stages:\n  - { name: a-first, percent: 50, sites: [a, head.office] }\n  - { name: all, percent: 100 }\ngates:\n  min_reports: 1\n',
  )
  assert.deepEqual(p.stages[0].sites, ['a', 'head.office'])
  assert.equal('sites' in p.stages[1], false, 'no `sites: []` added: the signed policy stays as written')
  assert.match(
    refusal('stages:\n  - { name: a, percent: 100, sites: [Site A] }\ngates:\n  min_reports: 1\n'),
    /^policy\.yaml:2: stages\[0\]\.sites\[0\]: expected a site name/,
  )
  assert.match(
    refusal('stages:\n  - { name: a, percent: 100, sites: a }\ngates:\n  min_reports: 1\n'),
    /^policy\.yaml:2: stages\[0\]\.sites: expected array/,
  )
  const many = Array.from({ length: 33 }, (_, i) => `s${i}`).join(', ')
  assert.match(
    refusal(`stages:\n  - { name: a, percent: 100, sites: [${many}] }\ngates:\n  min_reports: 1\n`),
    /stages\[0\]\.sites: must be <= 32/,
  )
  assert.match(
    refusal('stages:\n  - { name: a, percent: 100, site: [a] }\ngates:\n  min_reports: 1\n'),
    /stages\[0\]\.site: unknown key \(expected one of name, percent, min_devices, tags, sites, window\)/,
  )
})
