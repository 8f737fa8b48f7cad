/**
 * Quality probe scoring on a real worker (node-llama-cpp in a child process, tiny models):
 * references made by running v1 agree fully under v1, nearly under v1 + small noise, hardly under
 * v1 + large noise; a cancel stops a probe; no probe without a served model.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { InferenceSupervisor } from '../../node/inference/inference-supervisor.ts'
import { silentLogger } from '../../node/logger.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'

const PROMPTS = ['The capital of France is', 'Once upon a time', '1, 2, 3,']

describe('quality probe scoring on a real worker', () => {
  const sup = new InferenceSupervisor({ logger: silentLogger() }, { threads: 1 })
  const paths: Record<string, string> = {}
  let dir = ''
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llmesh-quality-'))
    for (const [v, noise] of [
      ['v1', 0],
      ['v2', 0.02],
      ['v3', 1],
    ] as const) {
      paths[v] = (await writeTinyGguf(join(dir, `${v}.gguf`), { noise })).path
    }
    await sup.start()
  })
  after(async () => {
    await sup.stop()
    await rm(dir, { recursive: true, force: true })
  })

  async function pass(refs: number[][]) {
    let tokens = 0
    let agreed = 0
    let nll = 0
    for (const [i, prompt] of PROMPTS.entries()) {
      const r = await sup.score({ prompt, referenceTokens: refs[i], maxTokens: 16 })
      tokens += r.tokens
      agreed += r.agreed
      nll += r.nll
    }
    return { agreement: agreed / tokens, perplexity: Math.exp(nll / tokens), tokens }
  }

  test('no probe without a served model', async () => {
    await assert.rejects(sup.score({ prompt: 'x', maxTokens: 4 }), { code: 'ERR_MODEL_UNAVAILABLE' })
  })

  test('agreement and perplexity separate v1, v1 + small noise and v1 + large noise', async () => {
    await sup.loadModel(paths.v1)
    const refs: number[][] = []
    for (const prompt of PROMPTS) {
      const g = await sup.score({ prompt, maxTokens: 16 })
      assert.equal(g.greedy?.length, 16, 'greedy generation gives the reference tokens')
      refs.push(g.greedy!)
    }
    const v1 = await pass(refs)
    assert.equal(v1.tokens, 48)
    assert.equal(v1.agreement, 1, 'v1 agrees with its own greedy output')
    await sup.switchModel(paths.v2)
    const v2 = await pass(refs)
    await sup.switchModel(paths.v3)
    const v3 = await pass(refs)
    assert.ok(v2.agreement >= 0.8, `v2 ${v2.agreement}`)
    assert.ok(v3.agreement < 0.3, `v3 ${v3.agreement}`)
    assert.ok(Math.abs(v2.perplexity / v1.perplexity - 1) < 0.1, `${v2.perplexity} vs ${v1.perplexity}`)
    assert.ok(v3.perplexity > 1.5 * v1.perplexity, `${v3.perplexity} vs ${v1.perplexity}`)
    // text references are scored by their tokens
    const t = await sup.score({ prompt: 'Hello', reference: ' world', maxTokens: 16 })
    assert.ok(t.tokens > 0 && t.tokens <= 16 && t.nll > 0)
  })

  test('a cancelled probe stops with an error, and the probe sequence serves the next one', async () => {
    const ac = new AbortController()
    ac.abort()
    await assert.rejects(sup.score({ prompt: 'x'.repeat(200), maxTokens: 16 }, ac.signal), /preempted/)
    const ac2 = new AbortController()
    const p = sup.score({ prompt: 'y '.repeat(100), maxTokens: 64 }, ac2.signal)
    ac2.abort()
    await p.then(
      (r) => assert.ok(r.greedy !== undefined, 'finished before the cancel arrived'),
      (e: Error) => assert.match(e.message, /preempted/),
    )
    const ok = await sup.score({ prompt: 'after', maxTokens: 4 })
    assert.equal(ok.greedy?.length, 4)
  })
})
