/**
 * One copy on disk (issue #17, goal 1), measured with `du` on a device's data directory: after an
 * install the device holds ≤ 1.2× the file (store, install, indexes), the peak during an install
 * stays ≤ 2.2×; a delta version reuses the old version's blocks read from its installed file; after
 * GC the old version's space is returned; and the device still serves every block of its installed
 * version to another device from the file alone (seed gone).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, describe, test } from 'node:test'
import { promisify } from 'node:util'
import pino from 'pino'
import { Installer } from '../../node/install/installer.ts'
import type { DownloadStatus } from '../../node/install/progress.ts'
import { silentLogger } from '../../node/logger.ts'
import { releaseBlocks } from '../../node/store/fetcher.ts'
import { createReplicationMetrics } from '../../node/store/replication-metrics.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { makeRelease } from '../unit/install-fixtures.ts'
import { cleanup, connectAll, startPeer, type TestPeer } from './distribution-helpers.ts'

const execFileP = promisify(execFile)
const SHAPE = { layers: 4, embd: 384, seed: 11 }

/** Bytes allocated under `dir` (du -sk: what the disk really holds). */
async function du(dir: string): Promise<number> {
  const { stdout } = await execFileP('du', ['-sk', dir])
  return Number(stdout.split('\t')[0]) * 1024
}

