import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { STAGING_HASH_READ_BYTES } from '../../node/store/constants.ts'
import { StagingFile } from '../../node/store/staging-file.ts'

const root = await mkdtemp(join(tmpdir(), 'staging-file-'))
after(() => rm(root, { recursive: true, force: true }))

describe('staging file', () => {
  // sizes around the digest's read size: empty, one byte, exactly one read, several reads and a tail
  const sizes = [0, 1, STAGING_HASH_READ_BYTES, 2 * STAGING_HASH_READ_BYTES + STAGING_HASH_READ_BYTES / 2 + 3]
  for (const size of sizes) {
    test(`digest of a ${size}-byte file written in random block order is the sha256 of its bytes`, async () => {
      const path = join(root, `f${size}`)
      // blocks of 64 KiB and a tail; block 0 appears twice (a repeated chunk is written at both offsets)
      const blockSize = 64 * 1024
      const blocks: Buffer[] = []
      for (let left = size; left > 0; left -= blockSize) blocks.push(randomBytes(Math.min(blockSize, left)))
      const order = blocks.map((_, i) => i)
      const chunks = order.map((block) => ({ block, size: blocks[block].byteLength }))
      if (blocks.length > 1 && blocks[0].byteLength === blocks.at(-1)?.byteLength) chunks[chunks.length - 1].block = 0
      const { file, existed } = await StagingFile.open(path, chunks)
      assert.equal(existed, false)
      try {
        const shuffled = [...new Set(chunks.map((c) => c.block))].sort(() => Math.random() - 0.5)
        for (const b of shuffled) await file.put([[b, blocks[b]]])
        const want = Buffer.concat(chunks.map((c) => blocks[c.block]))
        assert.deepEqual(await readFile(path), want)
        const got = await file.digest()
        assert.equal(got.size, size)
        assert.equal(got.sha256, createHash('sha256').update(want).digest('hex'))
      } finally {
        await file.close()
      }
    })
  }
})
