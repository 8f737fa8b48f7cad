/**
 * Helpers of the release bundle tests: nodes made of real stores and the fleet verifier, the
 * seed's publish, and the CLI's bundle writer and upload run against them directly.
 */
import assert from 'node:assert/strict'
import { readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { bundleUpload, writeBundle } from '../../cli/commands/release-bundle.ts'
import { planExport, readChunk } from '../../node/install/bundle-export.ts'
import { importBundle } from '../../node/install/bundle-import.ts'
import { silentLogger } from '../../node/logger.ts'
import { createFleetVerifier } from '../../node/mesh/fleet-verifier.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { releaseBlocks } from '../../node/store/fetcher.ts'
import { LEGACY_CHUNKING, lineageChunking } from '../../node/store/lineage-chunking.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import { BundleError } from '../../protocols/release-bundle.ts'
import { parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { publishRelease } from '../../seed/publish.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { POLICIES, suiteTmpDir } from '../helpers/index.ts'
import { makeFleet, type TestFleet } from '../mesh/fixtures.ts'

export const DAY = 86_400_000
export const root = suiteTmpDir('llmesh-bundle-')
export const fleet = makeFleet('bundle-fleet')
let sites = 0

/** A node: a model store and a message store judged by the fleet verifier. */
export async function site(f: TestFleet = fleet) {
  const dir = join(root, `site-${sites++}`)
  const store = new ModelStore({ dataDir: dir })
  await store.start()
  const messages = new MessageStore({ logger: silentLogger() }, {})
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
export type Site = Awaited<ReturnType<typeof site>>

/** Publishes `version` at a seed site (signed, stored like the seed's route does). */
export async function publishAt(s: Site, version: string, seed: number, now = Date.now(), ctx = 256) {
  const file = join(s.dir, `tiny-${version}.gguf`)
  await writeTinyGguf(file, { layers: 2, embd: 64, seed, ctx })
  // 16/64/256 KiB chunks (a lineage started before new lineages got 32/128/256): the bundle tests'
  // byte positions (the flipped byte 200 of feed.proofs) were chosen for this many blocks (6); with
  // 3 blocks that byte falls in the upgrade proof, which a node that stored the signed upgrade in an
  // earlier refused import no longer uses (release-bundle-proofs.test.ts flips every byte, each on
  // a fresh node)
  await lineageChunking(await s.store.lineage('tiny'), LEGACY_CHUNKING)
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
export async function exportFrom(s: Site, version: string, out: string, since?: string) {
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
export async function importInto(s: Site, dir: string) {
  const up = await bundleUpload(dir)
  return importBundle(Readable.from(up.body), {
    store: s.store,
    verify: s.verify,
    publish: s.publish as never,
    stagingDir: join(s.dir, 'staging'),
  })
}

/** Asserts the import is refused with `code`, naming `file`, and `s` holds neither release nor block. */
export async function refused(
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
  // no block of the release is held, but those of releases the node already holds
  const others = new Set(s.messages.releases().flatMap((r) => releaseBlocks(r.message.chunks)))
  if (checkBlocks)
    for (const b of releaseBlocks(m.chunks))
      if (!others.has(b)) assert.equal(b < core.length && (await core.has(b)), false, `block ${b}`)
  assert.deepEqual(await readdir(join(s.dir, 'staging')).catch(() => []), [], 'staging emptied')
}

/** A copy of bundle `src` at `dst` with `edit` applied. */
export async function variant(src: string, name: string, edit: (dir: string) => Promise<void>): Promise<string> {
  const dst = join(root, name)
  await rm(dst, { recursive: true, force: true })
  const { cp } = await import('node:fs/promises')
  await cp(src, dst, { recursive: true })
  await edit(dst)
  return dst
}

export async function flipByte(path: string, at?: number): Promise<void> {
  const b = await readFile(path)
  const i = at ?? Math.floor(b.length / 2)
  b[i] = (b[i] as number) ^ 0x01
  await writeFile(path, b)
}

/** The raw import upload of bundle `dir` (what `llmesh release import` sends). */
export async function uploadBytes(dir: string): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const p of (await bundleUpload(dir)).body) parts.push(p)
  return Buffer.concat(parts)
}

/** Imports a raw upload into `s`. */
export function importRaw(s: Site, bytes: Uint8Array) {
  return importBundle(Readable.from([bytes]), {
    store: s.store,
    verify: s.verify,
    publish: s.publish as never,
    stagingDir: join(s.dir, 'staging'),
  })
}
