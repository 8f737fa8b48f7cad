import type { FileHandle } from 'node:fs/promises'
import { GGUF_MAX_HEADER_BYTES, GGUF_MAX_STRING_BYTES, GGUF_READ_CHUNK_BYTES } from './constants.ts'
import { GgufError } from './errors.ts'

/**
 * Sequential little-endian reader over the start of a file. It reads from disk only as far as
 * the parser asks (in chunks), so walking a GGUF header never loads the tensor data.
 */
export class HeaderReader {
  private readonly fh: FileHandle
  private readonly fileSize: number
  private buf: Buffer = Buffer.alloc(0)
  /** File offset of buf[0]. */
  private bufStart = 0
  /** Current file offset. */
  position = 0

  constructor(fh: FileHandle, fileSize: number) {
    this.fh = fh
    this.fileSize = fileSize
  }

  /** Makes sure `n` bytes from the current position are in memory. */
  private async ensure(n: number, what: string): Promise<void> {
    const have = this.bufStart + this.buf.length - this.position
    if (have >= n) return
    if (this.position + n > this.fileSize) {
      throw new GgufError(
        'ERR_GGUF_TRUNCATED',
        `file ends at byte ${this.fileSize} while reading ${what} at byte ${this.position}`,
      )
    }
    if (this.position + n > GGUF_MAX_HEADER_BYTES) {
      throw new GgufError('ERR_GGUF_TOO_LARGE', `header larger than ${GGUF_MAX_HEADER_BYTES} bytes`)
    }
    const keep = this.buf.subarray(this.position - this.bufStart)
    const want = Math.min(Math.max(n - keep.length, GGUF_READ_CHUNK_BYTES), this.fileSize - this.position - keep.length)
    const more = Buffer.alloc(want)
    let got = 0
    while (got < want) {
      const { bytesRead } = await this.fh.read(more, got, want - got, this.position + keep.length + got)
      if (bytesRead === 0) break
      got += bytesRead
    }
    this.buf = Buffer.concat([keep, more.subarray(0, got)])
    this.bufStart = this.position
    if (this.buf.length < n) {
      throw new GgufError('ERR_GGUF_TRUNCATED', `short read while reading ${what} at byte ${this.position}`)
    }
  }

  private at(): number {
    return this.position - this.bufStart
  }

  async u8(what: string): Promise<number> {
    await this.ensure(1, what)
    const v = this.buf.readUInt8(this.at())
    this.position += 1
    return v
  }
  async i8(what: string): Promise<number> {
    await this.ensure(1, what)
    const v = this.buf.readInt8(this.at())
    this.position += 1
    return v
  }
  async u16(what: string): Promise<number> {
    await this.ensure(2, what)
    const v = this.buf.readUInt16LE(this.at())
    this.position += 2
    return v
  }
  async i16(what: string): Promise<number> {
    await this.ensure(2, what)
    const v = this.buf.readInt16LE(this.at())
    this.position += 2
    return v
  }
  async u32(what: string): Promise<number> {
    await this.ensure(4, what)
    const v = this.buf.readUInt32LE(this.at())
    this.position += 4
    return v
  }
  async i32(what: string): Promise<number> {
    await this.ensure(4, what)
    const v = this.buf.readInt32LE(this.at())
    this.position += 4
    return v
  }
  async f32(what: string): Promise<number> {
    await this.ensure(4, what)
    const v = this.buf.readFloatLE(this.at())
    this.position += 4
    return v
  }
  async f64(what: string): Promise<number> {
    await this.ensure(8, what)
    const v = this.buf.readDoubleLE(this.at())
    this.position += 8
    return v
  }
  async u64big(what: string): Promise<bigint> {
    await this.ensure(8, what)
    const v = this.buf.readBigUInt64LE(this.at())
    this.position += 8
    return v
  }
  async i64big(what: string): Promise<bigint> {
    await this.ensure(8, what)
    const v = this.buf.readBigInt64LE(this.at())
    this.position += 8
    return v
  }
  /** A uint64 that must fit in a JS number (sizes, counts, offsets). */
  async u64(what: string): Promise<number> {
    const v = await this.u64big(what)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufError('ERR_GGUF_BAD_VALUE', `${what} too large: ${v}`)
    return Number(v)
  }
  async bool(what: string): Promise<boolean> {
    const v = await this.u8(what)
    if (v > 1) throw new GgufError('ERR_GGUF_BAD_VALUE', `${what}: invalid bool ${v}`)
    return v === 1
  }
  /** GGUF string: uint64 byte length + UTF-8 bytes. */
  async str(what: string): Promise<string> {
    const len = await this.u64(`${what} length`)
    if (len > GGUF_MAX_STRING_BYTES) throw new GgufError('ERR_GGUF_TOO_LARGE', `${what}: string of ${len} bytes`)
    await this.ensure(len, what)
    const s = this.buf.toString('utf8', this.at(), this.at() + len)
    this.position += len
    return s
  }
}
