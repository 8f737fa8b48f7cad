import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import { makeTinyGgufBuffer } from '../fixtures/gguf-writer.ts'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

describe('tiny GGUF writer', () => {
  test('starts with GGUF v3 magic and has the expected size', () => {
    const b = makeTinyGgufBuffer()
    assert.equal(b.toString('latin1', 0, 4), 'GGUF')
    assert.equal(b.readUInt32LE(4), 3)
    assert.ok(b.length > 300_000 && b.length < 700_000, `size ${b.length}`)
    assert.equal(b.length % 32, 0)
  })

  test('same options give byte-identical output; another seed differs', () => {
    assert.equal(sha(makeTinyGgufBuffer({ seed: 7 })), sha(makeTinyGgufBuffer({ seed: 7 })))
    assert.notEqual(sha(makeTinyGgufBuffer({ seed: 7 })), sha(makeTinyGgufBuffer({ seed: 8 })))
  })

  test('perturbLayer changes only one contiguous region of the file', () => {
    const a = makeTinyGgufBuffer({ layers: 4 })
    const b = makeTinyGgufBuffer({ layers: 4, perturbLayer: 2 })
    assert.equal(a.length, b.length)
    let first = -1
    let last = -1
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) {
        if (first < 0) first = i
        last = i
      }
    }
    assert.ok(first > 0, 'something changed')
    const changed = last - first + 1
    // one layer: 4 attention matrices 64×64 + 3 FFN matrices 64×128 + 2 norms, F32
    const layerBytes = (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64) * 4
    assert.ok(changed <= layerBytes, `changed ${changed} > one layer (${layerBytes})`)
    assert.ok(first > a.length / 3, 'header and earlier layers untouched')
  })

  test('omitKey removes the key from the metadata', () => {
    const full = makeTinyGgufBuffer()
    const cut = makeTinyGgufBuffer({ omitKey: 'llama.attention.head_count' })
    assert.ok(full.includes('llama.attention.head_count\u0004'))
    assert.ok(!cut.includes(Buffer.from('llama.attention.head_count\u0004')))
    assert.equal(full.readBigUInt64LE(16) - 1n, cut.readBigUInt64LE(16))
  })

  test('rejects impossible shapes', () => {
    assert.throws(() => makeTinyGgufBuffer({ embd: 60, heads: 7 }), RangeError)
    assert.throws(() => makeTinyGgufBuffer({ layers: 0 }), RangeError)
  })
})
