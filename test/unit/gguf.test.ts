import assert from 'node:assert/strict'
import { rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import fc from 'fast-check'
import {
  checkGgufForLlama,
  GgufError,
  GgufValidationError,
  inspectGguf,
  metaNumber,
  readGgufInfo,
  validateForLlama,
} from '../../node/model/gguf.ts'
import { makeTinyGgufBuffer, type TinyGgufOptions } from '../fixtures/gguf-writer.ts'
import { suiteTmpDir } from '../helpers/index.ts'

const dir = suiteTmpDir('llmesh-gguf-')
let n = 0
async function file(opts: TinyGgufOptions | Buffer = {}): Promise<string> {
  const p = join(dir, `m${n++}.gguf`)
  await writeFile(p, Buffer.isBuffer(opts) ? opts : makeTinyGgufBuffer(opts))
  return p
}
after(async () => {})

describe('readGgufInfo', () => {
  test('reads the tiny model header', async () => {
    const info = await readGgufInfo(await file({ layers: 3, embd: 32, ctx: 128 }))
    assert.equal(info.version, 3)
    assert.equal(info.architecture, 'llama')
    assert.equal(info.contextLength, 128)
    assert.equal(info.quantization, 'F32')
    assert.equal(info.alignment, 32)
    assert.equal(info.tensors.length, 3 + 9 * 3)
    const embd = info.tensors.find((t) => t.name === 'token_embd.weight')
    assert.deepEqual(embd?.dims, [32, 260])
    assert.equal(embd?.typeName, 'F32')
    assert.equal(embd?.size, 32 * 260 * 4)
    assert.equal(metaNumber(info, 'llama.block_count'), 3)
    assert.equal((info.metadata['tokenizer.ggml.tokens'] as string[])[4], '<0x00>')
    assert.equal(info.dataOffset % 32, 0)
    assert.equal(info.dataOffset + (info.tensorDataBytes ?? 0), info.fileSize)
    assert.deepEqual(validateForLlama(info), [])
  })

  test('never reads tensor data: a 64 GiB sparse file parses at once', async () => {
    const p = await file()
    await truncate(p, 64 * 1024 ** 3)
    const info = await readGgufInfo(p)
    assert.equal(info.fileSize, 64 * 1024 ** 3)
    assert.deepEqual(validateForLlama(info), [])
  })

  test('quantization falls back to the dominant tensor type', async () => {
    const info = await readGgufInfo(await file({ omitKey: 'general.file_type' }))
    assert.equal(info.metadata['general.file_type'], undefined)
    assert.equal(info.quantization, 'F32')
  })

  test('bad magic', async () => {
    const p = await file(Buffer.from('PK\u0003\u0004 definitely not a gguf file'))
    await assert.rejects(readGgufInfo(p), (e: GgufError) => e.code === 'ERR_GGUF_BAD_MAGIC')
    const empty = await file(Buffer.alloc(0))
    await assert.rejects(readGgufInfo(empty), (e: GgufError) => e.code === 'ERR_GGUF_BAD_MAGIC')
  })

  test('unsupported version', async () => {
    const b = makeTinyGgufBuffer()
    b.writeUInt32LE(1, 4)
    await assert.rejects(readGgufInfo(await file(b)), (e: GgufError) => e.code === 'ERR_GGUF_UNSUPPORTED_VERSION')
  })

  test('truncated inside the header', async () => {
    const p = await file(makeTinyGgufBuffer().subarray(0, 1000))
    await assert.rejects(readGgufInfo(p), (e: GgufError) => e instanceof GgufError && e.code === 'ERR_GGUF_TRUNCATED')
    const { info, problems } = await inspectGguf(p)
    assert.equal(info, undefined)
    assert.equal(problems[0].code, 'ERR_GGUF_TRUNCATED')
  })

  test('hostile string length is bounded', async () => {
    const b = makeTinyGgufBuffer()
    b.writeBigUInt64LE(2n ** 50n, 24) // length of the first key
    await assert.rejects(readGgufInfo(await file(b)), (e: GgufError) => e.code === 'ERR_GGUF_TOO_LARGE')
  })

  test('random truncation and corruption of the header only ever raise GgufError', async () => {
    const good = makeTinyGgufBuffer({ layers: 1, embd: 16 })
    const info = await readGgufInfo(await file(good))
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: info.dataOffset + 64 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: info.dataOffset - 1 }), fc.integer({ min: 0, max: 255 })), {
          maxLength: 4,
        }),
        async (cut, flips) => {
          const b = Buffer.from(good.subarray(0, cut))
          for (const [at, v] of flips) if (at < b.length) b[at] = v
          const p = await file(b)
          try {
            const parsed = await readGgufInfo(p)
            validateForLlama(parsed)
          } catch (e) {
            assert.ok(e instanceof GgufError, `unexpected ${(e as Error).name}: ${(e as Error).message}`)
          } finally {
            await rm(p)
          }
        },
      ),
      { numRuns: 150, seed: 42 },
    )
  })
})

describe('validateForLlama', () => {
  for (const key of ['llama.attention.head_count', 'llama.feed_forward_length', 'general.architecture']) {
    test(`reports missing ${key}`, async () => {
      const { info, problems } = await inspectGguf(await file({ omitKey: key }))
      assert.ok(info)
      const p = problems.find((x) => x.key === key)
      assert.equal(p?.code, 'ERR_GGUF_MISSING_KEY')
    })
  }

  test('reports tensor data past the end of the file', async () => {
    const b = makeTinyGgufBuffer()
    const { problems } = await inspectGguf(await file(b.subarray(0, b.length - 100)))
    assert.equal(problems.length, 1)
    assert.equal(problems[0].code, 'ERR_GGUF_TRUNCATED')
    assert.equal(problems[0].tensor, 'output.weight')
  })

  test('checkGgufForLlama throws a GgufValidationError listing the problems', async () => {
    const p = await file({ omitKey: 'llama.attention.head_count' })
    await assert.rejects(checkGgufForLlama(p), (e: GgufValidationError) => {
      assert.ok(e instanceof GgufValidationError)
      assert.equal(e.code, 'ERR_GGUF_MISSING_KEY')
      assert.match(e.message, /llama\.attention\.head_count/)
      return true
    })
    const ok = await checkGgufForLlama(await file())
    assert.equal(ok.architecture, 'llama')
  })

  test('a wrongly shaped tensor passes header validation (llama.cpp refuses it at load)', async () => {
    const info = await readGgufInfo(await file({ breakTensor: true }))
    assert.deepEqual(validateForLlama(info), [])
    assert.deepEqual(info.tensors.find((t) => t.name === 'blk.0.attn_q.weight')?.dims, [128, 32])
  })

  test('zero-sized dimension and out-of-vocabulary token id', async () => {
    const info = await readGgufInfo(await file())
    info.tensors[1].dims = [0, 64]
    info.metadata['tokenizer.ggml.eos_token_id'] = 100_000
    const codes = validateForLlama(info).map((p) => p.code)
    assert.ok(codes.includes('ERR_GGUF_BAD_TENSOR'))
    assert.ok(codes.includes('ERR_GGUF_BAD_VALUE'))
  })
})
