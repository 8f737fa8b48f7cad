/**
 * Publishing through a real seed (loopback, mDNS off) and the `llmesh release` CLI: a version is
 * published once (a second publish changes nothing), downgrades need --allow-downgrade and are
 * recorded, the seed validates before it appends to the feed, and non-GGUF uploads are refused
 * early without naming the seed's spool path.
 */

import assert from 'node:assert/strict'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { loadFleet } from '../../node/fleet/index.ts'
import { silentLogger } from '../../node/logger.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { createSeedDaemon, type SeedDaemon } from '../../seed/seed-daemon.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { cli, scaled, suiteTmpDir, waitFor } from '../helpers/index.ts'

describe('release publish on a seed', { timeout: scaled(400_000) }, () => {
  const home = suiteTmpDir('llmesh-release-')
  let fleetDir: string
  let seed: SeedDaemon
  let api: string

  /** What a refused publish must leave alone. */
  const snapshot = async (model = 'tiny') => ({
    feed: (await seed.parts.distribution!.store.lineage(model)).length,
    seq: seed.context.store.highestReleaseSeq(model),
    releases: seed.context.store.releases().map((r) => r.digest),
    uploads: await readdir(join(home, 'seed', 'uploads')).catch(() => []),
  })
  const gguf = async (name: string, perturbLayer?: number) => {
    const file = join(home, name)
    await writeTinyGguf(file, { layers: 2, embd: 64, perturbLayer })
    return file
  }
  const publish = (file: string, version: string, ...extra: string[]) =>
    cli(['release', 'publish', file, '--model', 'tiny', '--version', version, '--api', api, '--json', ...extra])
  const post = async (query: string, body: Uint8Array, headers: Record<string, string> = {}) => {
    const res = await fetch(`${api}/releases?${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', ...headers },
      body,
    })
    return {
      status: res.status,
      body: (await res.json()) as { error: { code: string; message: string } } & Record<string, unknown>,
    }
  }

  before(async () => {
    fleetDir = join(home, 'fleet')
    const init = await cli(['fleet', 'init', fleetDir, '--fleet-id', 'release-fleet', '--auto-enroll'])
    assert.equal(init.code, 0, init.stderr)
    const fl = await loadFleet(fleetDir)
    seed = createSeedDaemon({
      fleet: { id: fl.root.fleet, psk: fl.swarmKey, trust: fl.root },
      dataDir: join(home, 'seed'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      api: '127.0.0.1:0',
      mdns: false,
      logger: silentLogger(),
      signer: fl.operatorSigner!,
    })
    await seed.start()
    api = String(seed.apiUrl)
  })
  after(async () => {
    await seed?.stop()
  })

  test('the same version published twice: the second exits non-zero with ERR_VERSION_EXISTS and changes nothing', async () => {
    const file = await gguf('v1.gguf')
    const first = await publish(file, '1.0.0+gguf-q4_0')
    assert.equal(first.code, 0, first.stderr)
    assert.equal((JSON.parse(first.stdout) as { manifest: ReleaseManifest }).manifest.seq, 1)
    const before = await snapshot()
    const listBefore = await cli(['release', 'list', '--api', api, '--json'])

    const again = await publish(await gguf('v1-other.gguf', 1), '1.0.0+gguf-q4_0')
    assert.notEqual(again.code, 0)
    assert.match(again.stderr, /\[ERR_VERSION_EXISTS\]/)
    assert.equal(again.stderr.trim().split('\n').length, 1, 'one-line reason')
    // the seed refuses it too (not only the CLI's pre-check), with 409, even with allow_downgrade
    for (const q of [
      'model=tiny&version=1.0.0%2Bgguf-q4_0',
      'model=tiny&version=1.0.0%2Bgguf-q4_0&allow_downgrade=1',
    ]) {
      const raw = await post(q, new Uint8Array(await (await import('node:fs/promises')).readFile(file)))
      assert.equal(raw.status, 409)
      assert.equal(raw.body.error.code, 'ERR_VERSION_EXISTS')
    }
    assert.deepEqual(await snapshot(), before)
    assert.equal((await cli(['release', 'list', '--api', api, '--json'])).stdout, listBefore.stdout)
  })

  test('downgrades are refused unless allowed, then recorded and listed; another build of one core is a variant', async () => {
    const v2 = await publish(await gguf('v2.gguf', 1), '2.0.0')
    assert.equal(v2.code, 0, v2.stderr)
    const before = await snapshot()
    const down = await publish(await gguf('v15.gguf', 0), '1.5.0')
    assert.notEqual(down.code, 0)
    assert.match(down.stderr, /\[ERR_DOWNGRADE\]/)
    assert.match(down.stderr, /2\.0\.0/)
    const raw = await post('model=tiny&version=1.5.0', Buffer.from('GGUF'))
    assert.equal(raw.status, 409)
    assert.equal(raw.body.error.code, 'ERR_DOWNGRADE')
    assert.deepEqual(await snapshot(), before)

    const allowed = await publish(await gguf('v15.gguf', 0), '1.5.0', '--allow-downgrade')
    assert.equal(allowed.code, 0, allowed.stderr)
    const m = (JSON.parse(allowed.stdout) as { manifest: ReleaseManifest }).manifest
    assert.deepEqual(m.downgrade, { from: '2.0.0' })
    const { releases: rows } = JSON.parse((await cli(['release', 'list', '--api', api, '--json'])).stdout) as {
      releases: Array<{ version: string; downgrade_from?: string }>
    }
    assert.equal(rows.find((r) => r.version === '1.5.0')?.downgrade_from, '2.0.0')
    assert.equal(rows.find((r) => r.version === '2.0.0')?.downgrade_from, undefined)
    assert.match((await cli(['release', 'list', '--api', api])).stdout, /tiny@1\.5\.0 .*downgrade from 2\.0\.0/)
    // and the rollout shows it: status JSON and the human form
    await waitFor(
      async () => {
        const st = JSON.parse((await cli(['rollout', 'status', '--api', api, '--json'])).stdout) as {
          releases: Array<{ version: string; downgrade_from?: string }>
        }
        return st.releases.find((r) => r.version === '1.5.0')?.downgrade_from === '2.0.0'
      },
      { timeoutMs: 20_000, what: 'rollout status shows the downgrade' },
    )
    assert.match((await cli(['rollout', 'status', '--api', api])).stdout, /tiny@1\.5\.0 .*DOWNGRADE from 2\.0\.0/)

    // two builds of one core are distinct variants: neither a duplicate nor a downgrade
    const variant = await publish(await gguf('v2-q8.gguf', 1), '2.0.0+gguf-Q8_0')
    assert.equal(variant.code, 0, variant.stderr)
    assert.equal((JSON.parse(variant.stdout) as { manifest: ReleaseManifest }).manifest.downgrade, undefined)

    // the documented way back to old bytes: republish them as a new, higher version; the feed
    // already holds every chunk, so nothing is appended
    const feedBefore = (await snapshot()).feed
    const back = await publish(join(home, 'v1.gguf'), '2.1.0')
    assert.equal(back.code, 0, back.stderr)
    const out = JSON.parse(back.stdout) as { manifest: ReleaseManifest; new_chunks: number; new_bytes: number }
    assert.equal(out.new_chunks, 0)
    assert.equal(out.new_bytes, 0)
    assert.equal(out.manifest.downgrade, undefined)
    assert.equal((await snapshot()).feed, feedBefore)
  })

  test('a refused publish leaves the lineage feed as it was', async () => {
    const file = await gguf('fresh.gguf', 1)
    const body = new Uint8Array(await (await import('node:fs/promises')).readFile(file))
    const before = await snapshot()
    const range = await post('model=tiny&version=9.0.0&runtime=not-a-range', body)
    assert.equal(range.status, 400)
    assert.equal(range.body.error.code, 'ERR_INVALID_INPUT')
    assert.match(String(range.body.error.message), /runtime/)
    const arch = await post('model=tiny&version=9.0.0&ttl_days=0', body)
    assert.equal(arch.status, 400)
    assert.deepEqual(await snapshot(), before)
    const name = await post('model=Bad%20Name&version=1.0.0', body)
    assert.equal(name.status, 400)
    assert.match(String(name.body.error.message), /model/)
    assert.equal((await snapshot('Bad Name')).feed, 0)

    // below the route too: publishRelease itself validates before it appends
    const { publishRelease } = await import('../../seed/publish.ts')
    const fl = await loadFleet(fleetDir)
    await assert.rejects(
      publishRelease(
        { file, model: 'tiny', version: '9.0.0', runtime: '>=banana' },
        { store: seed.parts.distribution!.store, signer: fl.operatorSigner!, fleet: fl.root.fleet },
      ),
      { code: 'ERR_INVALID_INPUT' },
    )
    assert.deepEqual(await snapshot(), before)
  })

  test('a non-GGUF upload is refused from its first bytes, naming the upload, never the spool path', async () => {
    const before = await snapshot()
    // a body whose first bytes are not GGUF and that never ends: the reply must come anyway
    let sent = 0
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        sent += 65536
        if (sent > 256 * 1024 * 1024) c.close()
        else c.enqueue(new Uint8Array(65536).fill(0x41))
      },
    })
    const abort = new AbortController()
    const res = await fetch(`${api}/releases?model=tiny&version=9.1.0`, {
      method: 'POST',
      signal: abort.signal,
      headers: { 'content-type': 'application/octet-stream', 'x-llmesh-filename': '/home/op/notes.txt' },
      body: endless,
      duplex: 'half',
    } as RequestInit)
    const out = ((await res.json()) as { error: { code: string; message: string } }).error
    abort.abort() // stop sending the endless body
    assert.equal(res.status, 400)
    assert.equal(out.code, 'ERR_GGUF_BAD_MAGIC')
    assert.match(out.message, /^notes\.txt: not a GGUF file/)
    assert.ok(sent < 256 * 1024 * 1024, `refused after ${sent} bytes, not after the whole body`)

    // a GGUF start with a broken header: refused after the upload, before chunking, by its name only
    const broken = join(home, 'broken.gguf')
    await writeTinyGguf(broken, { layers: 2, embd: 64, omitKey: 'llama.attention.head_count' })
    const b = await post(
      'model=tiny&version=9.2.0',
      new Uint8Array(await (await import('node:fs/promises')).readFile(broken)),
      {
        'x-llmesh-filename': 'broken.gguf',
      },
    )
    assert.equal(b.status, 400)
    assert.match(String(b.body.error.code), /^ERR_GGUF_/)
    assert.match(String(b.body.error.message), /^broken\.gguf: /)
    for (const r of [out.message, String(b.body.error.message)]) {
      assert.doesNotMatch(r, /upload-|uploads|llmesh-release-/)
    }
    assert.deepEqual(await snapshot(), before)
  })

  test('the CLI checks the GGUF header before uploading a byte and names the user file', async () => {
    const text = join(home, 'readme.txt')
    await writeFile(text, 'not a model at all')
    // the API address is unreachable: the refusal must come from the local check
    const r = await cli([
      'release',
      'publish',
      text,
      '--model',
      'tiny',
      '--version',
      '9.3.0',
      '--api',
      'http://127.0.0.1:9',
    ])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /\[ERR_GGUF_BAD_MAGIC\]/)
    assert.ok(r.stderr.includes(text), r.stderr)
  })

  test('release get writes the bundle and manifest; verify checks a file offline with them', async () => {
    const file = await gguf('v3.gguf', 1)
    assert.equal((await publish(file, '3.0.0')).code, 0)
    const bundle = join(home, 'tiny-3.bundle.json')
    const manifest = join(home, 'tiny-3.manifest.json')
    const got = await cli(['release', 'get', 'tiny@3.0.0', '--bundle', bundle, '--manifest', manifest, '--api', api])
    assert.equal(got.code, 0, got.stderr)
    const { readFile } = await import('node:fs/promises')
    const b = JSON.parse(await readFile(bundle, 'utf8')) as { mediaType: string }
    assert.match(b.mediaType, /sigstore\.bundle/)
    assert.equal((JSON.parse(await readFile(manifest, 'utf8')) as ReleaseManifest).version, '3.0.0')

    const ok = await cli(['verify', file, '--bundle', bundle, '--fleet', fleetDir, '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal((JSON.parse(ok.stdout) as { version: string }).version, '3.0.0')

    const bytes = await readFile(file)
    bytes[bytes.length - 10] ^= 0x01
    const flipped = join(home, 'v3-flipped.gguf')
    await writeFile(flipped, bytes)
    const bad = await cli(['verify', flipped, '--bundle', bundle, '--fleet', fleetDir])
    assert.notEqual(bad.code, 0)
    assert.match(bad.stderr, /ERR_DIGEST_MISMATCH/)

    // a version with build metadata (`+`, `_`) through the URL; no option: the bundle on stdout
    const plus = await cli(['release', 'get', 'tiny@1.0.0+gguf-q4_0', '--api', api])
    assert.equal(plus.code, 0, plus.stderr)
    const plusBundle = join(home, 'tiny-1.bundle.json')
    await writeFile(plusBundle, plus.stdout)
    const v1 = await cli(['verify', join(home, 'v1.gguf'), '--bundle', plusBundle, '--fleet', fleetDir, '--json'])
    assert.equal(v1.code, 0, v1.stderr)
    assert.equal((JSON.parse(v1.stdout) as { version: string }).version, '1.0.0+gguf-q4_0')

    const missing = await cli(['release', 'get', 'tiny@9.9.9', '--bundle', bundle, '--api', api])
    assert.notEqual(missing.code, 0)
    assert.match(missing.stderr, /ERR_NOT_FOUND/)
  })
})
