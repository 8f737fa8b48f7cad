/**
 * Release bundles between two groups of nodes that never connect (issue #13, items 1–2), on
 * loopback with real daemons: site A (a seed and a device) publishes a release; the release is
 * exported from A's DEVICE with `llmesh release export`; site B (three devices of the same fleet
 * and swarm key, no seed, no operator key, dialling only each other) imports it through one of
 * its devices with `llmesh release import`, and every device of B activates it under its policy,
 * the other two fetching the blocks from the importer. A copy with one byte flipped in one chunk
 * file is refused first, naming the file and the reason, and changes nothing at B.
 */
import assert from 'node:assert/strict'
import { cp, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Daemon } from '../../node/daemon.ts'
import { type DeviceParts, deviceServices } from '../../node/device-services.ts'
import { silentLogger } from '../../node/logger.ts'
import { cli, scaled } from '../helpers/index.ts'
import { enrollment, makeFleet, tempDir } from './fixtures.ts'
import { ONE_STAGE, publish, type RolloutFleet, startRolloutFleet, waitAllServing, waitFor } from './rollout-helpers.ts'

interface SiteDevice {
  daemon: Daemon
  parts: DeviceParts
}

describe('a release carried on removable media to a site with no seed', () => {
  const fleet = makeFleet('bundle-mesh')
  let a: RolloutFleet
  const b: SiteDevice[] = []
  let tmp: { dir: string; cleanup: () => Promise<void> }

  before(async () => {
    tmp = await tempDir('llmesh-bundle-mesh-')
    a = await startRolloutFleet([['site-a']], fleet)
    // site B: devices of the same fleet that dial only each other
    for (let i = 0; i < 3; i++) {
      const dc = deviceServices({
        supervisor: { threads: 1 },
        rollout: { startupCatchUpMs: 3000, decideIntervalMs: 250 },
      })
      const daemon = new Daemon({
        fleet: { id: fleet.id, psk: fleet.psk, trust: fleet.trust },
        dataDir: join(tmp.dir, `b${i}`),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        api: '127.0.0.1:0',
        mdns: false,
        tags: ['site-b'],
        reportIntervalMs: 400,
        antiEntropy: { intervalMs: 2000 },
        logger: silentLogger(),
        bootstrap: b.map((d) => d.daemon.context.mesh.multiaddrs()[0]),
        services: dc.services,
        routes: dc.routes,
      })
      await daemon.start()
      b.push({ daemon, parts: dc.parts })
    }
    // B's devices were enrolled when they were installed (the operator's signed enrollments, carried
    // like any message); B holds no operator key and never sees A
    for (const d of b) await b[0]?.daemon.context.publish(await enrollment(fleet, d.daemon.context.identity.peerId))
    await waitFor(
      () => b.every((n) => b.every((d) => n.daemon.context.store.isEnrolled(d.daemon.context.identity.peerId))),
      scaled(30_000),
      'site B enrolled',
    )
  })

  after(async () => {
    for (const d of b.reverse()) await d.daemon.stop().catch(() => {})
    await a?.stop()
    await tmp?.cleanup()
  })

  test('exported from a device of A, imported at B: a tampered copy is refused, the bundle activates on all of B', async () => {
    await publish(a, '1.0.0', ONE_STAGE)
    await waitAllServing(a, '1.0.0', scaled(60_000))
    const device = a.devices[0]?.daemon.apiUrl as string
    const out = join(tmp.dir, 'stick', 'tiny-1.0.0')
    const t0 = Date.now()
    const ex = await cli(['release', 'export', 'tiny@1.0.0', '--out', out, '--api', device])
    assert.equal(ex.code, 0, ex.stderr)
    assert.match(ex.stderr, /exported \d+\/\d+ chunks/)
    const exportMs = Date.now() - t0
    const chunks = await readdir(join(out, 'chunks'))
    assert.ok(chunks.length > 1)

    // one byte flipped in one chunk file: refused naming it, nothing stored at B
    const bad = join(tmp.dir, 'stick', 'tampered')
    await cp(out, bad, { recursive: true })
    const victim = join(bad, 'chunks', chunks[0] as string)
    const bytes = await readFile(victim)
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0x40
    await writeFile(victim, bytes)
    const importer = b[0]?.daemon.apiUrl as string
    const refused = await cli(['release', 'import', bad, '--api', importer, '--json'])
    assert.equal(refused.code, 4, refused.stderr)
    assert.match(refused.stderr, /ERR_BUNDLE_CHUNK_DIGEST/)
    assert.ok(refused.stderr.includes(`chunks/${chunks[0]}`), refused.stderr)
    for (const d of b) assert.equal(d.daemon.context.store.releases().length, 0)

    const t1 = Date.now()
    const im = await cli(['release', 'import', out, '--api', importer])
    assert.equal(im.code, 0, im.stderr)
    assert.match(im.stdout, /imported tiny@1\.0\.0/)
    assert.match(im.stderr, /imported \d+\/\d+ chunks/)
    const importMs = Date.now() - t1
    await waitFor(
      async () => {
        for (const d of b) {
          if ((await d.parts.distribution?.installer.status())?.tiny?.active !== '1.0.0') return false
          if (d.parts.supervisor?.state !== 'ready' || d.parts.supervisor.model?.version !== '1.0.0') return false
        }
        return true
      },
      scaled(90_000),
      'every device of B serving 1.0.0',
    )
    // B never connected to A: the blocks came from the importer
    const aPeers = new Set([a.seed, ...a.devices.map((d) => d.daemon)].map((n) => n.context.identity.peerId))
    for (const d of b)
      for (const c of d.daemon.context.mesh.libp2p.getConnections()) assert.ok(!aPeers.has(c.remotePeer.toString()))
    console.log(`# export ${exportMs} ms, import ${importMs} ms, ${chunks.length} chunks`)
  })
})
