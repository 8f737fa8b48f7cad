/**
 * Exact-length reads from a byte stream (an HTTP body): `exactly(n)` or a typed refusal naming
 * what was being read, `upTo(n)` for the optional next frame. Holds at most one pending buffer.
 */
import { BundleError } from '../../protocols/release-bundle.ts'

/** Reads fixed-size pieces of an async byte stream. */
export class ByteReader {
  private readonly it: AsyncIterator<Uint8Array>
  private buf: Buffer = Buffer.alloc(0)
  private done = false

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]()
  }

  private async fill(n: number): Promise<void> {
    const parts: Buffer[] = [this.buf]
    let have = this.buf.byteLength
    while (have < n && !this.done) {
      const r = await this.it.next()
      if (r.done) this.done = true
      else {
        const b = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength)
        parts.push(b)
        have += b.byteLength
      }
    }
    this.buf = parts.length === 1 ? this.buf : Buffer.concat(parts)
  }

  /** Up to `n` bytes; null at the end of the stream. */
  async upTo(n: number): Promise<Buffer | null> {
    await this.fill(n)
    if (this.buf.byteLength === 0) return null
    const out = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(out.byteLength)
    return out
  }

  /** Exactly `n` bytes, or BundleError(ERR_BUNDLE_FORMAT) naming `what`. */
  async exactly(n: number, what: string): Promise<Buffer> {
    const out = await this.upTo(n)
    if (n === 0) return Buffer.alloc(0)
    if (out === null || out.byteLength < n) throw new BundleError('ERR_BUNDLE_FORMAT', what, 'truncated')
    return out
  }
}
