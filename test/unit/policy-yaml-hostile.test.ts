/**
 * Hostile policy YAML: every refusal is an InvalidInputError naming the file and a line (the seed
 * answers 400), never a ReferenceError, RangeError or anything else (which became a 500).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { InvalidInputError } from '../../protocols/errors.ts'
import { POLICY_LIMITS, parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import { RolloutPolicy } from '../../protocols/schemas/policy.ts'

const VALID = `stages:
  - { name: canary, percent: 5, window: 10m }
  - { name: full, percent: 100 }
gates:
  min_reports: 2
  error_rate: { max: 0.05 }
exclude_tags: [seed]
`

/** Asserts `fn` throws an InvalidInputError `file:line: …` and returns the line. */
function refusedAt(fn: () => unknown, file = 'policy.yaml'): number {
  try {
    fn()
  } catch (err) {
    assert.ok(
      err instanceof InvalidInputError,
      `expected InvalidInputError, got ${(err as Error)?.constructor?.name}: ${err}`,
    )
    assert.equal(err.code, 'ERR_INVALID_INPUT')
    const m = new RegExp(`^${file.replace('.', '\\.')}:(\\d+): `).exec(err.message)
    assert.ok(m, `no file:line in ${err.message}`)
    return Number(m[1])
  }
  assert.fail('expected a refusal')
}

describe('policy yaml: hostile input', () => {
  test('the valid policy parses (the base the fuzzer mutates)', () => {
    assert.equal(parsePolicyYaml(VALID).stages.length, 2)
  })

  test('an alias bomb is refused as input, fast', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      'stages: [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
    ].join('\n')
    const t0 = performance.now()
    refusedAt(() => parsePolicyYaml(bomb, { filename: 'bomb.yaml' }), 'bomb.yaml')
    // a few aliases only (under the count bound), still expanding too much
    const small = `a: &a [1, 2, 3]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nstages: [*c, *c]\n`
    const line = refusedAt(() => parsePolicyYaml(small))
    assert.ok(line >= 1)
    assert.ok(performance.now() - t0 < 2000)
  })

  test('an unresolved alias is refused at its line', () => {
    const text = 'stages:\n  - { name: full, percent: 100 }\ngates: *nope\n'
    assert.equal(
      refusedAt(() => parsePolicyYaml(text)),
      3,
    )
  })

  test('deep nesting (flow and block) is refused by its bound, at its line, never by a stack overflow', () => {
    const deep = (text: string): number => {
      const line = refusedAt(() => parsePolicyYaml(text))
      try {
        parsePolicyYaml(text)
      } catch (err) {
        assert.match((err as Error).message, new RegExp(`nested deeper than ${POLICY_LIMITS.maxDepth} levels$`))
      }
      return line
    }
    const head = 'stages:\n  - name: full\n    percent: 100\n'
    assert.equal(deep(`${head}gates: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`), 4)
    assert.equal(deep(`${head}gates: ${'{a: '.repeat(300)}1${'}'.repeat(300)}\n`), 4)
    const block = `${head}gates:\n${Array.from({ length: 40 }, (_, i) => `${'  '.repeat(i + 1)}a:`).join('\n')} 1\n`
    const at = deep(block) // the line of the first key past the bound (or the line before, where its value starts)
    assert.ok(at >= 3 + POLICY_LIMITS.maxDepth && at <= 4 + POLICY_LIMITS.maxDepth, String(at))
    assert.ok(deep(`${head}gates:\n  ${'- '.repeat(20_000)}x\n`) >= 4)
  })

  test('oversized text is refused before parsing', () => {
    refusedAt(() => parsePolicyYaml(`# ${'x'.repeat(POLICY_LIMITS.maxChars)}\n${VALID}`))
  })

  test('fuzz: only a valid policy or an InvalidInputError with file:line comes out', () => {
    const tokens = [
      '*a',
      '&a ',
      '[',
      ']',
      '{',
      '}',
      ':',
      ': ',
      '- ',
      '\n',
      '\n  ',
      ',',
      '"',
      "'",
      '!!binary ',
      '!!str ',
      '!x ',
      '<<: ',
      '? ',
      '|',
      '>',
      '#',
      '%YAML 1.2\n',
      '---\n',
      '...\n',
      '0',
      '-1',
      '1e309',
      'NaN',
      '.inf',
      '~',
      'null',
      'true',
      '10m',
      'stages',
      'gates',
      'window',
      'percent',
      '100',
      '\t',
      '\\',
      '\u0000',
      '\uFEFF',
      '@',
    ]
    const mutated = fc
      .tuple(fc.nat(VALID.length), fc.array(fc.constantFrom(...tokens), { minLength: 1, maxLength: 8 }), fc.nat(12))
      .map(([at, ins, del]) => VALID.slice(0, at) + ins.join('') + VALID.slice(at + del))
    const soup = fc.array(fc.constantFrom(...tokens), { maxLength: 40 }).map((t) => t.join(''))
    const text = fc.oneof(mutated, soup, fc.string({ maxLength: 200 }))
    let accepted = 0
    fc.assert(
      fc.property(text, (t) => {
        let policy: unknown
        try {
          policy = parsePolicyYaml(t, { filename: 'fuzz.yaml' })
        } catch (err) {
          if (!(err instanceof InvalidInputError)) return false
          return /^fuzz\.yaml:\d+: /.test(err.message)
        }
        accepted++
        return RolloutPolicy.safeParse(policy).success
      }),
      { numRuns: 1500, seed: 9 },
    )
    assert.ok(accepted > 0, 'some mutations stay valid (the fuzzer reaches the checks past the parser)')
  })
})
