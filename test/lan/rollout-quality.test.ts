/**
 * Issue 18, first acceptance bullet: the quality gate with real `llmesh` processes in network
 * namespaces (seed + 3 devices, real inference workers and quality probers at their default
 * budget: one probe per 10 s at most, only when idle). The probe set's references are v1's own
 * greedy tokens, made by running v1 in an inference worker of the test process; releases are
 * published with `llmesh release publish --probes <file>`.
 * 1. v2 = v1 + small weight noise: the devices still on v1 run v2's probes (the perplexity
 *    baseline), the canary runs them on v2, the gate passes and v2 is promoted everywhere.
 * 2. v3 = v1 + large noise: the canary loads it and answers a chat completion without error, then
 *    the fleet aborts v3 on the quality gate alone (no other gate failed, no device failed to run
 *    it), the adopted verdict naming the probe figures and carrying the signed reports that hold
 *    them; every device is back on v2 and serving.
 * Two probes of 24 tokens keep a pass at 10–20 s per version (the default 10 s probe interval).
 */

import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { InferenceSupervisor } from '../../node/inference/inference-supervisor.ts'
import { silentLogger } from '../../node/logger.ts'
import type { GateFigure, HealthReport, ProbeSet, ReleaseManifest, Verdict } from '../../protocols/schemas/index.ts'
import { type TinyGgufOptions, writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { POLICIES, scaled } from '../helpers/index.ts'
import type { LanNode } from './helpers.ts'
import { badLines, canRunBed, REPO_ROOT, until } from './netns.ts'
import { logTime, publishTiny, type RolloutBed, rolloutOf, serving, startRolloutBed, statusOf } from './rollout-bed.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'
const BIN = join(REPO_ROOT, 'cli', 'bin.ts')
// health gates that judge with no traffic; latency and error gates would hold (inconclusive)
// below 10 requests, and a steady load would keep the idle-only probers from ever running
const QUALITY = `
stages:
  - { name: canary, percent: 1, min_devices: 1, window: 2s }
  - { name: full, percent: 100 }
gates:
  min_reports: 1
  restarts: { max: 3, per: 5m }
  ooms: { max: 0 }
  quality: { min_agreement: 0.8, max_perplexity_regression_pct: 25, min_devices: 1 }
exclude_tags: [seed]
`
const SMALL_NOISE = { noise: 0.02 }
const LARGE_NOISE = { noise: 1 }
const PROMPTS = ['The capital of France is', 'Once upon a time']
const PROBE_TOKENS = 24

/** One line of a node's messages.jsonl. */
type Stored = { d: string; s: string; m: { type: string } }

describe('quality gate (network namespaces)', { skip, timeout: scaled(300_000) }, () => {
  let rb: RolloutBed
  const sets = new Map<string, string>()

  before(async () => {
    rb = await startRolloutBed({ tags: [[], [], []] })
  })

  after(async () => {
    await rb?.bed.destroy()
  })

  const allServing = async (v: string) =>
    (await Promise.all(rb.devices.map((n) => statusOf(rb.bed, n)))).every((s) => serving(s, v))
  const everyNode = async (v: string, state: string) =>
    (await Promise.all(rb.nodes.map((n) => rolloutOf(rb.bed, n, v)))).every((r) => r?.state === state)

  /** Messages the seed verified and stored, by digest. */
  const stored = async (): Promise<Map<string, Stored>> => {
    const text = await readFile(join(rb.seed.dataDir, 'messages.jsonl'), 'utf8')
    const out = new Map<string, Stored>()
    for (const l of text.split('\n')) {
      if (!l.startsWith('{')) continue
      const x = JSON.parse(l) as Stored
      out.set(x.d, x)
    }
    return out
  }

  /** The adopted verdict of `outcome` on a release, as the seed stored it. */
  const adoptedVerdict = async (version: string, outcome: 'promote' | 'abort'): Promise<Verdict> => {
    const st = (await rolloutOf(rb.bed, rb.seed, version))!
    const v = st.verdicts.find((x) => x.outcome === outcome && x.adopted && x.stage === 0)
    assert.ok(v, `an adopted ${outcome} verdict on stage 0: ${JSON.stringify(st.verdicts)}`)
    return (await stored()).get(v.digest)!.m as Verdict
  }

  /** Writes a tiny GGUF and publishes it with the probe file through the CLI on the seed; the probe set digest. */
  const publishProbed = async (version: string, gguf: TinyGgufOptions): Promise<string> => {
    const file = join(rb.work, `tiny-${version}.gguf`)
    await writeTinyGguf(file, { layers: 2, embd: 64, ...gguf })
    const pol = join(rb.work, `policy-${version}.yaml`)
    await writeFile(pol, QUALITY)
    const { stdout } = await rb.bed.exec(
      rb.seed.host,
      process.execPath,
      [
        BIN,
        ...['release', 'publish', file, '--model', 'tiny', '--version', version, '--policy', pol],
        ...['--probes', join(rb.work, 'probes.json'), '--json', '--api', rb.seed.info.api],
      ],
      120_000,
    )
    const m = (JSON.parse(stdout) as { manifest: ReleaseManifest }).manifest
    const digest = m.provenance.validation_dataset?.digest
    assert.ok(digest !== undefined && m.probes?.probes.length === PROMPTS.length, JSON.stringify(m.provenance))
    sets.set(version, digest)
    return digest
  }

  /** A chat completion asked of a device from inside its namespace: the parsed body and the time it took. */
  const chat = async (n: LanNode) => {
    const body = JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 })
    const t0 = Date.now()
    const { stdout } = await rb.bed.exec(n.host, 'curl', [
      ...['-sf', '--max-time', String(scaled(30)), '-H', 'content-type: application/json'],
      ...['-d', body, `${n.info.api}/v1/chat/completions`],
    ])
    const r = JSON.parse(stdout) as {
      choices: Array<{ message: { content: string } }>
      usage: { completion_tokens: number }
    }
    return { ms: Date.now() - t0, text: r.choices[0].message.content, tokens: r.usage.completion_tokens }
  }

  /** v1's own greedy output for each prompt: the references, made in a worker of this process. */
  const references = async (file: string): Promise<ProbeSet> => {
    const sup = new InferenceSupervisor({ logger: silentLogger() }, { threads: 1 })
    try {
      await sup.start()
      await sup.loadModel(file)
      const probes = []
      for (const prompt of PROMPTS) {
        const r = await sup.score({ prompt, maxTokens: PROBE_TOKENS })
        assert.equal(r.greedy?.length, PROBE_TOKENS)
        probes.push({ prompt, reference: r.text ?? '', reference_tokens: r.greedy })
      }
      return { id: 'tiny-lan', generation: { greedy: true, max_tokens: PROBE_TOKENS }, probes }
    } finally {
      await sup.stop()
    }
  }

  const quality = (v: Verdict) => v.figures.filter((x) => x.gate.startsWith('quality.'))
  const fig = (figures: GateFigure[], gate: string) => figures.find((x) => x.gate === gate)!

  test('v2 = v1 + small noise passes the quality gate against the v1 devices and is promoted', async () => {
    await publishTiny(rb, '1.0.0', POLICIES.ONE_STAGE)
    const [probes] = await Promise.all([
      references(join(rb.work, 'tiny-1.0.0.gguf')),
      until(() => allServing('1.0.0'), 90_000, 'every device serving v1'),
    ])
    await writeFile(join(rb.work, 'probes.json'), JSON.stringify(probes))

    const t0 = Date.now()
    await publishProbed('2.0.0', SMALL_NOISE)
    await until(() => everyNode('2.0.0', 'promoted'), 150_000, 'v2 promoted on every node')
    const promotedMs = Date.now() - t0
    const promote = await adoptedVerdict('2.0.0', 'promote')
    const agreement = fig(promote.figures, 'quality.agreement')
    const ppl = fig(promote.figures, 'quality.perplexity.regression')
    assert.ok(agreement?.pass && agreement.value! >= 0.8, JSON.stringify(promote.figures))
    // judged against the devices still on v1, which ran v2's probes on v1
    assert.ok(ppl?.pass && ppl.baseline !== null && ppl.baseline! > 0, JSON.stringify(promote.figures))
    await until(() => allServing('2.0.0'), 90_000, 'every device serving v2')
    console.log(
      `# figure (LAN): v2 promote figures ${JSON.stringify(quality(promote))}; published → promoted everywhere ${promotedMs} ms`,
    )
  })

  test('v3 = v1 + large noise answers without errors and is aborted by the quality gate alone', async () => {
    const t0 = Date.now()
    const set = await publishProbed('3.0.0', LARGE_NOISE)
    // the canary serves v3 and answers a chat completion without error
    await until(
      () => rb.devices.some((n) => logTime(n, 'release serving', '3.0.0') !== undefined),
      120_000,
      'a canary serving v3',
    )
    const canary = rb.devices.find((n) => logTime(n, 'release serving', '3.0.0') !== undefined)!
    const servedAt = logTime(canary, 'release serving', '3.0.0')!
    const answer = await chat(canary)
    assert.ok(answer.tokens > 0 && typeof answer.text === 'string', JSON.stringify(answer))
    assert.ok(answer.ms < scaled(10_000), `answered in ${answer.ms} ms`)

    await until(() => everyNode('3.0.0', 'aborted'), 150_000, 'v3 aborted on every node')
    const abortedMs = Date.now() - t0
    const st = (await rolloutOf(rb.bed, rb.seed, '3.0.0'))!
    assert.ok(st.abortedBy?.startsWith('verdict:'), st.abortedBy)
    assert.deepEqual(st.failures?.failed ?? [], [], 'no device failed to run v3')
    const abort = await adoptedVerdict('3.0.0', 'abort')
    // only quality figures failed: no health, latency or error gate fired
    const failed = abort.figures.filter((x) => !x.pass && x.gate !== 'window_ms')
    assert.ok(
      failed.length > 0 && failed.every((x) => x.gate.startsWith('quality.')),
      `only the quality gate failed: ${JSON.stringify(abort.figures)}`,
    )
    const agreement = fig(abort.figures, 'quality.agreement')
    assert.ok(agreement && !agreement.pass && agreement.value! < 0.8, JSON.stringify(abort.figures))
    // the evidence: signed reports carrying figures for v3's probe set, the canary's on v3 among them
    const msgs = await stored()
    const reports = abort.evidence.map((e) => msgs.get(e.digest)?.m as HealthReport | undefined)
    assert.ok(reports.length > 0 && reports.every((r) => r?.type === 'HealthReport'), JSON.stringify(abort.evidence))
    assert.ok(reports.every((r) => r!.quality?.some((q) => q.probe_set === set)))
    const bad = reports.find((r) => r!.device === canary.info.peerId)
    const q3 = bad?.quality?.find((q) => q.version === '3.0.0' && q.probe_set === set)
    assert.ok(q3 && q3.agreed / q3.tokens < 0.8, JSON.stringify(bad?.quality))
    // a perplexity judged against the v2 devices carries their reports (v3's probes run on v2) too
    if (fig(abort.figures, 'quality.perplexity.regression')?.baseline != null) {
      assert.ok(reports.some((r) => r!.quality?.some((q) => q.version === '2.0.0' && q.probe_set === set)))
    }
    // the canary's v3 traffic, as its reports told the fleet: served, no error
    const served = [...msgs.values()]
      .filter((x) => x.m.type === 'HealthReport' && x.s === canary.info.peerId)
      .flatMap((x) => (x.m as HealthReport).inference.filter((i) => i.version === '3.0.0'))
    assert.ok(
      served.reduce((n, i) => n + i.requests, 0) >= 1 && served.every((i) => i.errors === 0),
      JSON.stringify(served),
    )
    for (const n of rb.devices.filter((d) => d !== canary)) {
      assert.equal(logTime(n, 'activating release', '3.0.0'), undefined, `${n.proc.name} activated v3`)
    }

    await until(() => allServing('2.0.0'), 60_000, 'every device back on v2')
    const back = await chat(canary)
    assert.ok(back.tokens > 0)
    console.log(
      `# figure (LAN): v3 abort figures ${JSON.stringify(quality(abort))}; canary answered on v3 in ${answer.ms} ms; ` +
        `published → canary serving +${servedAt - t0} ms, aborted everywhere +${abortedMs} ms`,
    )

    for (const n of rb.nodes) {
      const exit = await rb.bed.terminate(n.proc)
      assert.equal(exit.code, 0, `${n.proc.name} exit ${JSON.stringify(exit)}`)
      assert.deepEqual(badLines(n.proc), [], n.proc.name)
    }
  })
})
