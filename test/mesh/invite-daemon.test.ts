/**
 * Enrollment by invitation through the daemons and the CLI: `llmesh device invite` through the
 * seed's API, a device started with the invite is enrolled on every node; with the seed stopped, a
 * second invited device is still enrolled everywhere; a device without an invite stays pending
 * (listed with its declared tags, no enrollment), an expired invite refuses the start, and
 * `llmesh device approve` enrolls the pending device with the operator's tags.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { Daemon, type DaemonInit } from '../../node/daemon.ts'
import { silentLogger } from '../../node/logger.ts'
import { createInvite } from '../../protocols/membership/index.ts'
import type { DeviceView } from '../../seed/devices.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { cli, parseTable, scaled } from '../helpers/index.ts'
import { makeFleet, tempDir, waitFor } from './fixtures.ts'

describe('invites through the daemons and the CLI', { timeout: scaled(180_000) }, () => {
  const fleet = makeFleet()
  fleet.trust = { ...fleet.trust, auto_enroll: false }
  const cleanups: Array<() => Promise<void>> = []
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {})
  })
  const base = async (name: string, bootstrap: string[] = []): Promise<DaemonInit> => {
    const t = await tempDir(`llmesh-invite-${name}-`)
    cleanups.push(t.cleanup)
    return {
      fleet: { id: fleet.id, psk: fleet.psk, trust: fleet.trust },
      dataDir: t.dir,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      api: '127.0.0.1:0',
      mdns: false,
      bootstrap,
      antiEntropy: { intervalMs: 1000 },
      logger: silentLogger(),
    }
  }
  const device = async (name: string, init: Partial<DaemonInit>, bootstrap: string[]) => {
    const d = new Daemon({ ...(await base(name, bootstrap)), ...init })
    await d.start()
    cleanups.push(() => d.stop())
    return d
  }
  const addr = (d: Daemon) => d.context.mesh.multiaddrs()[0]

  test('invite, seed offline, pending, expired invite, approve', async () => {
    const seedInit = await base('seed')
    let seed = createSeedDaemon({ ...seedInit, tags: ['seed'], signer: fleet.signer })
    await seed.start()
    const seedApi = String(seed.apiUrl)
    const out = join(seedInit.dataDir, 'a.invite')
    const made = await cli([
      'device',
      'invite',
      '--tags',
      'pilot',
      '--name',
      'shop-1',
      '--out',
      out,
      '--api',
      seedApi,
      '--json',
    ])
    assert.equal(made.code, 0, made.stderr)
    const a = await device('a', { tags: ['whatever'], invite: await readFile(out, 'utf8') }, [addr(seed)])
    await waitFor(
      () => [seed, a].every((n) => n.context.store.isEnrolled(a.context.identity.peerId)),
      20_000,
      'a enrolled',
    )
    assert.deepEqual(
      seed.context.store.enrollmentOf(a.context.identity.peerId)?.tags,
      ['pilot'],
      'the invite’s tags, not the declared ones',
    )

    // the seed goes offline; an invite signed offline by the operator still enrolls b everywhere
    await seed.stop()
    const { file } = await createInvite(
      { fleet: fleet.id, tags: ['canary'], ttlMs: 60_000, now: Date.now() },
      fleet.signer,
    )
    const b = await device('b', { invite: JSON.stringify(file) }, [addr(a)])
    const bId = b.context.identity.peerId
    await waitFor(
      () => [a, b].every((n) => n.context.store.enrollmentOf(bId)?.tags.join() === 'canary'),
      20_000,
      'b enrolled without the seed',
    )

    // an expired invite refuses the start
    const old = await createInvite({ fleet: fleet.id, ttlMs: 1000, now: Date.now() - 10_000 }, fleet.signer)
    const expired = new Daemon({ ...(await base('x', [addr(a)])), invite: JSON.stringify(old.file) })
    await assert.rejects(expired.start(), { code: 'ERR_EXPIRED' })

    // c has no invite and declares pilot: pending everywhere, listed with what it declares
    const c = await device('c', { tags: ['pilot'] }, [addr(a), addr(b)])
    const cId = c.context.identity.peerId
    seed = createSeedDaemon({ ...seedInit, api: new URL(seedApi).host, tags: ['seed'], signer: fleet.signer })
    await seed.start()
    cleanups.push(() => seed.stop())
    await seed.context.mesh.dial(addr(c))
    const listed = async () => {
      const r = await cli(['device', 'list', '--api', seedApi, '--json'])
      assert.equal(r.code, 0, r.stderr)
      return (JSON.parse(r.stdout) as { devices: DeviceView[] }).devices.find((d) => d.id === cId)
    }
    await waitFor(async () => (await listed())?.declared_tags?.join() === 'pilot', 20_000, 'c seen by the seed')
    const view = await listed()
    assert.deepEqual({ membership: view?.membership, tags: view?.tags }, { membership: 'pending', tags: [] })
    for (const n of [seed, a, b, c]) assert.equal(n.context.store.membershipOf(cId).membership, 'pending')
    // the dashboard shows it pending, with what it declares apart from its (empty) tags
    const dash = (await (await fetch(`${seedApi}/dashboard/fleet`)).json()) as {
      devices: Array<{ id: string; membership: string; tags: string[]; declared_tags: string[] | null }>
    }
    const row = dash.devices.find((d) => d.id === cId)
    assert.deepEqual(
      { membership: row?.membership, tags: row?.tags, declared: row?.declared_tags },
      { membership: 'pending', tags: [], declared: ['pilot'] },
    )
    const human = await cli(['device', 'list', '--api', seedApi])
    const printed = parseTable(human.stdout).find((r) => r.device === cId)
    assert.deepEqual(
      { state: printed?.state, declared: printed?.declared },
      { state: 'pending', declared: 'pilot' },
      human.stdout,
    )

    // the operator approves c with its own choice of tags
    const ok = await cli(['device', 'approve', cId, '--tags', 'lab', '--api', seedApi, '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    await waitFor(
      () => [seed, a, b, c].every((n) => n.context.store.enrollmentOf(cId)?.tags.join() === 'lab'),
      20_000,
      'c approved everywhere',
    )
  })
})
