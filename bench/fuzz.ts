/**
 * Fuzzing at volume: every target of test/unit/fuzz-targets.ts (message schemas, trust-root
 * rotation, anti-entropy frames, GGUF header; the wire envelope has its own property tests in
 * test/unit/one-encoding-fuzz.test.ts) gets N
 * inputs (mutants of a valid one, and arbitrary bytes, seeded). Prints per target: runs, accepted,
 * refused (typed), crashes (anything else thrown: must be 0) and the slowest input.
 *
 *   node bench/fuzz.ts [--runs 10000] [--seed 1]
 */
import { parseArgs } from 'node:util'
import fc from 'fast-check'
import { type FuzzTarget, fuzzTargets, mutants } from '../test/unit/fuzz-targets.ts'

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '10000' }, seed: { type: 'string', default: '1' } },
})
const RUNS = Number(values.runs)
const SEED = Number(values.seed)

const targets = await fuzzTargets()
console.log(`${RUNS} inputs per decoder (seed ${SEED})\n`)
console.log('| decoder | runs | accepted | refused (typed) | crashes | worst ms | mean µs |')
console.log('|---|---:|---:|---:|---:|---:|---:|')
let crashes = 0
for (const t of targets) {
  const r = await fuzz(t)
  crashes += r.crashes
  console.log(
    `| ${t.name} | ${RUNS} | ${r.ok} | ${r.refused} | ${r.crashes} | ${r.worst.toFixed(2)} | ${((r.total / RUNS) * 1000).toFixed(0)} |`,
  )
  if (r.firstCrash) console.log(`  first crash: ${r.firstCrash}`)
}
for (const t of targets) await t.close?.()
process.exit(crashes === 0 ? 0 : 1)

async function fuzz(t: FuzzTarget) {
  const inputs = fc.sample(mutants(t.seed), { numRuns: RUNS, seed: SEED })
  const out = { ok: 0, refused: 0, crashes: 0, worst: 0, total: 0, firstCrash: '' }
  for (const b of inputs) {
    const t0 = performance.now()
    try {
      out[await t.run(b)]++
    } catch (err) {
      out.crashes++
      out.firstCrash ||= `${(err as Error).name}: ${(err as Error).message}`
    }
    const ms = performance.now() - t0
    out.total += ms
    if (ms > out.worst) out.worst = ms
  }
  return out
}
