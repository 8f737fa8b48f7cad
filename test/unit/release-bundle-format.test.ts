/**
 * The bundle's binary framing and hostile import uploads: torn frames, a truncated upload, a head
 * or feed.proofs length beyond its bound, a chunk frame the signed index does not list, a head
 * that is not a bundle index. Each is refused with its stable code, naming the bundle file, and
 * stores nothing (protocols/release-bundle.ts, node/install/bundle-import.ts).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { BundleError, chunkFrameHeader, decodeFrames, encodeFrames } from '../../protocols/release-bundle.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { exportFrom, importRaw, publishAt, root, type Site, site, uploadBytes } from './release-bundle-helpers.ts'

/** The parts of an upload: head, proofs, the chunk frames' bytes. */
function split(up: Buffer) {
  const headLen = up.readUInt32BE(0)
  const head = up.subarray(4, 4 + headLen)
  const proofLen = up.readUInt32BE(4 + headLen)
  const proofs = up.subarray(8 + headLen, 8 + headLen + proofLen)
  return { head, proofs, chunks: up.subarray(8 + headLen + proofLen) }
}

function join32(...parts: Buffer[]): Buffer {
  const out: Buffer[] = []
  for (const p of parts) {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(p.byteLength)
    out.push(len, p)
  }
  return Buffer.concat(out)
}

async function refusedRaw(s: Site, bytes: Buffer, code: string, file: string, m: ReleaseManifest) {
  await assert.rejects(importRaw(s, bytes), (err: unknown) => {
    assert.ok(err instanceof BundleError, String(err))
    assert.equal(err.code, code, err.message)
    assert.ok(err.message.startsWith(file), err.message)
    return true
  })
  assert.equal(s.messages.releases().length, 0)
  const core = await s.store.feed(m.chunks.feed)
  assert.equal(core.length === 0 || !(await core.has(0)), true, 'no block stored')
}

describe('bundle framing', () => {
  test('frames round-trip; a torn or excess frame is refused naming the file', () => {
    const frames = [new Uint8Array([1, 2, 3]), new Uint8Array(0), randomBytes(300)]
    const enc = encodeFrames(frames)
    assert.deepEqual(
      decodeFrames(enc, 'feed.proofs', 3).map((f) => Buffer.from(f)),
      frames.map((f) => Buffer.from(f)),
    )
    for (const cut of [1, 5, enc.byteLength - 1]) {
      assert.throws(
        () => decodeFrames(enc.subarray(0, cut), 'feed.proofs', 3),
        (e: unknown) => e instanceof BundleError && e.code === 'ERR_BUNDLE_FORMAT' && e.file === 'feed.proofs',
      )
    }
    assert.throws(() => decodeFrames(enc, 'feed.proofs', 2), /more than 2 frames/)
    assert.equal(Buffer.from(chunkFrameHeader('ab'.repeat(32), 258)).readUInt32BE(64), 258)
  })
})

describe('hostile import uploads', () => {
  let a: Site
  let m: ReleaseManifest
  let up: Buffer
  let b: Site
  before(async () => {
    a = await site()
    m = await publishAt(a, '1.0.0', 7)
    const dir = join(root, 'format-bundle')
    await exportFrom(a, '1.0.0', dir)
    up = await uploadBytes(dir)
    b = await site()
  })
  after(async () => {
    await a?.store.stop()
    await b?.store.stop()
  })

  test('a truncated upload, oversized lengths, an unlisted or repeated chunk, a head that is no index: refused', async () => {
    const { head, proofs, chunks } = split(up)
    const firstHash = chunks.subarray(0, 64).toString('latin1')
    // cut in the middle of the first chunk's bytes
    await refusedRaw(
      b,
      up.subarray(0, up.byteLength - chunks.byteLength + 100),
      'ERR_BUNDLE_FORMAT',
      `chunks/${firstHash}`,
      m,
    )
    const huge = Buffer.alloc(4)
    huge.writeUInt32BE(0xffffffff)
    await refusedRaw(b, Buffer.concat([huge, up.subarray(4)]), 'ERR_BUNDLE_TOO_LARGE', 'bundle.json', m)
    await refusedRaw(b, Buffer.concat([join32(head), huge, proofs, chunks]), 'ERR_BUNDLE_TOO_LARGE', 'feed.proofs', m)
    const stranger = randomBytes(32).toString('hex')
    const extra = Buffer.concat([chunkFrameHeader(stranger, 16), randomBytes(16)])
    await refusedRaw(
      b,
      Buffer.concat([join32(head, proofs), extra, chunks]),
      'ERR_BUNDLE_CHUNK_UNKNOWN',
      `chunks/${stranger}`,
      m,
    )
    await refusedRaw(
      b,
      Buffer.concat([join32(Buffer.from('{"nope":'), proofs), chunks]),
      'ERR_BUNDLE_FORMAT',
      'bundle.json',
      m,
    )
    const other = JSON.parse(head.toString('utf8'))
    other.index.format = 2
    await refusedRaw(
      b,
      Buffer.concat([join32(Buffer.from(JSON.stringify(other)), proofs), chunks]),
      'ERR_BUNDLE_FORMAT',
      'bundle.json',
      m,
    )
    const first = chunks.subarray(0, 68 + chunks.readUInt32BE(64))
    await refusedRaw(
      b,
      Buffer.concat([join32(head, proofs), first, chunks]),
      'ERR_BUNDLE_FORMAT',
      `chunks/${firstHash}`,
      m,
    )
    // the untouched upload imports
    assert.equal((await importRaw(b, up)).new_release, true)
  })
})
