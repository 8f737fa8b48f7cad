/**
 * Fuzzing in the suite: every decoder and verifier of test/unit/fuzz-targets.ts (each message
 * schema, trust-root rotation, anti-entropy frames, the GGUF header) gets 1,000 mutants of a valid
 * input and arbitrary bytes; each answers `ok` or a typed refusal, never anything else. The wire
 * envelope's property tests are test/unit/one-encoding-fuzz.test.ts; bench/fuzz.ts runs 10,000 each.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import fc from 'fast-check'
import { type FuzzTarget, fuzzTargets, mutants } from './fuzz-targets.ts'

const targets = await fuzzTargets()

describe('decoders under fuzzing', () => {
  after(async () => {
    for (const t of targets) await t.close?.()
  })
  for (const t of targets) {
    test(`${t.name}: the valid seed is accepted, 1,000 mutants never crash`, async () => {
      assert.equal(await t.run(t.seed), 'ok', 'the seed is valid')
      const seen = { ok: 0, refused: 0 }
      await fc.assert(
        fc.asyncProperty(mutants(t.seed), async (b) => {
          seen[await (t as FuzzTarget).run(b)]++
        }),
        { numRuns: 1000, seed: 11 },
      )
      assert.ok(seen.refused > 0, `${JSON.stringify(seen)}: mutants are refused`)
    })
  }
})
