/**
 * The quality gate across a real fleet on loopback (seed + 3 devices, real inference workers,
 * real probers): references are made by running v1 (greedy tokens through the supervisor's probe
 * path); v2 = v1 + small weight noise passes the quality gate and promotes; v3 = v1 + large noise
 * loads, passes its post-load probe and answers chat without errors, yet is aborted on every node
 * by the quality gate alone, the abort verdict naming the probe figures and carrying as evidence
 * the signed reports that hold them.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { InferenceSupervisor } from '../../node/inference/inference-supervisor.ts'
import { silentLogger } from '../../node/logger.ts'
import type { HealthReport, ProbeSet, Verdict } from '../../protocols/schemas/index.ts'
import { CHROMIUM, launchBrowser } from '../browser/chromium.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { scaled } from '../helpers/index.ts'
import {
  activeOf,
  ONE_STAGE,
  publish,
  type RolloutFleet,
  rolloutOf,
  startRolloutFleet,
  waitAllServing,
  waitFor,
} from './rollout-helpers.ts'

const QUALITY = `
stages:
  - { name: canary, percent: 1, min_devices: 1, window: 2s }
  - { name: full, percent: 100 }
gates:
  min_reports: 1
  quality: { min_agreement: 0.8, max_perplexity_regression_pct: 25, min_devices: 1 }
`
const SMALL_NOISE = { noise: 0.02 }
const LARGE_NOISE = { noise: 1 }
const PROMPTS = ['The capital of France is', 'Once upon a time', 'llmesh ships models to', '1, 2, 3, 4,']

describe('quality gate across a real fleet', { timeout: scaled(400_000) }, () => {
  let f: RolloutFleet
  let probes: ProbeSet
  before(async () => {
    f = await startRolloutFleet([[], [], []], undefined, { quality: { intervalMs: 300, idleMs: 100, cpuSharePct: 50 } })
    await publish(f, '1.0.0', ONE_STAGE)
    await waitAllServing(f, '1.0.0', 90_000)
    // the references: v1's own greedy output, made by running it
    const sup = f.devices[0].parts.supervisor!
    const refs = []
    for (const prompt of PROMPTS) {
      const r = await sup.score({ prompt, maxTokens: 16 })
      assert.equal(r.greedy?.length, 16)
      refs.push({ prompt, reference: r.text ?? '', reference_tokens: r.greedy })
    }
    probes = { id: 'tiny-smoke', generation: { greedy: true, max_tokens: 16 }, probes: refs }
  })
  after(async () => {
    await f?.stop()
  })
  const nodes = () => [f.seedParts, ...f.devices.map((d) => d.parts)]

  test('v2 = v1 + small noise passes the quality gate (against v1 devices running its probes) and promotes', async () => {
    await publish(f, '2.0.0', QUALITY, SMALL_NOISE, probes)
    await waitFor(
      () => nodes().every((p) => rolloutOf(p, '2.0.0')?.phase === 'promoted'),
      120_000,
      'v2 promoted on every node',
    )
    const promote = verdicts('2.0.0').find((v) => v.outcome === 'promote')!
    const agreement = promote.figures.find((x) => x.gate === 'quality.agreement')!
    const ppl = promote.figures.find((x) => x.gate === 'quality.perplexity.regression')!
    assert.ok(agreement.pass && agreement.value! >= 0.8, JSON.stringify(agreement))
    assert.ok(ppl.pass && ppl.baseline !== null, JSON.stringify(ppl))
    console.log('v2 promote figures', JSON.stringify([agreement, ppl]))
    await waitAllServing(f, '2.0.0', 90_000)
  })

  test('v3 = v1 + large noise loads and answers, and is aborted by the quality gate alone', async () => {
    // it loads and answers without errors: the same file in a worker of its own
    const file = join(f.dir, 'v3-check.gguf')
    await writeTinyGguf(file, { layers: 2, embd: 64, ...LARGE_NOISE })
    const sup = new InferenceSupervisor({ logger: silentLogger() }, { threads: 1 })
    try {
      await sup.start()
      await sup.loadModel(file)
      const out = await sup.generate({ mode: 'chat', messages: [{ role: 'user', content: 'hello' }], maxTokens: 8 })
      assert.ok(out.tokensOut > 0)
    } finally {
      await sup.stop()
    }

    await publish(f, '3.0.0', QUALITY, LARGE_NOISE, probes)
    await waitFor(
      () => nodes().every((p) => rolloutOf(p, '3.0.0')?.phase === 'aborted'),
      120_000,
      'v3 aborted on every node',
    )
    // the canary loaded v3 (load and post-load probe passed) before the abort
    assert.ok(
      f.devices.some((d) => d.loaded.some((l) => l.version === '3.0.0')),
      'a canary device served v3',
    )
    const abort = verdicts('3.0.0').find((v) => v.outcome === 'abort')!
    assert.ok(abort, 'an abort verdict')
    const failed = abort.figures.filter((x) => !x.pass && x.gate !== 'window_ms')
    assert.ok(
      failed.length > 0 && failed.every((x) => x.gate.startsWith('quality.')),
      `only the quality gate failed: ${JSON.stringify(abort.figures)}`,
    )
    const agreement = failed.find((x) => x.gate === 'quality.agreement')!
    assert.ok(agreement.value! < 0.8)
    console.log('v3 abort figures', JSON.stringify(abort.figures.filter((x) => x.gate.startsWith('quality'))))
    // its evidence: the signed reports carrying the probe figures (the canary's on v3, and for the
    // perplexity regression the baseline's on v2), nothing else
    const reports = abort.evidence.map((e) => f.seed.context.store.get(e.digest)?.message as HealthReport)
    const set = rolloutManifestDigest('3.0.0')
    assert.ok(reports.every((r) => r.quality?.some((q) => q.probe_set === set)))
    assert.ok(reports.some((r) => r.quality?.some((q) => q.version === '3.0.0' && q.agreed / q.tokens < 0.8)))
    assert.ok(reports.some((r) => r.quality?.some((q) => q.version === '2.0.0' && q.agreed / q.tokens > 0.8)))
    assert.deepEqual(rolloutOf(f.seedParts, '3.0.0')?.failures?.failed ?? [], [], 'no device failed to run it')
    await waitFor(
      async () => (await Promise.all(f.devices.map(activeOf))).every((v) => v === '2.0.0'),
      60_000,
      'every device back on v2',
    )
  })

  test('the Dev view plots and lists the probe figures per version, as the gate judged them', {
    skip: !existsSync(CHROMIUM) && 'no Chromium',
  }, async () => {
    // aborted: no gate evaluated any more, the figures are the adopted abort verdict's
    const abort = verdicts('3.0.0').find((v) => v.outcome === 'abort')!
    const agreement = abort.figures.find((x) => x.gate === 'quality.agreement')
    assert.ok(agreement?.value !== null && agreement !== undefined, JSON.stringify(abort.figures))
    const browser = await launchBrowser()
    try {
      const page = await browser.context.newPage()
      const pageErrors: string[] = []
      page.on('pageerror', (e) => pageErrors.push(e.message))
      await page.goto(`${f.seed.apiUrl}/dashboard#dev`)
      const row = page.locator('[data-table="quality"] tr[data-row="tiny@3.0.0"]')
      await row.waitFor({ timeout: scaled(30_000) })
      const cells = await row.locator('td').allTextContents()
      assert.equal(cells[0], 'tiny@3.0.0')
      // shown to 3 significant digits
      assert.equal(Number(cells[2]), Number(agreement.value!.toPrecision(3)), cells.join(' | '))
      assert.equal(cells[7], 'no', 'v3 failed the gate')
      const v2 = await page.locator('[data-table="quality"] tr[data-row="tiny@2.0.0"] td').allTextContents()
      if (v2.length > 0) assert.equal(v2[7], 'yes', v2.join(' | '))
      // one bar per version with figures
      assert.ok((await page.locator('[data-plot="quality-agreement"] rect').count()) >= 1)
      assert.deepEqual(pageErrors, [])
    } finally {
      await browser.close()
    }
  })

  function rolloutManifestDigest(version: string): string | undefined {
    return f.seed.context.store.releases().find((r) => r.message.model === 'tiny' && r.message.version === version)
      ?.message.provenance.validation_dataset?.digest
  }

  function verdicts(version: string): Verdict[] {
    return f.seed.context.store
      .list('Verdict')
      .map((x) => x.message)
      .filter((v) => v.model === 'tiny' && v.version === version)
  }
})
