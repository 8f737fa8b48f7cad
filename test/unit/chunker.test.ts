import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { chunkBuffer, chunkFile, resolveChunking } from '../../node/store/chunker.ts'
import { makeTinyGgufBuffer } from '../fixtures/gguf-writer.ts'
import { tmpDir } from '../helpers/index.ts'

function prng(seed: number, n: number): Buffer {
  // xorshift32: deterministic pseudo-random bytes
  const out = Buffer.alloc(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

describe('FastCDC chunker', () => {
  test('chunks cover the input in order, within min..max, deterministically', () => {
    const data = prng(7, 3 * 1024 * 1024)
    const a = chunkBuffer(data)
    const b = chunkBuffer(data)
    assert.deepEqual(
      a.map((c) => c.hash),
      b.map((c) => c.hash),
    )
    let off = 0
    for (const [i, c] of a.entries()) {
      assert.equal(c.offset, off)
      assert.ok(c.size <= 256 * 1024)
      if (i < a.length - 1) assert.ok(c.size >= 16 * 1024, `chunk ${i} of ${c.size} bytes under min`)
      off += c.size
    }
    assert.equal(off, data.length)
    assert.deepEqual(Buffer.concat(a.map((c) => c.data)), data)
    const avg = data.length / a.length
    assert.ok(avg > 32 * 1024 && avg < 128 * 1024, `average chunk ${avg} far from 64 KiB`)
  })

  test('streaming over a file gives the same chunks as the whole buffer', async (t) => {
    const dir = await tmpDir(t, 'chunker-')
    const data = prng(9, 5 * 1024 * 1024 + 12345)
    const path = join(dir, 'f.bin')
    await writeFile(path, data)
    const streamed = []
    for await (const c of chunkFile(path)) streamed.push({ offset: c.offset, size: c.size, hash: c.hash })
    const whole = chunkBuffer(data).map((c) => ({ offset: c.offset, size: c.size, hash: c.hash }))
    assert.deepEqual(streamed, whole)
  })

  test('boundaries re-synchronise after an insertion', () => {
    const data = prng(11, 4 * 1024 * 1024)
    const at = 1024 * 1024 + 17
    const inserted = Buffer.concat([data.subarray(0, at), randomBytes(100), data.subarray(at)])
    const a = new Set(chunkBuffer(data).map((c) => c.hash))
    const b = chunkBuffer(inserted)
    const fresh = b.filter((c) => !a.has(c.hash))
    // only the chunk(s) around the insertion differ
    assert.ok(fresh.length <= 3, `${fresh.length} new chunks after a 100-byte insertion`)
    assert.ok(fresh.length >= 1)
  })

  test('a GGUF v2 with one layer changed shares most chunks with v1', () => {
    const v1 = makeTinyGgufBuffer({ layers: 8, embd: 256, seed: 3 })
    const v2 = makeTinyGgufBuffer({ layers: 8, embd: 256, seed: 3, perturbLayer: 4 })
    const c1 = chunkBuffer(v1)
    const c2 = chunkBuffer(v2)
    assert.ok(c1.length > 20, `v1 spans only ${c1.length} chunks`)
    const h1 = new Set(c1.map((c) => c.hash))
    const newBytes = c2.filter((c) => !h1.has(c.hash)).reduce((s, c) => s + c.size, 0)
    // one layer out of 8 is ~12% of the weights; allow chunk spill at both ends
    assert.ok(newBytes < v2.length * 0.25, `new bytes ${newBytes} of ${v2.length}`)
    assert.ok(newBytes > 0)
  })

  test('rejects inconsistent sizes', () => {
    assert.throws(() => resolveChunking({ min: 100, avg: 50, max: 200 }), RangeError)
    assert.throws(() => resolveChunking({ min: 10, avg: 100, max: 200 }), RangeError)
  })
})
