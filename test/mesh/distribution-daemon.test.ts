/**
 * Distribution through real daemons on loopback: a seed with the /releases routes and two
 * devices with the Distribution service. Publishing over HTTP prestages the release on every
 * device, shown by /status; a non-GGUF upload is refused with its reason.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import type { NodeStatus } from '../../node/api/status.ts'
import { Daemon } from '../../node/daemon.ts'
import { Distribution } from '../../node/install/distribution.ts'
import { silentLogger } from '../../node/logger.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { makeFleet, tempDir, waitFor } from './fixtures.ts'

const execFileP = promisify(execFile)

describe('distribution through daemons', () => {
  const fleet = makeFleet()
  const cleanups: Array<() => Promise<void>> = []
  const daemons: Daemon[] = []
  const dists: Distribution[] = []
  let seed: Daemon
  let seedDir: string

  const opts = (dataDir: string) => ({
    fleet: { id: fleet.id, psk: fleet.psk, trust: fleet.trust },
    dataDir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    api: '127.0.0.1:0',
    mdns: false,
    logger: silentLogger(),
  })

  before(async () => {
    const s = await tempDir()
    cleanups.push(s.cleanup)
    seedDir = s.dir
    seed = createSeedDaemon({ ...opts(s.dir), signer: fleet.signer })
    await seed.start()
    daemons.push(seed)
    for (let i = 0; i < 2; i++) {
      const d = await tempDir()
      cleanups.push(d.cleanup)
      const node = new Daemon({
        ...opts(d.dir),
        bootstrap: [seed.context.mesh.multiaddrs()[0]],
        services: [
          (ctx) => {
            const dist = new Distribution(ctx)
            dists.push(dist)
            return dist
          },
        ],
      })
      await node.start()
      daemons.push(node)
    }
  })

  after(async () => {
    for (const d of daemons.reverse()) await d.stop()
    for (const c of cleanups) await c()
  })

  test('POST /releases publishes; devices prestage it and /status shows it staged', async () => {
    const file = join(seedDir, 'tiny.gguf')
    await writeTinyGguf(file, { layers: 2, embd: 64 })
    const body = await readFile(file)
    const res = await fetch(`${seed.apiUrl}/releases?model=tiny&version=1.0.0&approved_by=alice`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    })
    const out = (await res.json()) as { manifest: { seq: number; file: { sha256: string; model_arch: string } } }
    assert.equal(res.status, 201, JSON.stringify(out))
    assert.equal(out.manifest.seq, 1)
    assert.equal(out.manifest.file.model_arch, 'llama')
    for (const d of daemons.slice(1)) {
      await waitFor(
        async () => {
          const st = (await (await fetch(`${d.apiUrl}/status`)).json()) as NodeStatus
          return st.models.tiny?.staged.includes('1.0.0') === true
        },
        30_000,
        'device staged v1',
      )
    }
    for (const dist of dists) {
      assert.deepEqual(await readFile(dist.installer.layout.file('tiny', '1.0.0')), body)
    }
    const list = (await (await fetch(`${seed.apiUrl}/releases`)).json()) as { releases: Array<{ version: string }> }
    assert.deepEqual(
      list.releases.map((r) => r.version),
      ['1.0.0'],
    )
    const again = await fetch(`${seed.apiUrl}/releases?model=tiny&version=1.1.0`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    })
    assert.equal(again.status, 201)
    assert.equal(((await again.json()) as { manifest: { seq: number } }).manifest.seq, 2)
  })

  test('llmesh release publish|list|show talk to the seed', async () => {
    const file = join(seedDir, 'v3.gguf')
    await writeTinyGguf(file, { layers: 2, embd: 64, perturbLayer: 1 })
    const cli = (...args: string[]) =>
      execFileP(process.execPath, [
        join(import.meta.dirname, '../../cli/bin.ts'),
        ...args,
        '--api',
        String(seed.apiUrl),
        '--json',
      ])
    const pub = JSON.parse(
      (await cli('release', 'publish', file, '--model', 'tiny', '--version', '3.0.0', '--approved-by', 'bob')).stdout,
    ) as { manifest: ReleaseManifest; new_chunks: number }
    assert.equal(pub.manifest.version, '3.0.0')
    assert.deepEqual(pub.manifest.provenance.approved_by, ['bob'])
    assert.ok(pub.new_chunks < pub.manifest.chunks.chunks.length || pub.manifest.chunks.chunks.length === 1)
    const list = JSON.parse((await cli('release', 'list')).stdout) as { releases: Array<{ version: string }> }
    assert.ok(list.releases.some((r) => r.version === '3.0.0'))
    const show = JSON.parse((await cli('release', 'show', 'tiny@3.0.0')).stdout) as { manifest: ReleaseManifest }
    assert.equal(show.manifest.file.sha256, pub.manifest.file.sha256)
    await assert.rejects(cli('release', 'show', 'tiny@9.9.9'), (e: { stderr: string }) =>
      /ERR_NOT_FOUND/.test(e.stderr),
    )
  })

  test('a file that is not GGUF is refused with its reason', async () => {
    const res = await fetch(`${seed.apiUrl}/releases?model=bad&version=1.0.0`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.from('definitely not a gguf file, just text'),
    })
    assert.equal(res.status, 400)
    const out = (await res.json()) as { error: { code: string; message: string } }
    assert.match(out.error.code, /^ERR_GGUF_/)
  })
})
