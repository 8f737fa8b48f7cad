/**
 * Scoring a quality probe in the inference worker (child process), on the sequence reserved for
 * probes, at the lowest evaluation priority. Teacher forced: the prompt and the reference are
 * evaluated once; at each reference position the model's probabilities give whether its most
 * likely next token is the reference token (agreement) and −ln p(reference token) (the reference's
 * log-likelihood, hence perplexity). Evaluation goes in chunks of SCORE_CHUNK_TOKENS, checking the
 * abort signal between them, so a user request preempts a probe within one chunk.
 * Without a reference it generates greedily instead and returns the tokens (references made by
 * running the reference version). Never logs text.
 */
import type { LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp'
import { SCORE_CHUNK_TOKENS, SCORE_MAX_TOKEN_NLL } from './constants.ts'
import type { ScoreResult, ScoreSpec } from './ipc.ts'

type Item = Token | [Token, { generateNext: { probabilities?: boolean; token?: boolean } }]

function aborted(signal: AbortSignal): void {
  if (signal.aborted) throw new Error('probe preempted')
}

/** Scores one probe on `seq` (its history is cleared first). */
export async function scoreProbe(
  model: LlamaModel,
  seq: LlamaContextSequence,
  spec: ScoreSpec,
  signal: AbortSignal,
): Promise<ScoreResult> {
  await seq.clearHistory()
  const maxTokens = Math.max(1, Math.min(spec.maxTokens, 64))
  const bos = model.tokens.bos
  const ref = (spec.referenceTokens ?? (spec.reference ? model.tokenize(spec.reference, false) : [])).slice(
    0,
    maxTokens,
  ) as Token[]
  // keep the prompt's end when prompt + reference would not fit the sequence
  const room = Math.max(1, seq.contextSize - maxTokens - 2)
  const prompt = [...(bos == null ? [] : [bos]), ...model.tokenize(spec.prompt, false)].slice(-room) as Token[]
  const run = async (items: Item[]) => {
    const out = []
    for (let i = 0; i < items.length; i += SCORE_CHUNK_TOKENS) {
      aborted(signal)
      const part = items.slice(i, i + SCORE_CHUNK_TOKENS)
      const res = await seq.controlledEvaluate(part as never, { evaluationPriority: 1 })
      for (let j = 0; j < part.length; j++) out.push(res[j])
    }
    return out
  }
  if (ref.length === 0) return generate(model, prompt, maxTokens, run)
  // position k (the last prompt token, then each reference token but the last) predicts ref[k]
  const items: Item[] = [
    ...prompt.slice(0, -1),
    ...[prompt[prompt.length - 1], ...ref.slice(0, -1)].map(
      (t): Item => [t, { generateNext: { probabilities: true } }],
    ),
  ]
  const out = await run(items)
  let agreed = 0
  let nll = 0
  for (let k = 0; k < ref.length; k++) {
    const probs = out[prompt.length - 1 + k]?.next.probabilities
    if (probs === undefined) throw new Error('no probabilities for a reference token')
    const top = probs.keys().next().value
    if (top === ref[k]) agreed++
    const p = probs.get(ref[k]) ?? 0
    nll += Math.min(p > 0 ? -Math.log(p) : SCORE_MAX_TOKEN_NLL, SCORE_MAX_TOKEN_NLL)
  }
  return { tokens: ref.length, agreed, nll }
}

async function generate(
  model: LlamaModel,
  prompt: Token[],
  maxTokens: number,
  run: (items: Item[]) => Promise<Array<{ next: { token?: Token | null } } | undefined>>,
): Promise<ScoreResult> {
  const greedy: Token[] = []
  let items: Item[] = [...prompt.slice(0, -1), [prompt[prompt.length - 1], { generateNext: { token: true } }]]
  while (greedy.length < maxTokens) {
    const out = await run(items)
    const t = out[items.length - 1]?.next.token
    if (t == null || t === model.tokens.eos) break
    greedy.push(t)
    items = [[t, { generateNext: { token: true } }]]
  }
  return { tokens: 0, agreed: 0, nll: 0, greedy, text: model.detokenize(greedy) }
}
