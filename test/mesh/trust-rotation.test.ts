/**
 * Operator key rotation across the mesh: a device holding the old fleet directory adopts the new
 * root only through a valid rotation (old and new keys' signatures), then accepts messages signed
 * by the new key; a rotation signed by a foreign key alone changes nothing.
 */
import assert from 'node:assert/strict'
import { cp, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { Daemon } from '../../node/daemon.ts'
import { initFleet, loadFleet, rotateFleetKey } from '../../node/fleet/index.ts'
import { silentLogger } from '../../node/logger.ts'
import {
  createOperatorSigner,
  generateOperatorKey,
  nextTrustRoot,
  type OperatorCommand,
  signOperatorMessage,
  signTrustRoot,
} from '../../protocols/index.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { tempDir, waitFor } from './fixtures.ts'

function pause(fleet: string, now: number): OperatorCommand {
  return {
    type: 'OperatorCommand',
    v: 1,
    fleet,
    action: 'pause',
    model: 'tiny',
    version: '1.0.0',
    id: `${now.toString(16)}aaaaaaaaaaaaaaaa`.slice(0, 16),
    issued_at: now,
  }
}

describe('trust root rotation over the mesh', () => {
  const cleanups: Array<() => Promise<void>> = []
  const daemons: Daemon[] = []
  after(async () => {
    for (const d of daemons) await d.stop()
    for (const c of cleanups) await c()
  })

  test('a device with the old fleet directory rotates through anti-entropy; a foreign rotation is refused', async () => {
    const dirs = await Promise.all([tempDir(), tempDir(), tempDir(), tempDir()])
    for (const d of dirs) cleanups.push(d.cleanup)
    const [seedFleetDir, deviceFleetDir, seedData, deviceData] = dirs.map((d) => d.dir)
    await initFleet(seedFleetDir, { fleetId: 'rot-fleet' })
    // The device keeps a copy of the fleet directory as it was before the rotation (no operator key).
    await cp(join(seedFleetDir, 'trust-root.json'), join(deviceFleetDir, 'trust-root.json'))
    await cp(join(seedFleetDir, 'swarm.key'), join(deviceFleetDir, 'swarm.key'))
    const rotated = await rotateFleetKey(seedFleetDir)
    assert.equal(rotated.root.version, 2)
    const old = await loadFleet(deviceFleetDir)
    assert.equal(old.root.version, 1)

    const common = { listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', mdns: false, logger: silentLogger() }
    const seed = createSeedDaemon({
      ...common,
      fleet: { id: rotated.root.fleet, psk: rotated.swarmKey, trust: rotated.root, chain: rotated.chain },
      dataDir: seedData,
      signer: rotated.operatorSigner!,
    })
    daemons.push(seed)
    await seed.start()
    const device = new Daemon({
      ...common,
      fleet: { id: old.root.fleet, psk: old.swarmKey, trust: old.root, chain: old.chain },
      dataDir: deviceData,
      bootstrap: [seed.context.mesh.multiaddrs()[0]],
    })
    daemons.push(device)
    // the device starts from root v1 (`old`, asserted above); it may have adopted v2 before start()
    // returns (its first anti-entropy round runs during start), so only the adoption is awaited
    await device.start()

    await waitFor(() => device.context.trust().version === 2, 20_000, 'device adopts root v2')
    assert.deepEqual(
      device.context.trust().keys.map((k) => k.keyid),
      rotated.root.keys.map((k) => k.keyid),
    )

    // A command signed with the NEW key is accepted by the device.
    const cmd = await signOperatorMessage(pause('rot-fleet', Date.now()), rotated.operatorSigner!)
    await seed.context.publish(cmd)
    await waitFor(() => device.context.store.list('OperatorCommand').length === 1, 20_000, 'command reaches device')

    // A v3 signed only by a foreign key (not by the v2 key) is refused and changes nothing.
    const foreign = createOperatorSigner(generateOperatorKey().privateKeyPem)
    const forged = nextTrustRoot(device.context.trust(), [foreign.key], Date.now())
    const [env] = await signTrustRoot(forged, [foreign])
    await assert.rejects(device.context.publish(env), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_THRESHOLD')
      return true
    })
    assert.equal(device.context.trust().version, 2)

    // A v3 signed by the current (v2) key but NOT by its own new key is not adopted either: a stolen
    // operator key alone cannot hand the fleet to a key nobody controls (TUF signs with both).
    const nobody = createOperatorSigner(generateOperatorKey().privateKeyPem)
    const unsigned = nextTrustRoot(device.context.trust(), [nobody.key], Date.now())
    const [oldOnly] = await signTrustRoot(unsigned, [rotated.operatorSigner!])
    await assert.rejects(device.context.publish(oldOnly), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_THRESHOLD')
      return true
    })
    assert.equal(device.context.trust().version, 2)

    // The retired v1 key no longer signs anything the device accepts.
    const retired = createOperatorSigner(await readFile(join(seedFleetDir, 'operator.key.1'), 'utf8'))
    assert.equal(retired.keyid, old.root.keys[0].keyid)
    const stale = await signOperatorMessage(pause('rot-fleet', Date.now() + 1), retired)
    await assert.rejects(device.context.publish(stale), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_UNKNOWN_SIGNER')
      return true
    })
  })
})
