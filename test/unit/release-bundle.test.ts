/**
 * Release bundles (protocols/release-bundle.ts, node/install/bundle-*.ts, the CLI's writer and
 * upload): the format, a clean import, `--since`, and each refusal (naming the file, with its
 * stable code, leaving the importing node without the release or any of its blocks). Real
 * components: model stores (hypercore), message stores, the fleet verifier, the seed's publish.
 */
import assert from 'node:assert/strict'
import { readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { bundleUpload, writeBundle } from '../../cli/commands/release-bundle.ts'
import { planExport, readChunk } from '../../node/install/bundle-export.ts'
import { importBundle } from '../../node/install/bundle-import.ts'
import { silentLogger } from '../../node/logger.ts'
import { createFleetVerifier } from '../../node/mesh/fleet-verifier.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { releaseBlocks } from '../../node/store/fetcher.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import { BundleError, BundleIndex } from '../../protocols/release-bundle.ts'
import { parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { publishRelease } from '../../seed/publish.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { POLICIES, suiteTmpDir } from '../helpers/index.ts'
import { makeFleet, type TestFleet } from '../mesh/fixtures.ts'

const DAY = 86_400_000
const root = suiteTmpDir('llmesh-bundle-')
const fleet = makeFleet('bundle-fleet')
let sites = 0

/** A node: a model store and a message store judged by the fleet verifier. */
async function site(f: TestFleet = fleet) {
  const dir = join(root, `site-${sites++}`)
  const store = new ModelStore({ dataDir: dir })
  await store.start()
  const messages = new MessageStore({}, { logger: silentLogger() })
  const verifier = createFleetVerifier({ trust: f.trust, store: messages })
  const verify = async (bytes: Uint8Array) => verifier(bytes, Date.now())
  const publish = async (bytes: Uint8Array) => {
    const r = await verify(bytes)
    if (!r.ok) return { status: 'rejected' as const, digest: '', error: r.error }
    messages.add(r.value, bytes)
    return { status: 'accepted' as const, value: r.value }
  }
  return { dir, store, messages, verify, publish, f }
}
type Site = Awaited<ReturnType<typeof site>>

/** Publishes `version` at a seed site (signed, stored like the seed's route does). */
async function publishAt(s: Site, version: string, seed: number, now = Date.now(), ctx = 256) {
  const file = join(s.dir, `tiny-${version}.gguf`)
  await writeTinyGguf(file, { layers: 2, embd: 64, seed, ctx })
  const r = await publishRelease(
    { model: 'tiny', version, file, policy: parsePolicyYaml(POLICIES.ONE_STAGE), now },
    { store: s.store, signer: s.f.signer, fleet: s.f.id, highestSeq: (m) => s.messages.highestReleaseSeq(m) },
  )
  const v = await s.verify(r.wire)
  s.messages.add(
    v.ok ? v.value : ({ digest: r.digest, type: 'ReleaseManifest', message: r.manifest, signer: 'op' } as never),
    r.wire,
  )
  return r.manifest
}

/** What the CLI does for `release export`, against `s` directly. */
async function exportFrom(s: Site, version: string, out: string, since?: string) {
  const plan = await planExport({ store: s.store, messages: s.messages, self: 'exporter' }, 'tiny', version, since)
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64')
  const json = {
    index: plan.index,
    release: b64(plan.release),
    trust: plan.trust.map((t) => ({ file: t.file, wire: b64(t.wire) })),
    proofs: b64(plan.proofs),
  }
  return writeBundle(out, json, (h) => readChunk(s.store, plan.manifest, h))
}

/** What the CLI and the import route do for `release import`. */
async function importInto(s: Site, dir: string) {
  const up = await bundleUpload(dir)
  return importBundle(Readable.from(up.body), {
    store: s.store,
    verify: s.verify,
    publish: s.publish as never,
    stagingDir: join(s.dir, 'staging'),
  })
}

/** Asserts the import is refused with `code`, naming `file`, and `s` holds neither release nor block. */
async function refused(
  s: Site,
  dir: string,
  code: string | RegExp,
  file: string,
  m: ReleaseManifest,
  checkBlocks = true,
) {
  await assert.rejects(importInto(s, dir), (err: unknown) => {
    assert.ok(err instanceof BundleError, `a BundleError, got ${err}`)
    if (typeof code === 'string') assert.equal(err.code, code, err.message)
    else assert.match(err.code, code, err.message)
    assert.ok(err.message.startsWith(file.endsWith('/') ? file : `${file}:`), err.message)
    return true
  })
  assert.equal(s.messages.releases().filter((r) => r.message.version === m.version).length, 0, 'release not stored')
  const core = await s.store.feed(m.chunks.feed)
  if (checkBlocks)
    for (const b of releaseBlocks(m.chunks)) assert.equal(b < core.length && (await core.has(b)), false, `block ${b}`)
  assert.deepEqual(await readdir(join(s.dir, 'staging')).catch(() => []), [], 'staging emptied')
}

/** A copy of bundle `src` at `dst` with `edit` applied. */
async function variant(src: string, name: string, edit: (dir: string) => Promise<void>): Promise<string> {
  const dst = join(root, name)
  await rm(dst, { recursive: true, force: true })
  const { cp } = await import('node:fs/promises')
  await cp(src, dst, { recursive: true })
  await edit(dst)
  return dst
}

async function flipByte(path: string, at?: number): Promise<void> {
  const b = await readFile(path)
  const i = at ?? Math.floor(b.length / 2)
  b[i] = (b[i] as number) ^ 0x01
  await writeFile(path, b)
}

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
    // v2 holds most of v1's blocks: only the release's absence is checked
    await refused(c, b1, 'ERR_ROLLBACK', 'release.json', v1, false)
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
})
