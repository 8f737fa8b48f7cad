/**
 * The tiny GGUF model's layout, without bytes: its options and their defaults, the vocabulary, the
 * KV metadata (architecture `llama`) and the tensors (names, F32 shapes, seed material, fill).
 * gguf-writer.ts encodes them. Each tensor names its seed material (`seedKey`): `perturbLayer: N`
 * changes only that of layer N's tensors, and no shape depends on the seed.
 */

/** Alignment of tensor data (`general.alignment`), bytes. */
export const TINY_GGUF_ALIGNMENT = 32

/** Options of the tiny model. All sizes are small on purpose (a 64-wide 2-layer model is ~0.5 MB). */
export interface TinyGgufOptions {
  /** Number of transformer blocks. Default 2. */
  layers?: number
  /** Embedding width (n_embd). Default 64. Must be a multiple of `heads`. */
  embd?: number
  /** PRNG seed for the weights. Default 1. */
  seed?: number
  /** Feed-forward width. Default 2 × embd. */
  ff?: number
  /** Attention heads. Default embd / 16 (head size 16), at least 1. */
  heads?: number
  /** Trained context length written to `llama.context_length`. Default 256. */
  ctx?: number
  /** Give `blk.0.attn_q.weight` a wrong shape (same byte size): the header parses, llama.cpp refuses to load. */
  breakTensor?: boolean
  /** Leave this metadata key out (e.g. `llama.attention.head_count`). */
  omitKey?: string
  /** Re-seed only the weights of this layer (the other tensors keep bytes and offsets). */
  perturbLayer?: number
  /**
   * Add noise to every random weight: w + noise × scale × u, u uniform in [−1, 1) from a PRNG of
   * its own (`noiseSeed`). 0.01 is "v1 with small noise", 1 makes a model that loads and answers
   * but no longer agrees with v1 (quality probe tests). Default 0: byte-identical to before.
   */
  noise?: number
  /** Seed of the noise PRNG. Default 7. */
  noiseSeed?: number
}

// llama.cpp token types
const TOKEN_NORMAL = 1
const TOKEN_UNKNOWN = 2
const TOKEN_CONTROL = 3
const TOKEN_BYTE = 6

/** One metadata value, typed as GGUF writes it. */
export type KvValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'str'; value: string }
  | { type: 'str[]'; value: string[] }
  | { type: 'i32[]'; value: number[] }
  | { type: 'f32[]'; value: number[] }

/** One tensor of the tiny model: what the writer lays out and fills. */
export interface TensorSpec {
  name: string
  /** Dimensions, row length first (ggml order). */
  dims: number[]
  /** Seed material: tensors sharing it are re-seeded together. */
  seedKey: string
  /** Fill: random around 0, or constant 1 (norm weights). */
  fill: 'random' | 'ones'
  /** Scale of random values. */
  scale: number
}

/**
 * Vocabulary: `<unk>`, `<s>`, `</s>`, the SentencePiece space `▁` (so text with spaces survives
 * a tokenize/detokenize round trip), then the 256 byte tokens `<0x00>`…`<0xFF>`.
 */
function vocabulary(): { tokens: string[]; types: number[]; unk: number; bos: number; eos: number } {
  const tokens: string[] = ['<unk>', '<s>', '</s>', '\u2581']
  const types: number[] = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL, TOKEN_NORMAL]
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)
    types.push(TOKEN_BYTE)
  }
  return { tokens, types, unk: 0, bos: 1, eos: 2 }
}

/** Resolved numeric options (defaults applied, checked). */
export interface TinyGgufShape {
  layers: number
  embd: number
  ff: number
  heads: number
  ctx: number
  vocab: number
  seed: number
}

