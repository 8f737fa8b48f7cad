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
 * What the model holds (options, metadata, tensor shapes and seeds) is in tiny-gguf-model.ts.
 */
import { createHash } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import {
  TINY_GGUF_ALIGNMENT as ALIGNMENT,
  type KvValue,
  resolveTinyShape,
  type TinyGgufOptions,
  tinyMetadata,
  tinyTensorSpecs,
} from './tiny-gguf-model.ts'

export { resolveTinyShape, type TinyGgufOptions, type TinyGgufShape } from './tiny-gguf-model.ts'

const GGUF_MAGIC = 0x46554747 // "GGUF" little-endian
const GGUF_VERSION = 3
const GGML_TYPE_F32 = 0

// GGUF metadata value types
const T_UINT32 = 4
const T_INT32 = 5
const T_FLOAT32 = 6
const T_STRING = 8
const T_ARRAY = 9

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
  const kvs = tinyMetadata(shape).filter(([k]) => k !== opts.omitKey)
  const specs = tinyTensorSpecs(shape, opts)

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
