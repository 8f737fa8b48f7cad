/**
 * GGUF header reader: magic, version, metadata key/values and tensor infos. Reads only the
 * header from disk (see HeaderReader), never the tensor data, so it is cheap on multi-GB files
 * and safe on hostile ones (sizes are bounded, errors are `GgufError` with a stable code).
 *
 * Why it exists: llama.cpp aborts the whole process on some malformed files (e.g. a llama GGUF
 * without `llama.attention.head_count`), so every file is checked here before a worker loads it.
 */
import { open } from 'node:fs/promises'
import {
  GGML_MAX_DIMS,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_ARRAY_LENGTH,
  GGUF_MAX_COUNT,
  GGUF_SUPPORTED_VERSIONS,
} from './constants.ts'
import { GgufError, type GgufProblem, GgufValidationError } from './errors.ts'
import { FILE_TYPE_NAMES, ggmlTypeName, tensorByteSize } from './ggml-types.ts'
import type { GgufInfo, GgufTensorInfo, GgufValue } from './gguf-types.ts'
import { HeaderReader } from './header-reader.ts'
import { validateForLlama } from './validate.ts'

export type { GgufProblem } from './errors.ts'
export { GgufError, GgufValidationError } from './errors.ts'
export type { GgufInfo, GgufTensorInfo, GgufValue } from './gguf-types.ts'
export { validateForLlama } from './validate.ts'

const VALUE_TYPES = {
  0: 'uint8',
  1: 'int8',
  2: 'uint16',
  3: 'int16',
  4: 'uint32',
  5: 'int32',
  6: 'float32',
  7: 'bool',
  8: 'string',
  9: 'array',
  10: 'uint64',
  11: 'int64',
  12: 'float64',
} as const

async function readValue(r: HeaderReader, type: number, what: string, depth = 0): Promise<GgufValue> {
  switch (VALUE_TYPES[type as keyof typeof VALUE_TYPES]) {
    case 'uint8':
      return r.u8(what)
    case 'int8':
      return r.i8(what)
    case 'uint16':
      return r.u16(what)
    case 'int16':
      return r.i16(what)
    case 'uint32':
      return r.u32(what)
    case 'int32':
      return r.i32(what)
    case 'float32':
      return r.f32(what)
    case 'float64':
      return r.f64(what)
    case 'bool':
      return r.bool(what)
    case 'string':
      return r.str(what)
    case 'uint64':
    case 'int64': {
      const v = type === 10 ? await r.u64big(what) : await r.i64big(what)
      return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v
    }
    case 'array': {
      if (depth > 0) throw new GgufError('ERR_GGUF_BAD_VALUE', `${what}: nested arrays are not supported`)
      const elemType = await r.u32(`${what} element type`)
      const len = await r.u64(`${what} array length`)
      if (len > GGUF_MAX_ARRAY_LENGTH) throw new GgufError('ERR_GGUF_TOO_LARGE', `${what}: array of ${len} elements`)
      const out: GgufValue[] = [] // grown as read: a lying length hits end-of-file, not memory
      for (let i = 0; i < len; i++) out.push(await readValue(r, elemType, what, depth + 1))
      return out
    }
    default:
      throw new GgufError('ERR_GGUF_BAD_VALUE', `${what}: unknown value type ${type}`)
  }
}

