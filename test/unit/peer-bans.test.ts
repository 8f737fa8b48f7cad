/**
 * Peer bans (node/mesh/peer-bans.ts), pure: who is banned, for how long, what a check does with a
 * peer whose score cannot be read, and the bound on remembered peers. The real flooder on loopback
 * is in test/mesh/gossip-budget.test.ts.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { silentLogger } from '../../node/logger.ts'
import { eitherGater, PeerBans } from '../../node/mesh/peer-bans.ts'

function bed(scores: Record<string, number>, init = {}) {
  let now = 1_000_000
  const hungUp: string[] = []
  const bans = new PeerBans(
    {
      connected: () => Object.keys(scores),
      scoreOf: (p) => {
        if (p === 'broken') throw new Error('no score')
        return scores[p]
      },
      hangUp: (p) => hungUp.push(p),
      logger: silentLogger(),
      now: () => now,
    },
    { banMs: 1000, maxBanMs: 3000, ...init },
  )
  return { bans, hungUp, scores, tick: (ms: number) => (now += ms), now: () => now }
}

test('a peer under the threshold is banned and hung up; others are not; a broken score stops no check', () => {
  const b = bed({ broken: 0, flooder: -500, honest: 3, edge: -80 })
  b.bans.check()
  assert.deepEqual(b.hungUp, ['flooder'])
  assert.ok(b.bans.isBanned('flooder'))
  assert.ok(!b.bans.isBanned('honest') && !b.bans.isBanned('edge'), 'the threshold itself is not under it')
  assert.equal(b.bans.bans, 1)
  b.bans.check()
  assert.equal(b.bans.bans, 1, 'still banned: no second ban while connected')
  assert.deepEqual(b.hungUp, ['flooder', 'flooder'], 'but hung up again')
})

test('a ban ends; a repeat ban lasts twice as long, up to the most', () => {
  const b = bed({ flooder: -500 })
  const lengths: number[] = []
  for (let i = 0; i < 4; i++) {
    b.bans.check()
    const until = b.bans.active()[0]?.until ?? 0
    lengths.push(until - b.now())
    b.tick(until - b.now())
    assert.ok(!b.bans.isBanned('flooder'), 'the ban ended')
  }
  assert.deepEqual(lengths, [1000, 2000, 3000, 3000])
  assert.equal(b.bans.bans, 4)
})

test('the gater refuses a banned peer only, and counts it; eitherGater refuses what any refuses', async () => {
  const b = bed({ flooder: -500 })
  b.bans.check()
  const id = (s: string) => ({ toString: () => s }) as never
  const g = eitherGater(b.bans.gater(), { denyDialPeer: (p) => p.toString() === 'revoked' })
  assert.equal(await g.denyDialPeer?.(id('flooder')), true)
  assert.equal(await g.denyDialPeer?.(id('revoked')), true)
  assert.equal(await g.denyDialPeer?.(id('honest')), false)
  assert.equal(await g.denyInboundEncryptedConnection?.(id('flooder'), undefined as never), true)
  assert.equal(b.bans.refused, 1 + 2, 'one hang-up, two refusals')
})

test('memory is bounded: the oldest ban is forgotten first', () => {
  const scores = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`p${i}`, -100]))
  const b = bed(scores, { maxPeers: 4 })
  b.bans.check()
  assert.equal(b.bans.bans, 10)
  assert.deepEqual(
    b.bans.active().map((x) => x.peer),
    ['p6', 'p7', 'p8', 'p9'],
  )
})
