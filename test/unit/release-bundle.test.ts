/**
 * Release bundles (protocols/release-bundle.ts, node/install/bundle-*.ts, the CLI's writer and
 * upload): the format, a clean import, `--since`, and each refusal (naming the file, with its
 * stable code, leaving the importing node without the release or any of its blocks). Real
 * components: model stores (hypercore), message stores, the fleet verifier, the seed's publish.
 */
import assert from 'node:assert/strict'
import { readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { releaseBlocks } from '../../node/store/fetcher.ts'
import { BundleIndex } from '../../protocols/release-bundle.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { makeFleet } from '../mesh/fixtures.ts'
import {
  DAY,
  exportFrom,
  flipByte,
  importInto,
  publishAt,
  refused,
  root,
  type Site,
  site,
  variant,
} from './release-bundle-helpers.ts'

describe('release bundles', () => {
  let a: Site
  let v1: ReleaseManifest
  let v2: ReleaseManifest
  const b1 = join(root, 'bundle-v1')
  const b2 = join(root, 'bundle-v2-since-v1')
  before(async () => {
    a = await site()
    v1 = await publishAt(a, '1.0.0', 1)
    await exportFrom(a, '1.0.0', b1) // cut before v2 exists: a site holding it has v1's feed length
    v2 = await publishAt(a, '1.1.0', 1, Date.now(), 512) // same weights, another header
    await exportFrom(a, '1.1.0', b2, '1.0.0')
  })
  after(async () => {
    await a?.store.stop()
  })

  test('the format: index, the release as stored, content-addressed chunks; a second export resumes', async () => {
    const index = BundleIndex.parse(JSON.parse(await readFile(join(b1, 'bundle.json'), 'utf8')))
    assert.equal(index.digest, a.messages.releases().find((r) => r.message.version === '1.0.0')?.digest)
    const stored = a.messages.releases().find((r) => r.message.version === '1.0.0')?.bytes
    assert.deepEqual(new Uint8Array(await readFile(join(b1, 'release.json'))), stored)
    const files = (await readdir(join(b1, 'chunks'))).sort()
    assert.deepEqual(files, [...new Set(v1.chunks.chunks.map((c) => c.hash))].sort())
    assert.equal(
      index.bytes,
      index.chunks.reduce((n, h) => n + (v1.chunks.chunks.find((c) => c.hash === h)?.size ?? 0), 0),
    )
    const again = await exportFrom(a, '1.0.0', b1)
    assert.equal(again.kept, files.length, 'every chunk already there is kept')
    const since = BundleIndex.parse(JSON.parse(await readFile(join(b2, 'bundle.json'), 'utf8')))
    const had = new Set(v1.chunks.chunks.map((c) => c.hash))
    assert.ok(since.chunks.length > 0 && since.chunks.every((h) => !had.has(h)), '--since: only chunks v1 lacks')
    assert.ok(since.chunks.length < new Set(v2.chunks.chunks.map((c) => c.hash)).size)
  })

  test('a clean import stores the release and every block; --since then imports only the delta', async () => {
    const b = await site()
    const r1 = await importInto(b, b1)
    assert.equal(r1.new_release, true)
    assert.equal(r1.blocks_imported, releaseBlocks(v1.chunks).length)
    const core = await b.store.feed(v1.chunks.feed)
    for (const c of v1.chunks.chunks) {
      const data = await core.get(c.block, { wait: false })
      assert.ok(data !== null)
    }
    const r2 = await importInto(b, b2)
    assert.equal(r2.new_release, true)
    assert.ok(r2.blocks_held > 0 && r2.blocks_imported > 0)
    assert.deepEqual(
      b.messages.releases().map((r) => r.message.version),
      ['1.1.0', '1.0.0'],
    )
    // downgraded: v1 (seq 1) after v2 (seq 2) at a node that holds only v2
    const c = await site()
    const full = join(root, 'bundle-v2-full')
    await exportFrom(a, '1.1.0', full)
    await importInto(c, full)
    await refused(c, b1, 'ERR_ROLLBACK', 'release.json', v1)
    await b.store.stop()
    await c.store.stop()
  })

  test('one flipped byte in a chunk, a missing chunk, a torn release, a bad proof: refused, nothing stored', async () => {
    const b = await site()
    const hash = v1.chunks.chunks[1]?.hash as string
    await refused(
      b,
      await variant(b1, 'flip-chunk', (d) => flipByte(join(d, 'chunks', hash))),
      'ERR_BUNDLE_CHUNK_DIGEST',
      `chunks/${hash}`,
      v1,
    )
    await refused(
      b,
      await variant(b1, 'no-chunk', (d) => rm(join(d, 'chunks', hash))),
      'ERR_BUNDLE_CHUNK_MISSING',
      `chunks/${hash}`,
      v1,
    )
    await refused(
      b,
      await variant(b1, 'flip-release', (d) => flipByte(join(d, 'release.json'))),
      /^ERR_/,
      'release.json',
      v1,
    )
    await refused(
      b,
      await variant(b1, 'flip-proofs', (d) => flipByte(join(d, 'feed.proofs'), 200)),
      /^ERR_BUNDLE_(PROOF|FORMAT)$/,
      'feed.proofs',
      v1,
    )
    await refused(
      b,
      await variant(b1, 'other-index', async (d) => {
        const ix = JSON.parse(await readFile(join(d, 'bundle.json'), 'utf8'))
        await writeFile(join(d, 'bundle.json'), JSON.stringify({ ...ix, version: '9.9.9' }))
      }),
      'ERR_BUNDLE_MISMATCH',
      'bundle.json',
      v1,
    )
    // a --since bundle at a node that lacks the base version
    await refused(b, b2, 'ERR_BUNDLE_CHUNK_MISSING', 'chunks/', v2)
    // after every refusal the clean bundle still imports
    assert.equal((await importInto(b, b1)).new_release, true)
    await b.store.stop()
  })

  test("an expired release and another fleet's bundle are refused by the node's verifier", async () => {
    const old = await site()
    const expired = await publishAt(old, '1.0.0', 3, Date.now() - 100 * DAY)
    const be = join(root, 'bundle-expired')
    await exportFrom(old, '1.0.0', be)
    const other = await site(makeFleet('other-fleet'))
    const foreign = await publishAt(other, '1.0.0', 4)
    const bf = join(root, 'bundle-foreign')
    await exportFrom(other, '1.0.0', bf)
    const b = await site()
    await refused(b, be, 'ERR_EXPIRED', 'release.json', expired)
    await refused(b, bf, /^ERR_(WRONG_FLEET|UNKNOWN_SIGNER|BAD_SIGNATURE)$/, 'release.json', foreign)
    for (const s of [old, other, b]) await s.store.stop()
  })
  test("a bundle cut at a shorter feed than the importer's is refused as a feed state, nothing stored", async () => {
    // known limit: hypercore proves blocks against one tree; a node whose copy of the lineage feed
    // is longer than the bundle's (it imported a bundle cut later) cannot check the shorter proofs
    const s = await site()
    await publishAt(s, '1.0.0', 11)
    const v2 = await publishAt(s, '2.0.0', 12)
    const q = join(root, 'ahead-v2')
    await exportFrom(s, '2.0.0', q)
    await publishAt(s, '3.0.0', 13)
    const p = join(root, 'ahead-v1')
    await exportFrom(s, '1.0.0', p)
    const b = await site()
    await importInto(b, p)
    await refused(b, q, 'ERR_BUNDLE_FEED_STATE', 'feed.proofs', v2)
    for (const x of [s, b]) await x.store.stop()
  })
})