/** Samples `du` of `dir` until `p` settles; resolves with p's value and the largest sample. */
async function peakDuring<T>(dir: string, p: Promise<T>): Promise<{ value: T; peak: number }> {
  let done = false
  let peak = 0
  const sampler = (async () => {
    while (!done) {
      peak = Math.max(peak, await du(dir).catch(() => 0))
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
  try {
    const value = await p
    return { value, peak: Math.max(peak, await du(dir)) }
  } finally {
    done = true
    await sampler
  }
}

describe('disk footprint of installed versions', () => {
  const peers: TestPeer[] = []
  after(() => cleanup(peers))

  test('≤ 1.2× per installed version, ≤ 2.2× peak; delta reuse and serving from the installed file', async (t) => {
    const seed = await startPeer('seed-disk')
    const dev = await startPeer('dev-disk')
    peers.push(seed, dev)
    const v1File = join(seed.dataDir, 'v1.gguf')
    const v2File = join(seed.dataDir, 'v2.gguf')
    await writeTinyGguf(v1File, SHAPE)
    await writeTinyGguf(v2File, { ...SHAPE, perturbLayer: 2 })
    const m1 = await makeRelease(seed.store, 'tiny', '1.0.0', v1File)
    const m2 = await makeRelease(seed.store, 'tiny', '1.1.0', v2File)
    const f1 = (await stat(v1File)).size
    const f2 = (await stat(v2File)).size
    await connectAll([seed, dev])
    const logLines: Array<{ msg: string; peers?: string[] }> = []
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _enc, cb) {
          logLines.push(JSON.parse(chunk.toString()))
          cb()
        },
      }),
    )
    const inst = new Installer({ store: dev.store, logger }, { dataDir: dev.dataDir })
    await inst.start()
    // RocksDB's fixed cost, whatever the file's size (preallocated write-ahead log and MANIFEST, ~13 MB
    // at 8 MiB memtables): left out of the ratios, which are about the file's bytes
    const base = await du(dev.dataDir)

    // progress in /status while the download runs
    const seen: DownloadStatus[] = []
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        const d = (await inst.status()).tiny?.downloading
        if (d) seen.push(d)
        await new Promise((r) => setTimeout(r, 10))
      }
    })()
    const { value: p1, peak } = await peakDuring(dev.dataDir, inst.prestage(m1))
    sampling = false
    await sampler
    const seedId = seed.libp2p.peerId.toString()
    assert.ok(seen.length > 0, 'the download was visible in status')
    assert.ok(seen.every((d) => d.version === '1.0.0' && d.bytes_total === f1 && d.bytes_have <= f1))
    assert.ok(
      seen.some(
        (d) => d.bytes_have > 0 && d.rate_bps > 0 && d.eta_s !== null && d.peers.some((p) => p.peer === seedId),
      ),
      'bytes, rate, ETA and the seed as source',
    )
    const steps = logLines.filter((l) => /^download \d+%$/.test(l.msg)).map((l) => l.msg)
    assert.deepEqual(steps.at(-1), 'download 100%')
    assert.ok(steps.length >= 9, `a line per 10 %: ${steps.join(', ')}`)
    assert.deepEqual(logLines.find((l) => l.msg === 'download 100%')?.peers, [seedId])
    const metrics = await createReplicationMetrics(() => dev.replicator.stats()).registry.metrics()
    const nBlocks = new Set(releaseBlocks(m1.chunks)).size
    assert.match(metrics, new RegExp(`llmesh_replication_blocks_total\\{direction="in"\\} ${nBlocks}\\n`))
    const bytesIn = Number(/llmesh_replication_bytes_total\{direction="in"\} (\d+)/.exec(metrics)?.[1])
    assert.ok(bytesIn >= f1 && bytesIn < f1 * 1.05, `bytes in ${bytesIn} for ${f1}`)
    assert.match(metrics, /llmesh_replication_invalid_blocks_total 0\n/)
    await inst.activate('tiny', '1.0.0')
    const steady1 = (await du(dev.dataDir)) - base
    t.diagnostic(
      `empty store ${base} B; v1 ${f1} B: installed ${(steady1 / f1).toFixed(3)}×, peak ${((peak - base) / f1).toFixed(3)}×`,
    )
    assert.ok(steady1 <= 1.2 * f1, `v1 installed: ${steady1} bytes on disk for a ${f1}-byte file`)
    assert.ok(peak - base <= 2.2 * f1, `peak during the install: ${peak - base} bytes for ${f1}`)

    // v2 reuses v1's blocks, which now live only in v1's model.gguf
    const v1Blocks = new Set(releaseBlocks(m1.chunks))
    const newBytes = [...new Map(m2.chunks.chunks.filter((c) => !v1Blocks.has(c.block)).map((c) => [c.block, c.size]))]
      .map(([, s]) => s)
      .reduce((a, b) => a + b, 0)
    const before = dev.replicator.stats().bytesIn
    const p2 = await inst.prestage(m2)
    assert.deepEqual(await readFile(p2), await readFile(v2File))
    const moved = dev.replicator.stats().bytesIn - before
    assert.ok(moved <= newBytes * 1.1 + 64 * 1024, `delta moved ${moved} bytes for ${newBytes} bytes of new chunks`)
    await inst.activate('tiny', '1.1.0')
    const steady2 = (await du(dev.dataDir)) - base
    t.diagnostic(`v1+v2: ${(steady2 / (f1 + f2)).toFixed(3)}× of both files; delta moved ${moved} B for ${newBytes} B`)
    assert.ok(steady2 <= 1.2 * (f1 + f2), `v2 active + v1 previous: ${steady2} bytes for ${f1 + f2}`)

    // healthy: previous dropped; GC keeping one version removes v1, its space comes back, v2 still
    // serves the blocks both share
    await inst.markHealthy('tiny')
    const lean = new Installer({ store: dev.store, logger: silentLogger() }, { dataDir: dev.dataDir, keepVersions: 1 })
    await lean.start()
    assert.deepEqual(await lean.gc('tiny'), ['1.0.0'])
    assert.deepEqual((await inst.status()).tiny.staged, ['1.1.0'])
    const steady3 = (await du(dev.dataDir)) - base
    t.diagnostic(`v2 alone after GC: ${(steady3 / f2).toFixed(3)}×`)
    assert.ok(steady3 <= 1.2 * f2, `v2 alone: ${steady3} bytes for ${f2}`)
    assert.deepEqual(await readFile(p1).catch(() => null), null, 'v1 removed')

    // the seed leaves; a new device gets all of v2 from the first device's installed file
    await seed.stop()
    const other = await startPeer('dev-disk-2')
    peers.push(other)
    await connectAll([dev, other])
    const inst2 = new Installer({ store: other.store, logger: silentLogger() }, { dataDir: other.dataDir })
    await inst2.start()
    const p3 = await inst2.prestage(m2)
    assert.deepEqual(await readFile(p3), await readFile(v2File))
    assert.ok(other.replicator.stats().bytesIn >= f2, 'every block crossed the wire from the first device')
    assert.equal(other.replicator.stats().invalidBlocks, 0)
    const served = await createReplicationMetrics(() => dev.replicator.stats()).registry.metrics()
    const out = Number(/llmesh_replication_blocks_total\{direction="out"\} (\d+)/.exec(served)?.[1])
    assert.equal(out, new Set(releaseBlocks(m2.chunks)).size, 'the first device served every block of v2')
  })
})
