import assert from 'node:assert/strict'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { NodeStatus } from '../../node/api/status.ts'
import { Daemon, type DaemonContext, type Service } from '../../node/daemon.ts'
import { loadOrCreateIdentity } from '../../node/identity.ts'
import { silentLogger } from '../../node/logger.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { command, makeFleet, tempDir, waitFor } from './fixtures.ts'

describe('identity', () => {
  test('is created once with mode 0600 and survives restarts', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      const a = await loadOrCreateIdentity(dir)
      const b = await loadOrCreateIdentity(dir)
      assert.equal(a.created, true)
      assert.equal(b.created, false)
      assert.equal(a.peerId, b.peerId)
      assert.match(a.peerId, /^12D3Koo/)
      assert.equal((await stat(join(dir, 'identity.key'))).mode & 0o777, 0o600)
    } finally {
      await cleanup()
    }
  })
})

describe('daemon', () => {
  const fleet = makeFleet()
  const dirs: Array<() => Promise<void>> = []
  const daemons: Daemon[] = []
  let seed: Daemon
  let node: Daemon
  let nodeDir: string
  const events: string[] = []

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
    const n = await tempDir()
    dirs.push(s.cleanup, n.cleanup)
    nodeDir = n.dir
    seed = createSeedDaemon({ ...opts(s.dir), signer: fleet.signer, tags: ['seed'] })
    await seed.start()
    const svc = (ctx: DaemonContext): Service => ({
      start: async () => {
        ctx.store.on('command', (m) => events.push(`command:${m.message.action}`))
        ctx.status.setModels(() => ({ tiny: { active: '1.0.0', previous: null, staged: [] } }))
        ctx.status.addSection('extra', () => ({ hello: 'world' }))
        events.push('started')
      },
      stop: async () => {
        events.push('stopped')
      },
    })
    node = new Daemon({
      ...opts(n.dir),
      tags: ['lab', 'pi'],
      bootstrap: [seed.context.mesh.multiaddrs()[0]],
      services: [svc],
      routes: [
        () => async (app) => {
          app.get('/ping', async () => ({ pong: true }))
        },
      ],
    })
    daemons.push(node, seed)
    await node.start()
  })

  after(async () => {
    for (const d of daemons) await d.stop()
    for (const c of dirs) await c()
  })

  test('start is idempotent and writes node.json', async () => {
    await node.start()
    const info = JSON.parse(await readFile(join(nodeDir, 'node.json'), 'utf8'))
    assert.equal(info.peerId, node.context.identity.peerId)
    assert.equal(info.api, node.apiUrl)
    assert.ok(info.multiaddrs[0].includes('/p2p/'))
    assert.deepEqual(events, ['started'])
  })

  test('/status has device, peers, releases, models and the node is auto-enrolled by the seed', async () => {
    await waitFor(
      async () => {
        const s = (await (await fetch(`${node.apiUrl}/status`)).json()) as NodeStatus
        return s.device.enrolled
      },
      15_000,
      'auto-enrolment',
    )
    const s = (await (await fetch(`${node.apiUrl}/status`)).json()) as NodeStatus
    assert.equal(s.device.id, node.context.identity.peerId)
    assert.deepEqual(s.device.tags, ['lab', 'pi'])
    assert.deepEqual(s.peers, [seed.context.identity.peerId])
    assert.deepEqual(s.releases, [])
    assert.deepEqual(s.models, { tiny: { active: '1.0.0', previous: null, staged: [] } })
    assert.deepEqual(s.extra, { hello: 'world' })
    const me = s.devices.find((d) => d.id === s.device.id)
    assert.equal(me?.enrolled, true)
    assert.deepEqual(me?.tags, ['lab', 'pi'])
    assert.equal(s.devices.find((d) => d.id === seed.context.identity.peerId)?.enrolled, true)
    assert.deepEqual(await (await fetch(`${node.apiUrl}/ping`)).json(), { pong: true })
  })

  test('services get typed events; a restart keeps identity and messages', async () => {
    await seed.context.publish(await command(fleet))
    await waitFor(() => events.includes('command:pause'), 10_000, 'command event')
    const id = node.context.identity.peerId
    const known = node.context.store.size
    await node.stop()
    await node.stop()
    assert.deepEqual(events.slice(-1), ['stopped'])
    await assert.rejects(readFile(join(nodeDir, 'node.json')))
    await node.start()
    assert.equal(node.context.identity.peerId, id)
    assert.ok(node.context.store.size >= known)
    assert.ok(node.context.store.isEnrolled(id))
  })
})

describe('daemon stop', () => {
  test('a service whose stop never settles is named in `stuck` and the services started before it still stop', async (t) => {
    const fleet = makeFleet()
    const dir = await tempDir()
    t.after(dir.cleanup)
    const order: string[] = []
    const named = (name: string, stop: () => Promise<void>) => (): Service & { name: string } => ({
      name,
      start: async () => {},
      stop: async () => {
        order.push(name)
        await stop()
      },
    })
    const d = new Daemon({
      fleet: { id: fleet.id, psk: fleet.psk, trust: fleet.trust },
      dataDir: dir.dir,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      api: '127.0.0.1:0',
      mdns: false,
      logger: silentLogger(),
      serviceStopTimeoutMs: 300,
      services: [
        named('first', async () => {}),
        named('hangs', () => new Promise<void>(() => {})),
        named('throws', async () => {
          throw new Error('boom')
        }),
      ],
    })
    await d.start()
    const t0 = Date.now()
    await d.stop()
    assert.ok(Date.now() - t0 < 10_000, `stop took ${Date.now() - t0} ms`)
    assert.deepEqual(order, ['throws', 'hangs', 'first'])
    assert.deepEqual(d.stuck, ['hangs'])
    assert.equal(d.state, 'stopped')
    // the mesh (started before every extra service) stopped too: its node.json is gone
    await assert.rejects(readFile(join(dir.dir, 'node.json')))
  })
})