/** Applies defaults and checks the options. */
export function resolveTinyShape(opts: TinyGgufOptions = {}): TinyGgufShape {
  const layers = opts.layers ?? 2
  const embd = opts.embd ?? 64
  const heads = opts.heads ?? Math.max(1, Math.floor(embd / 16))
  const ff = opts.ff ?? embd * 2
  const ctx = opts.ctx ?? 256
  const seed = opts.seed ?? 1
  for (const [k, v] of Object.entries({ layers, embd, heads, ff, ctx })) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer, got ${v}`)
  }
  if (embd % heads !== 0) throw new RangeError(`embd (${embd}) must be a multiple of heads (${heads})`)
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`)
  if (opts.noise !== undefined && !(opts.noise >= 0 && Number.isFinite(opts.noise)))
    throw new RangeError(`noise must be a finite number >= 0, got ${opts.noise}`)
  return { layers, embd, ff, heads, ctx, vocab: vocabulary().tokens.length, seed }
}

/** The KV metadata of the tiny model, in the order written. */
export function tinyMetadata(s: TinyGgufShape): Array<[string, KvValue]> {
  const v = vocabulary()
  return [
    ['general.architecture', { type: 'str', value: 'llama' }],
    ['general.name', { type: 'str', value: 'llmesh-tiny' }],
    ['general.alignment', { type: 'u32', value: TINY_GGUF_ALIGNMENT }],
    ['general.file_type', { type: 'u32', value: 0 }], // ALL_F32
    ['llama.context_length', { type: 'u32', value: s.ctx }],
    ['llama.embedding_length', { type: 'u32', value: s.embd }],
    ['llama.block_count', { type: 'u32', value: s.layers }],
    ['llama.feed_forward_length', { type: 'u32', value: s.ff }],
    ['llama.attention.head_count', { type: 'u32', value: s.heads }],
    ['llama.attention.head_count_kv', { type: 'u32', value: s.heads }],
    ['llama.rope.dimension_count', { type: 'u32', value: s.embd / s.heads }],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-5 }],
    ['llama.vocab_size', { type: 'u32', value: v.tokens.length }],
    ['tokenizer.ggml.model', { type: 'str', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'str[]', value: v.tokens }],
    ['tokenizer.ggml.scores', { type: 'f32[]', value: v.tokens.map(() => 0) }],
    ['tokenizer.ggml.token_type', { type: 'i32[]', value: v.types }],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: v.bos }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: v.eos }],
    ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: v.unk }],
  ]
}

/** The tensors of the tiny model, in the order of their data: token_embd, blk.0.*, …, output_norm, output. */
export function tinyTensorSpecs(s: TinyGgufShape, opts: TinyGgufOptions): TensorSpec[] {
  const { embd, ff, vocab } = s
  const w = 1 / Math.sqrt(embd)
  const specs: TensorSpec[] = [
    { name: 'token_embd.weight', dims: [embd, vocab], seedKey: 'token_embd', fill: 'random', scale: 1 },
  ]
  for (let i = 0; i < s.layers; i++) {
    const salt = opts.perturbLayer === i ? `blk.${i}#perturbed` : `blk.${i}`
    const p = (n: string, dims: number[], fill: TensorSpec['fill'] = 'random', scale = w): TensorSpec => ({
      name: `blk.${i}.${n}.weight`,
      dims,
      seedKey: `${salt}.${n}`,
      fill,
      scale,
    })
    const q = opts.breakTensor === true && i === 0 ? [embd * 2, embd / 2] : [embd, embd]
    specs.push(
      p('attn_norm', [embd], 'ones'),
      p('attn_q', q),
      p('attn_k', [embd, embd]),
      p('attn_v', [embd, embd]),
      p('attn_output', [embd, embd]),
      p('ffn_norm', [embd], 'ones'),
      p('ffn_gate', [embd, ff]),
      p('ffn_up', [embd, ff]),
      p('ffn_down', [ff, embd], 'random', 1 / Math.sqrt(ff)),
    )
  }
  specs.push(
    { name: 'output_norm.weight', dims: [embd], seedKey: 'output_norm', fill: 'ones', scale: 1 },
    { name: 'output.weight', dims: [embd, vocab], seedKey: 'output', fill: 'random', scale: w },
  )
  return specs
}
