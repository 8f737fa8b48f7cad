/** The seed's /devices routes over a real message store and verifier (fastify inject, no sockets). */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import Fastify from 'fastify'
import type { DaemonContext } from '../../node/daemon.ts'
import { silentLogger } from '../../node/logger.ts'
import { createFleetVerifier } from '../../node/mesh/fleet-verifier.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { AutoEnrollmentLedger } from '../../seed/auto-enrollments.ts'
import { deviceRoutes } from '../../seed/device-routes.ts'
import { makeFleet } from '../mesh/fixtures.ts'

const CAPS = { arch: 'x64', ram_mb: 2048, device_type: 'test' } as const
const peer = async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

describe('/devices routes', () => {
  test('enroll a seen device, re-tag it (pinned), refuse unknown ones, revoke it for good', async () => {
    const fleet = makeFleet()
    const store = new MessageStore({ logger: silentLogger() }, {})
    await store.load()
    const verify = createFleetVerifier({ trust: fleet.trust, store })
    const [self, seen, never] = await Promise.all([peer(), peer(), peer()])
    const hellos = new Map([[seen, { role: 'node' as const, tags: ['lab'], capabilities: CAPS }]])
    const ctx = {
      config: { fleet: fleet.id },
      identity: { peerId: self },
      logger: silentLogger(),
      store,
      mesh: { state: 'running', antiEntropy: { hellos }, peers: () => [seen] },
      publish: async (bytes: Uint8Array) => {
        const r = await verify(bytes, Date.now())
        if (!r.ok) throw r.error
        store.add(r.value, bytes)
        return { status: 'accepted' }
      },
    } as unknown as DaemonContext
    const ledger = new AutoEnrollmentLedger()
    const app = Fastify()
    await app.register(deviceRoutes({ ctx, signer: fleet.signer, ledger }))
    const post = (url: string, body: unknown) => app.inject({ method: 'POST', url, payload: body as object })

    let listed = (await app.inject({ url: '/devices' })).json().devices
    assert.deepEqual(
      listed.map((d: { id: string; state: string }) => [d.id, d.state]),
      [[seen, 'pending']],
    )

    const retagFirst = await post(`/devices/${seen}/enrollment`, { tags: ['pilot'], retag: true })
    assert.equal(retagFirst.statusCode, 403)
    assert.equal(retagFirst.json().error.code, 'ERR_NOT_ENROLLED')

    const e1 = await post(`/devices/${seen}/enrollment`, {})
    assert.equal(e1.statusCode, 201, e1.body)
    assert.deepEqual({ tags: e1.json().enrollment.tags, pinned: e1.json().pinned }, { tags: ['lab'], pinned: false })
    assert.equal(ledger.isAuto(e1.json().digest), true)

    const e2 = await post(`/devices/${seen}/enrollment`, { tags: ['pilot', 'low-ram'], retag: true })
    assert.equal(e2.statusCode, 201, e2.body)
    assert.ok(e2.json().enrollment.issued_at > e1.json().enrollment.issued_at)
    assert.deepEqual(store.enrollmentOf(seen)?.tags, ['pilot', 'low-ram'])
    const one = (await app.inject({ url: `/devices/${seen}` })).json()
    assert.deepEqual(
      { state: one.state, pinned: one.pinned, connected: one.connected },
      { state: 'enrolled', pinned: true, connected: true },
    )

    const bad = await post(`/devices/${seen}/enrollment`, { tags: ['Not A Tag'] })
    assert.equal(bad.statusCode, 400)
    const unknown = await post(`/devices/${never}/enrollment`, { tags: ['x'] })
    assert.deepEqual([unknown.statusCode, unknown.json().error.code], [400, 'ERR_UNKNOWN_DEVICE'])
    const withCaps = await post(`/devices/${never}/enrollment`, { tags: ['x'], capabilities: CAPS })
    assert.equal(withCaps.statusCode, 201, withCaps.body)

    assert.equal((await post(`/devices/${seen}/revocation`, {})).statusCode, 400, 'a reason is required')
    assert.equal((await post(`/devices/${self}/revocation`, { reason: 'x' })).statusCode, 400)
    const rev = await post(`/devices/${seen}/revocation`, { reason: 'lost' })
    assert.equal(rev.statusCode, 201, rev.body)
    assert.equal(store.enrollmentOf(seen), undefined)
    assert.equal((await post(`/devices/${seen}/revocation`, { reason: 'again' })).statusCode, 409)
    assert.equal((await post(`/devices/${seen}/enrollment`, { tags: ['x'] })).statusCode, 409)
    listed = (await app.inject({ url: '/devices' })).json().devices
    assert.equal(listed.find((d: { id: string }) => d.id === seen).revoked.reason, 'lost')
    await app.close()
  })
})
