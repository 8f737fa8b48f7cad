/**
 * Writes tiny, valid GGUF v3 files (architecture `llama`, random F32 weights) for tests and
 * benchmarks. Never download weights: every test makes its own model here.
 *
 * Determinism: the same options give a byte-identical file. Each tensor's weights come from a
 * PRNG seeded by (seed, tensor name, layer salt), so `perturbLayer: N` re-seeds only the tensors
 * of layer N. The header does not depend on the seed and all tensors are F32 with fixed shapes,
 * so every other tensor keeps its bytes AND its offset: "v2 = v1 with one layer changed".
 *
 * Layout: header, KV metadata, tensor infos, padding to 32 bytes, then tensor data in the order
 * token_embd, blk.0.*, blk.1.*, …, output_norm, output; each tensor starts on a 32-byte boundary.
 */
import { createHash } from 'node:crypto'
import { writeFile } from 'node:fs/promises'

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

const ALIGNMENT = 32
const GGUF_MAGIC = 0x46554747 // "GGUF" little-endian
const GGUF_VERSION = 3
const GGML_TYPE_F32 = 0

// GGUF metadata value types
const T_UINT32 = 4
const T_INT32 = 5
const T_FLOAT32 = 6
const T_STRING = 8
const T_ARRAY = 9

// llama.cpp token types
const TOKEN_NORMAL = 1
const TOKEN_UNKNOWN = 2
const TOKEN_CONTROL = 3
const TOKEN_BYTE = 6

type KvValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'str'; value: string }
  | { type: 'str[]'; value: string[] }
  | { type: 'i32[]'; value: number[] }
  | { type: 'f32[]'; value: number[] }

interface TensorSpec {
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

function metadata(s: TinyGgufShape): Array<[string, KvValue]> {
  const v = vocabulary()
  return [
    ['general.architecture', { type: 'str', value: 'llama' }],
    ['general.name', { type: 'str', value: 'llmesh-tiny' }],
    ['general.alignment', { type: 'u32', value: ALIGNMENT }],
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

function tensorSpecs(s: TinyGgufShape, opts: TinyGgufOptions): TensorSpec[] {
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

/** mulberry32: small, fast, deterministic 32-bit PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function tensorSeed(seed: number, seedKey: string): number {
  return createHash('sha256').update(`${seed}:${seedKey}`).digest().readUInt32LE(0)
}

/** Little-endian byte builder for the header. */
class ByteWriter {
  private chunks: Buffer[] = []
  length = 0
  private push(b: Buffer): void {
    this.chunks.push(b)
    this.length += b.length
  }
  u32(v: number): void {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(v)
    this.push(b)
  }
  i32(v: number): void {
    const b = Buffer.alloc(4)
    b.writeInt32LE(v)
    this.push(b)
  }
  u64(v: number): void {
    const b = Buffer.alloc(8)
    b.writeBigUInt64LE(BigInt(v))
    this.push(b)
  }
  f32(v: number): void {
    const b = Buffer.alloc(4)
    b.writeFloatLE(v)
    this.push(b)
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8')
    this.u64(b.length)
    this.push(b)
  }
  pad(alignment: number): void {
    const rem = this.length % alignment
    if (rem !== 0) this.push(Buffer.alloc(alignment - rem))
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length)
  }
}

function writeKv(w: ByteWriter, key: string, v: KvValue): void {
  w.str(key)
  switch (v.type) {
    case 'u32':
      w.u32(T_UINT32)
      w.u32(v.value)
      return
    case 'i32':
      w.u32(T_INT32)
      w.i32(v.value)
      return
    case 'f32':
      w.u32(T_FLOAT32)
      w.f32(v.value)
      return
    case 'str':
      w.u32(T_STRING)
      w.str(v.value)
      return
    case 'str[]':
      w.u32(T_ARRAY)
      w.u32(T_STRING)
      w.u64(v.value.length)
      for (const s of v.value) w.str(s)
      return
    case 'i32[]':
      w.u32(T_ARRAY)
      w.u32(T_INT32)
      w.u64(v.value.length)
      for (const n of v.value) w.i32(n)
      return
    case 'f32[]':
      w.u32(T_ARRAY)
      w.u32(T_FLOAT32)
      w.u64(v.value.length)
      for (const n of v.value) w.f32(n)
      return
  }
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a

/** Builds the tiny GGUF in memory. Same options → byte-identical buffer. */
export function makeTinyGgufBuffer(opts: TinyGgufOptions = {}): Buffer {
  const shape = resolveTinyShape(opts)
  const kvs = metadata(shape).filter(([k]) => k !== opts.omitKey)
  const specs = tensorSpecs(shape, opts)

  const offsets: number[] = []
  let dataSize = 0
  for (const t of specs) {
    dataSize = alignUp(dataSize, ALIGNMENT)
    offsets.push(dataSize)
    dataSize += t.dims.reduce((a, b) => a * b, 1) * 4
  }
  dataSize = alignUp(dataSize, ALIGNMENT)

  const h = new ByteWriter()
  h.u32(GGUF_MAGIC)
  h.u32(GGUF_VERSION)
  h.u64(specs.length)
  h.u64(kvs.length)
  for (const [k, v] of kvs) writeKv(h, k, v)
  specs.forEach((t, i) => {
    h.str(t.name)
    h.u32(t.dims.length)
    for (const d of t.dims) h.u64(d)
    h.u32(GGML_TYPE_F32)
    h.u64(offsets[i])
  })
  h.pad(ALIGNMENT)
  const header = h.toBuffer()

  const out = Buffer.alloc(header.length + dataSize)
  header.copy(out, 0)
  specs.forEach((t, i) => {
    const n = t.dims.reduce((a, b) => a * b, 1)
    const base = header.length + offsets[i]
    if (t.fill === 'ones') {
      for (let j = 0; j < n; j++) out.writeFloatLE(1, base + j * 4)
      return
    }
    const rnd = prng(tensorSeed(shape.seed, t.seedKey))
    const noise = opts.noise ?? 0
    const jitter = prng(tensorSeed(opts.noiseSeed ?? 7, `noise:${t.seedKey}`))
    for (let j = 0; j < n; j++) {
      const w = (rnd() * 2 - 1) * t.scale
      out.writeFloatLE(noise === 0 ? w : w + (jitter() * 2 - 1) * t.scale * noise, base + j * 4)
    }
  })
  return out
}

/** Writes the tiny GGUF to `path`. Returns its size in bytes. */
export async function writeTinyGguf(
  path: string,
  opts: TinyGgufOptions = {},
): Promise<{ path: string; bytes: number }> {
  const buf = makeTinyGgufBuffer(opts)
  await writeFile(path, buf)
  return { path, bytes: buf.length }
}
