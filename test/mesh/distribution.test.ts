/**
 * Distribution on loopback, all peers in one process (mDNS off, direct dials): seed + 4 devices,
 * delta transfer of a one-layer change, seed stopped halfway, a peer serving corrupted blocks.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { Installer } from '../../node/install/installer.ts'
import { silentLogger } from '../../node/logger.ts'
import { fetchRelease, releaseBlocks } from '../../node/store/fetcher.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { within } from '../helpers/index.ts'
import { until } from '../lan/netns.ts'
import { makeRelease } from '../unit/install-fixtures.ts'
import { cleanup, connectAll, startPeer, type TestPeer } from './distribution-helpers.ts'

const SHAPE = { layers: 6, embd: 256, seed: 42 }

async function installerFor(p: TestPeer): Promise<Installer> {
  const i = new Installer({ store: p.store, logger: silentLogger() }, { dataDir: p.dataDir })
  await i.start()
  return i
}

describe('distribution over libp2p (loopback)', () => {
  const peers: TestPeer[] = []
  after(() => cleanup(peers))

  test('seed + 4 devices end with a byte-identical verified v1; v2 moves only the new chunks', async () => {
    const seed = await startPeer('seed')
    peers.push(seed)
    const devices: TestPeer[] = []
    for (let i = 0; i < 4; i++) devices.push(await startPeer(`dev${i}`))
    peers.push(...devices)
    const v1File = join(seed.dataDir, 'v1.gguf')
    const v2File = join(seed.dataDir, 'v2.gguf')
    await writeTinyGguf(v1File, SHAPE)
    await writeTinyGguf(v2File, { ...SHAPE, perturbLayer: 3 })
    const m1 = await makeRelease(seed.store, 'tiny', '1.0.0', v1File)
    await connectAll([seed, ...devices])
    const installers = await Promise.all(devices.map(installerFor))
    const paths = await Promise.all(installers.map((i) => i.prestage(m1)))
    const want = await readFile(v1File)
    for (const p of paths) assert.deepEqual(await readFile(p), want)
    for (const i of installers) {
      await i.activate('tiny', '1.0.0')
      assert.equal((await i.status()).tiny.active, '1.0.0')
    }

    const before = devices.map((d) => d.replicator.stats().bytesIn)
    const m2 = await makeRelease(seed.store, 'tiny', '1.1.0', v2File)
    const v1Blocks = new Set(releaseBlocks(m1.chunks))
    const newBlocks = m2.chunks.chunks.filter((c) => !v1Blocks.has(c.block))
    const newBytes = [...new Map(newBlocks.map((c) => [c.block, c.size])).values()].reduce((s, n) => s + n, 0)
    assert.ok(newBytes > 0 && newBytes < m2.file.size * 0.35, `new bytes ${newBytes} of ${m2.file.size}`)
    const dl = devices.map(() => ({ n: 0, bytes: 0 }))
    for (const [k, d] of devices.entries()) {
      const core = await d.store.feed(m2.chunks.feed)
      core.on('download', (_i: number, len: number) => {
        dl[k].n++
        dl[k].bytes += len
      })
    }
    const paths2 = await Promise.all(installers.map((i) => i.prestage(m2)))
    const want2 = await readFile(v2File)
    for (const [k, p] of paths2.entries()) {
      assert.deepEqual(await readFile(p), want2)
      assert.deepEqual(
        dl[k],
        { n: new Set(newBlocks.map((c) => c.block)).size, bytes: newBytes },
        `device ${k} stored other blocks`,
      )
      const got = devices[k].replicator.stats().bytesIn - before[k]
      assert.ok(
        Math.abs(got - newBytes) <= newBytes * 0.1,
        `device ${k} received ${got} bytes for ${newBytes} bytes of new chunks`,
      )
    }
  })

  test('the seed stops halfway: devices finish from each other', async () => {
    const seed = await startPeer('seed2')
    const first = await startPeer('first')
    const rest = [await startPeer('a'), await startPeer('b'), await startPeer('c')]
    peers.push(seed, first, ...rest)
    const file = join(seed.dataDir, 'big.gguf')
    await writeTinyGguf(file, { layers: 8, embd: 384, seed: 7 })
    const m = await makeRelease(seed.store, 'big', '1.0.0', file)
    await connectAll([seed, first])
    await fetchRelease(first.store, m.chunks)
    await connectAll([seed, first, ...rest])
    const total = releaseBlocks(m.chunks).length
    let stopped: Promise<void> | null = null
    const installers = await Promise.all(rest.map(installerFor))
    const progress = new Map<number, number>()
    const results = installers.map((inst, k) =>
      fetchRelease(rest[k].store, m.chunks, {
        onProgress: (p) => {
          progress.set(k, p.blocksHave)
          const sum = [...progress.values()].reduce((a, b) => a + b, 0)
          if (stopped === null && sum >= (total * rest.length) / 2) stopped = seed.stop()
        },
      }).then(() => inst.prestage(m)),
    )
    const paths = await Promise.all(results)
    assert.ok(stopped !== null, 'the seed was stopped during the transfer')
    await stopped
    const want = await readFile(file)
    for (const p of paths) assert.deepEqual(await readFile(p), want)
  })

  test('a peer serving corrupted blocks: nothing corrupt is stored, completes from an honest peer', async () => {
    const seed = await startPeer('seed3')
    const evil = await startPeer('evil')
    const victim = await startPeer('victim')
    peers.push(seed, evil, victim)
    const file = join(seed.dataDir, 'm.gguf')
    await writeTinyGguf(file, SHAPE)
    const m: ReleaseManifest = await makeRelease(seed.store, 'tiny', '1.0.0', file)
    await connectAll([seed, evil])
    await fetchRelease(evil.store, m.chunks)
    await seed.libp2p.hangUp(evil.libp2p.peerId)
    // evil: flip a byte in every block it sends
    let corrupted = 0
    const core = await evil.store.feed(m.chunks.feed)
    const patch = (peer: { wireData: { send: (msg: { block?: { value: Buffer } | null }) => void } }) => {
      const send = peer.wireData.send.bind(peer.wireData)
      peer.wireData.send = (msg) => {
        if (msg.block) {
          const value = Buffer.from(msg.block.value)
          value[0] ^= 0xff
          corrupted++
          send({ ...msg, block: { ...msg.block, value } })
        } else send(msg)
      }
    }
    core.on('peer-add', patch)
    const installer = await installerFor(victim)
    await connectAll([evil, victim])
    const done = installer.prestage(m)
    for (let i = 0; i < 100 && corrupted === 0; i++) await new Promise((r) => setTimeout(r, 50))
    assert.ok(corrupted > 0, 'the evil peer served corrupted blocks')
    const vcore = await victim.store.feed(m.chunks.feed)
    for (const b of releaseBlocks(m.chunks)) assert.equal(await vcore.has(b), false, `block ${b} stored from evil`)
    // the victim names the peer that sent them
    await until(() => victim.replicator.stats().invalidBlocks > 0, 10_000, 'victim to refuse an invalid block')
    const fromEvil = victim.replicator.stats().peers[evil.libp2p.peerId.toString()]
    assert.ok(fromEvil !== undefined && fromEvil.invalidBlocks > 0, 'invalid blocks attributed to the evil peer')
    await victim.libp2p.dial(seed.libp2p.getMultiaddrs()[0])
    const path = await within(done, 60_000, 'the victim to complete from the honest seed')
    assert.deepEqual(await readFile(path), await readFile(file))
    assert.equal(victim.replicator.stats().peers[seed.libp2p.peerId.toString()]?.invalidBlocks ?? 0, 0)
  })
})
