/**
 * FastCDC content-defined chunking (Xia et al., 2016) with normalized chunking.
 *
 * A 32-bit gear hash rolls over the bytes (`h = (h << 1) + GEAR[b]`, so a byte influences the
 * hash for 32 steps: the window is 32 bytes). No cut happens before `min` bytes; between `min`
 * and `avg` a cut needs the top `bits + n` bits of the hash to be zero (harder), after `avg` the
 * top `bits - n` bits (easier); at `max` the chunk is cut regardless. Because a boundary depends
 * only on the 32 bytes before it (and the position of the previous boundary), boundaries
 * re-synchronise shortly after an insertion or a change, and unchanged regions of a file give
 * the same chunks. Deterministic: the gear table is derived from sha256 of a fixed label.
 */
import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'
import { CHUNK_AVG, CHUNK_MAX, CHUNK_MIN, CHUNK_NORMALIZATION, CHUNK_READ_SIZE } from './constants.ts'

/** Chunk size parameters (bytes). */
export interface ChunkingOptions {
  min?: number
  avg?: number
  max?: number
}

/** Resolved chunk sizes, as recorded in a manifest's `chunking`. */
export interface ChunkingParams {
  algo: 'fastcdc'
  min: number
  avg: number
  max: number
}

/** One chunk of a file. */
export interface Chunk {
  offset: number
  size: number
  /** Hex sha256 of the chunk's bytes. */
  hash: string
  data: Buffer
}

const GEAR: Uint32Array = (() => {
  const t = new Uint32Array(256)
  for (let i = 0; i < 256; i++) t[i] = createHash('sha256').update(`llmesh-fastcdc-gear-${i}`).digest().readUInt32LE(0)
  return t
})()

/** Applies defaults and checks `min < avg < max`, avg a power of two. */
export function resolveChunking(opts: ChunkingOptions = {}): ChunkingParams {
  const min = opts.min ?? CHUNK_MIN
  const avg = opts.avg ?? CHUNK_AVG
  const max = opts.max ?? CHUNK_MAX
  if (!(min > 0 && min < avg && avg < max)) throw new RangeError(`chunk sizes must satisfy 0 < min < avg < max`)
  if ((avg & (avg - 1)) !== 0) throw new RangeError(`average chunk size must be a power of two, got ${avg}`)
  return { algo: 'fastcdc', min, avg, max }
}

function topMask(bits: number): number {
  const b = Math.max(1, Math.min(31, bits))
  return (0xffffffff << (32 - b)) >>> 0
}

/** Precomputed masks of one parameter set. */
interface Cutter {
  p: ChunkingParams
  maskS: number
  maskL: number
}

function cutter(p: ChunkingParams): Cutter {
  const bits = Math.round(Math.log2(p.avg))
  return { p, maskS: topMask(bits + CHUNK_NORMALIZATION), maskL: topMask(bits - CHUNK_NORMALIZATION) }
}

/** Length of the next chunk starting at `start` in `buf[start, end)`. Call with ≥ max bytes unless at EOF. */
function cutPoint(c: Cutter, buf: Uint8Array, start: number, end: number): number {
  let n = end - start
  const { min, avg, max } = c.p
  if (n <= min) return n
  if (n > max) n = max
  const normal = Math.min(avg, n)
  let h = 0
  let i = min
  for (; i < normal; i++) {
    h = ((h << 1) + GEAR[buf[start + i]]) >>> 0
    if ((h & c.maskS) === 0) return i + 1
  }
  for (; i < n; i++) {
    h = ((h << 1) + GEAR[buf[start + i]]) >>> 0
    if ((h & c.maskL) === 0) return i + 1
  }
  return n
}

function makeChunk(buf: Buffer, start: number, size: number, offset: number): Chunk {
  const data = Buffer.from(buf.subarray(start, start + size))
  return { offset, size, hash: createHash('sha256').update(data).digest('hex'), data }
}

/** Chunks an in-memory buffer. */
export function chunkBuffer(buf: Uint8Array, opts: ChunkingOptions = {}): Chunk[] {
  const c = cutter(resolveChunking(opts))
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  const out: Chunk[] = []
  let pos = 0
  while (pos < b.length) {
    const size = cutPoint(c, b, pos, b.length)
    out.push(makeChunk(b, pos, size, pos))
    pos += size
  }
  return out
}

/**
 * Streams a file through the chunker, yielding chunks in order. Memory stays around
 * `CHUNK_READ_SIZE + max`. Gives exactly the chunks `chunkBuffer` gives for the whole file.
 */
export async function* chunkFile(path: string, opts: ChunkingOptions = {}): AsyncGenerator<Chunk> {
  const c = cutter(resolveChunking(opts))
  const fh = await open(path, 'r')
  try {
    let carry: Buffer = Buffer.alloc(0)
    let fileOffset = 0
    let eof = false
    while (!eof || carry.length > 0) {
      if (!eof && carry.length < c.p.max) {
        const chunk = Buffer.allocUnsafe(CHUNK_READ_SIZE)
        const { bytesRead } = await fh.read(chunk, 0, CHUNK_READ_SIZE, null)
        if (bytesRead === 0) eof = true
        else
          carry =
            carry.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([carry, chunk.subarray(0, bytesRead)])
        continue
      }
      let pos = 0
      while (carry.length - pos >= c.p.max || (eof && pos < carry.length)) {
        const size = cutPoint(c, carry, pos, carry.length)
        yield makeChunk(carry, pos, size, fileOffset)
        fileOffset += size
        pos += size
      }
      carry = carry.subarray(pos)
    }
  } finally {
    await fh.close()
  }
}
