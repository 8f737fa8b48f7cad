/**
 * Checks a parsed GGUF header for everything that makes llama.cpp refuse the file or, worse,
 * abort the process (missing hyper-parameters, zero dimensions, tensor data past the end).
 * Pure: works on the parsed header only.
 */
import type { GgufProblem } from './errors.ts'
import type { GgufInfo, GgufValue } from './gguf-types.ts'

/** Architectures without attention/FFN hyper-parameters (recurrent or codec models). */
const NO_ATTENTION_ARCHS = new Set(['mamba', 'mamba2', 'rwkv6', 'rwkv6qwen2', 'rwkv7', 'arwkv7', 'wavtokenizer-dec'])

const isPositive = (v: GgufValue | undefined): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0
const isCount = (v: GgufValue | undefined): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 1

/** Every reason llama.cpp would refuse (or crash on) this file; empty when it looks loadable. */
export function validateForLlama(info: GgufInfo): GgufProblem[] {
  const problems: GgufProblem[] = []
  const m = info.metadata
  const missing = (key: string): void => {
    problems.push({ code: 'ERR_GGUF_MISSING_KEY', key, message: `missing required key ${key}` })
  }
  const bad = (key: string, why: string): void => {
    problems.push({ code: 'ERR_GGUF_BAD_VALUE', key, message: `${key}: ${why}` })
  }

  const arch = info.architecture
  if (arch === undefined) {
    if (m['general.architecture'] === undefined) missing('general.architecture')
    else bad('general.architecture', 'not a string')
  } else {
    const counts = [`${arch}.context_length`, `${arch}.embedding_length`, `${arch}.block_count`]
    for (const key of counts) {
      if (m[key] === undefined) missing(key)
      else if (!isCount(m[key])) bad(key, `must be a positive integer, got ${String(m[key])}`)
    }
    if (!NO_ATTENTION_ARCHS.has(arch)) {
      // scalar, or one value per layer; either way at least one layer must be non-zero
      for (const key of [`${arch}.feed_forward_length`, `${arch}.attention.head_count`]) {
        const v = m[key]
        if (v === undefined) missing(key)
        else if (Array.isArray(v)) {
          if (!v.every((x) => typeof x === 'number' && x >= 0) || !v.some((x) => isCount(x))) {
            bad(key, 'per-layer values must be non-negative integers, at least one positive')
          }
        } else if (!isCount(v)) bad(key, `must be a positive integer, got ${String(v)}`)
      }
    }
    if (arch === 'llama') {
      const key = 'llama.attention.layer_norm_rms_epsilon'
      if (m[key] === undefined) missing(key)
      else if (!isPositive(m[key])) bad(key, `must be a positive number, got ${String(m[key])}`)
    }
  }

  checkTokenizer(info, missing, bad)
  checkTensors(info, problems)
  return problems
}

function checkTokenizer(info: GgufInfo, missing: (key: string) => void, bad: (key: string, why: string) => void): void {
  const m = info.metadata
  if (m['tokenizer.ggml.model'] === undefined) missing('tokenizer.ggml.model')
  else if (typeof m['tokenizer.ggml.model'] !== 'string') bad('tokenizer.ggml.model', 'not a string')
  const tokens = m['tokenizer.ggml.tokens']
  if (tokens === undefined) {
    if (m['tokenizer.ggml.model'] !== 'none') missing('tokenizer.ggml.tokens')
    return
  }
  if (!Array.isArray(tokens) || tokens.length === 0 || !tokens.every((t) => typeof t === 'string')) {
    bad('tokenizer.ggml.tokens', 'must be a non-empty array of strings')
    return
  }
  for (const key of ['tokenizer.ggml.token_type', 'tokenizer.ggml.scores']) {
    const v = m[key]
    if (v !== undefined && (!Array.isArray(v) || v.length !== tokens.length)) {
      bad(key, `must be an array of ${tokens.length} entries (one per token)`)
    }
  }
  for (const key of ['bos', 'eos', 'unknown', 'padding', 'seperator'].map((k) => `tokenizer.ggml.${k}_token_id`)) {
    const v = m[key]
    if (v !== undefined && (typeof v !== 'number' || v < 0 || v >= tokens.length)) {
      // llama.cpp tolerates -1 in some builds only; out of range ids index past the vocabulary
      if (!(v === -1 || v === 0xffffffff)) bad(key, `token id ${String(v)} outside the vocabulary`)
    }
  }
}

function checkTensors(info: GgufInfo, problems: GgufProblem[]): void {
  const push = (p: GgufProblem): void => {
    problems.push(p)
  }
  const { alignment } = info
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    push({ code: 'ERR_GGUF_BAD_VALUE', key: 'general.alignment', message: `alignment ${alignment} not a power of 2` })
    return
  }
  if (info.tensors.length === 0) {
    push({ code: 'ERR_GGUF_BAD_TENSOR', message: 'the file has no tensors' })
    return
  }
  const seen = new Set<string>()
  let truncated = 0
  let firstTruncated = ''
  for (const t of info.tensors) {
    const tensor = t.name
    if (seen.has(tensor)) push({ code: 'ERR_GGUF_BAD_TENSOR', tensor, message: `duplicate tensor ${tensor}` })
    seen.add(tensor)
    if (t.dims.some((d) => d < 1)) {
      push({ code: 'ERR_GGUF_BAD_TENSOR', tensor, message: `tensor ${tensor} has an empty dimension [${t.dims}]` })
    }
    if (t.size === undefined) {
      push({
        code: 'ERR_GGUF_BAD_TENSOR',
        tensor,
        message: `tensor ${tensor}: unsupported type or shape (${t.typeName})`,
      })
      continue
    }
    if (t.offset % alignment !== 0) {
      push({ code: 'ERR_GGUF_BAD_TENSOR', tensor, message: `tensor ${tensor} is not aligned to ${alignment} bytes` })
    }
    if (info.dataOffset + t.offset + t.size > info.fileSize) {
      truncated++
      if (firstTruncated === '') firstTruncated = tensor
    }
  }
  if (truncated > 0) {
    push({
      code: 'ERR_GGUF_TRUNCATED',
      tensor: firstTruncated,
      message: `${truncated} tensor(s) extend past the end of the file (${info.fileSize} bytes), first ${firstTruncated}`,
    })
  }
  if (info.architecture === 'llama' && !seen.has('token_embd.weight')) {
    push({ code: 'ERR_GGUF_BAD_TENSOR', tensor: 'token_embd.weight', message: 'missing tensor token_embd.weight' })
  }
}