/** Reads and returns the header of a GGUF file. Throws `GgufError` (bad magic, truncated, …). */
export async function readGgufInfo(path: string): Promise<GgufInfo> {
  let fh: Awaited<ReturnType<typeof open>>
  try {
    fh = await open(path, 'r')
  } catch (err) {
    throw new GgufError('ERR_GGUF_IO', `cannot open ${path}: ${(err as Error).message}`, { cause: err })
  }
  try {
    const { size: fileSize } = await fh.stat()
    const r = new HeaderReader(fh, fileSize)
    if (fileSize < 4) throw new GgufError('ERR_GGUF_BAD_MAGIC', `${path}: not a GGUF file (${fileSize} bytes)`)
    const magic = await r.u32('magic')
    if (magic !== GGUF_MAGIC) {
      throw new GgufError('ERR_GGUF_BAD_MAGIC', `${path}: not a GGUF file (magic 0x${magic.toString(16)})`)
    }
    const version = await r.u32('version')
    if (!GGUF_SUPPORTED_VERSIONS.includes(version)) {
      const hint = version > 0xffff ? ' (big-endian files are not supported)' : ''
      throw new GgufError('ERR_GGUF_UNSUPPORTED_VERSION', `${path}: GGUF version ${version}${hint}`)
    }
    const tensorCount = await r.u64('tensor count')
    const kvCount = await r.u64('metadata count')
    if (tensorCount > GGUF_MAX_COUNT || kvCount > GGUF_MAX_COUNT) {
      throw new GgufError('ERR_GGUF_TOO_LARGE', `${path}: ${tensorCount} tensors, ${kvCount} metadata entries`)
    }
    const metadata: Record<string, GgufValue> = {}
    for (let i = 0; i < kvCount; i++) {
      const key = await r.str(`metadata key #${i}`)
      const type = await r.u32(`type of ${key}`)
      metadata[key] = await readValue(r, type, key)
    }
    const tensors: GgufTensorInfo[] = []
    for (let i = 0; i < tensorCount; i++) {
      const name = await r.str(`tensor name #${i}`)
      const nDims = await r.u32(`dimensions of ${name}`)
      if (nDims < 1 || nDims > GGML_MAX_DIMS) {
        throw new GgufError('ERR_GGUF_BAD_TENSOR', `${path}: tensor ${name} has ${nDims} dimensions`)
      }
      const dims: number[] = []
      for (let d = 0; d < nDims; d++) dims.push(await r.u64(`dimension ${d} of ${name}`))
      const type = await r.u32(`type of ${name}`)
      const offset = await r.u64(`offset of ${name}`)
      tensors.push({ name, dims, type, typeName: ggmlTypeName(type), offset, size: tensorByteSize(type, dims) })
    }
    const alignRaw = metadata['general.alignment']
    const alignment = typeof alignRaw === 'number' && alignRaw > 0 ? alignRaw : GGUF_DEFAULT_ALIGNMENT
    const dataOffset = Math.ceil(r.position / alignment) * alignment
    let tensorDataBytes: number | undefined = 0
    for (const t of tensors) {
      if (t.size === undefined) tensorDataBytes = undefined
      else if (tensorDataBytes !== undefined) tensorDataBytes = Math.max(tensorDataBytes, t.offset + t.size)
    }
    const architecture =
      typeof metadata['general.architecture'] === 'string' ? metadata['general.architecture'] : undefined
    const ctx = architecture === undefined ? undefined : metadata[`${architecture}.context_length`]
    return {
      path,
      version,
      fileSize,
      architecture,
      contextLength: typeof ctx === 'number' ? ctx : undefined,
      quantization: quantizationOf(metadata, tensors),
      alignment,
      dataOffset,
      tensorDataBytes,
      tensors,
      metadata,
    }
  } finally {
    await fh.close()
  }
}

/** Quantization name from `general.file_type`, else the type holding most bytes of 2-D+ tensors. */
function quantizationOf(metadata: Record<string, GgufValue>, tensors: GgufTensorInfo[]): string {
  const ft = metadata['general.file_type']
  if (typeof ft === 'number') return FILE_TYPE_NAMES[ft] ?? `FILE_TYPE_${ft}`
  const bytes = new Map<string, number>()
  for (const t of tensors) {
    if (t.dims.length < 2) continue
    bytes.set(t.typeName, (bytes.get(t.typeName) ?? 0) + (t.size ?? 0))
  }
  let best = 'unknown'
  let most = -1
  for (const [name, n] of bytes) {
    if (n > most) {
      best = name
      most = n
    }
  }
  return best
}

/** A number-valued metadata entry (first element for per-layer arrays), or undefined. */
export function metaNumber(info: Pick<GgufInfo, 'metadata'>, key: string): number | undefined {
  const v = info.metadata[key]
  if (typeof v === 'number') return v
  if (Array.isArray(v) && typeof v[0] === 'number') return v[0]
  return undefined
}

/** Reads and validates; header errors become problems instead of throwing. Never loads weights. */
export async function inspectGguf(path: string): Promise<{ info: GgufInfo | undefined; problems: GgufProblem[] }> {
  try {
    const info = await readGgufInfo(path)
    return { info, problems: validateForLlama(info) }
  } catch (err) {
    if (err instanceof GgufError) return { info: undefined, problems: [{ code: err.code, message: err.message }] }
    throw err
  }
}

/** Reads and validates; throws `GgufError`/`GgufValidationError` unless llama.cpp can load the file safely. */
export async function checkGgufForLlama(path: string): Promise<GgufInfo> {
  const info = await readGgufInfo(path)
  const problems = validateForLlama(info)
  if (problems.length > 0) throw new GgufValidationError(path, problems)
  return info
}
