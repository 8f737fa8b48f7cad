/**
 * No byte of a bundle's `feed.proofs` is free to change: bit 0 of every byte is flipped in turn,
 * and each copy is imported into a node of its own (a node that already holds part of the signed
 * tree does not need every proof, so a fresh node is where each one is used). Every copy is
 * refused, with ERR_BUNDLE_FORMAT (the frame is not a proof as exporters write it: node/store/
 * feed-proofs.ts `decodeProof`), ERR_BUNDLE_FEED_STATE (no upgrade from this node's length) or
 * ERR_BUNDLE_PROOF (hypercore does not verify it); no copy stores the release, and only a proof
 * refusal may leave blocks proven before it (genuine blocks of the signed feed). Before the strict decoding, 10 of the
 * 664 positions imported: the request id, bytes after a shortened message, a signer's patch count.
 */
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { releaseBlocks } from '../../node/store/fetcher.ts'
import { BundleError } from '../../protocols/release-bundle.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { exportFrom, importInto, publishAt, root, type Site, site, variant } from './release-bundle-helpers.ts'

describe('release bundle proofs', () => {
  let a: Site
  let v1: ReleaseManifest
  const b1 = join(root, 'bundle-proofs-v1')
  before(async () => {
    a = await site()
    v1 = await publishAt(a, '1.0.0', 1)
    await exportFrom(a, '1.0.0', b1)
  })
  after(async () => {
    await a?.store.stop()
  })

  test('every flipped byte of feed.proofs is refused on a fresh node, nothing of the release stored', async () => {
    const proofs = await readFile(join(b1, 'feed.proofs'))
    assert.ok(proofs.byteLength > 300, `${proofs.byteLength} bytes of proofs`)
    const codes = new Map<string, number>()
    for (let at = 0; at < proofs.byteLength; at++) {
      const copy = await variant(b1, 'flip-proofs-scan', async (d) => {
        const b = Buffer.from(proofs)
        b[at] = (b[at] as number) ^ 0x01
        await writeFile(join(d, 'feed.proofs'), b)
      })
      const b = await site()
      try {
        const err = await importInto(b, copy).then(
          () => assert.fail(`byte ${at}: imported`),
          (e: unknown) => e,
        )
        assert.ok(err instanceof BundleError, `byte ${at}: ${err}`)
        assert.match(err.code, /^ERR_BUNDLE_(FORMAT|PROOF|FEED_STATE)$/, `byte ${at}: ${err.message}`)
        assert.ok(err.message.startsWith('feed.proofs:'), err.message)
        codes.set(err.code, (codes.get(err.code) ?? 0) + 1)
        assert.equal(b.messages.releases().length, 0, `byte ${at}: release stored`)
        if (err.code !== 'ERR_BUNDLE_PROOF') {
          // refused while reading, or before the first proof applied: no block either
          const core = await b.store.feed(v1.chunks.feed)
          for (const i of releaseBlocks(v1.chunks))
            assert.equal(i < core.length && (await core.has(i)), false, `byte ${at}: block ${i}`)
        }
      } finally {
        await b.store.stop()
      }
    }
    assert.equal(
      [...codes.values()].reduce((x, y) => x + y, 0),
      proofs.byteLength,
    )
    assert.ok(
      (codes.get('ERR_BUNDLE_PROOF') ?? 0) > 0 && (codes.get('ERR_BUNDLE_FORMAT') ?? 0) > 0,
      JSON.stringify([...codes]),
    )
  })
})
