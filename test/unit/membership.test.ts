/**
 * Enrollment by invitation, the pure part (protocols/membership) and the claim's verification:
 * which claims win an invite (the same whatever order they arrived in), what a device's membership
 * is, the per-invite bound, and the refusals of forged, expired and misdirected claims.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import {
  type ClaimFacts,
  claimAdmissible,
  claimWinners,
  createInvite,
  createOperatorSigner,
  type DeviceEnrollment,
  type DeviceInvite,
  enrollmentsInForce,
  fromBase64,
  generateOperatorKey,
  INVITE_CLAIM_SLACK,
  type InviteClaim,
  inviteOfClaim,
  membershipOf,
  openInviteFile,
  signClaim,
  signDeviceMessage,
  type TrustRoot,
  verifyEnvelope,
} from '../../protocols/index.ts'

const CAPS = { arch: 'x64', ram_mb: 1024, device_type: 'test' } as const

function invite(id: string, uses: number, tags = ['pilot']): DeviceInvite {
  return {
    type: 'DeviceInvite',
    v: 1,
    fleet: 'f-1',
    id: id.padStart(32, '0'),
    tags,
    uses,
    public_key: `${'A'.repeat(43)}=`,
    issued_at: 0,
    expires_at: 1e12,
  }
}

function claim(device: string, inv: DeviceInvite, at: number, digest: string): ClaimFacts {
  const c: InviteClaim = {
    type: 'InviteClaim',
    v: 1,
    fleet: 'f-1',
    device,
    invite: '',
    proof: '',
    claimed_at: at,
    capabilities: CAPS,
  }
  return { digest: digest.padStart(64, '0'), claim: c, invite: inv }
}

const enr = (device: string, tags: string[], issued_at: number, expires_at?: number): DeviceEnrollment => ({
  type: 'DeviceEnrollment',
  v: 1,
  fleet: 'f-1',
  device,
  tags,
  capabilities: CAPS,
  issued_at,
  ...(expires_at === undefined ? {} : { expires_at }),
})

const winnersOf = (claims: readonly ClaimFacts[]) =>
  [...claimWinners(claims)].map(([d, c]) => `${d}:${c.digest}`).sort()

describe('invite claims: who wins', () => {
  test('a single-use invite goes to the earliest claim, ties to the lower claim id', () => {
    const inv = invite('1', 1)
    const a = claim('A', inv, 10, 'b')
    const b = claim('B', inv, 10, 'a')
    const c = claim('C', inv, 5, 'f')
    assert.deepEqual([...claimWinners([a, b]).keys()], ['B'])
    assert.deepEqual([...claimWinners([a, b, c]).keys()], ['C'])
  })

  test('an invite with uses N enrolls at most N distinct devices; a device claiming twice takes one use', () => {
    const inv = invite('2', 2)
    const claims = [claim('A', inv, 1, '1'), claim('A', inv, 2, '2'), claim('B', inv, 3, '3'), claim('C', inv, 4, '4')]
    assert.deepEqual([...claimWinners(claims).keys()].sort(), ['A', 'B'])
    assert.equal(claimWinners(claims).get('A')?.digest, '1'.padStart(64, '0'))
  })

  const claimsArb = fc
    .array(
      fc.record({
        device: fc.constantFrom('A', 'B', 'C', 'D', 'E'),
        invite: fc.constantFrom('1', '2', '3'),
        at: fc.integer({ min: 0, max: 5 }),
        digest: fc.integer({ min: 0, max: 0xffffff }).map((n) => n.toString(16)),
      }),
      { maxLength: 30 },
    )
    .map((xs) => {
      const uses: Record<string, number> = { '1': 1, '2': 2, '3': 3 }
      const seen = new Set<string>()
      return xs
        .filter((x) => {
          if (seen.has(x.digest)) return false
          seen.add(x.digest)
          return true
        })
        .map((x) => claim(x.device, invite(x.invite, uses[x.invite]), x.at, x.digest))
    })

  test('the winners depend only on the set of claims, never on their order (fast-check)', () => {
    fc.assert(
      fc.property(claimsArb, fc.func(fc.integer()), (claims, key) => {
        const shuffled = [...claims].sort((x, y) => key(x.digest) - key(y.digest) || (x.digest < y.digest ? -1 : 1))
        assert.deepEqual(winnersOf(shuffled), winnersOf(claims))
      }),
    )
  })

  test('two sides of a partition, each holding some claims, agree once they hold the union (fast-check)', () => {
    fc.assert(
      fc.property(claimsArb, fc.array(fc.boolean(), { maxLength: 30 }), (claims, side) => {
        const left = claims.filter((_, i) => side[i] ?? false)
        const right = claims.filter((_, i) => !(side[i] ?? false))
        const healedLeft = [...left, ...right]
        const healedRight = [...right, ...left]
        assert.deepEqual(winnersOf(healedLeft), winnersOf(healedRight))
        // never more devices than uses per invite
        for (const id of ['1', '2', '3']) {
          const n = [...claimWinners(healedLeft).values()].filter((c) => c.invite.id === id.padStart(32, '0')).length
          assert.ok(n <= Number(id))
        }
      }),
    )
  })

  test('the bound: a claim ranking after uses + slack held claims is not admissible; a better one is', () => {
    const inv = invite('4', 1)
    const held = Array.from({ length: 1 + INVITE_CLAIM_SLACK }, (_, i) => claim(`D${i}`, inv, 10 + i, `${i + 1}`))
    assert.equal(claimAdmissible(held, claim('late', inv, 100, 'ff')), false)
    assert.equal(claimAdmissible(held, claim('early', inv, 1, 'ff')), true)
    assert.equal(claimAdmissible(held.slice(1), claim('late', inv, 100, 'ff')), true)
  })
})

describe('membership', () => {
  const inv = invite('5', 1, ['pilot'])
  const won = claim('A', { ...inv, name: 'shop-12' }, 10, 'a')
  const lost = claim('B', inv, 11, 'b')

  test('the winner is enrolled with the invite’s tags and name; the loser and a stranger are pending', () => {
    const input = { enrollments: [], revocations: [], claims: [won, lost], now: 100 }
    const a = membershipOf('A', input)
    assert.equal(a.membership, 'enrolled')
    assert.equal(a.via, 'invite')
    assert.deepEqual(a.enrollment?.tags, ['pilot'])
    assert.equal(a.enrollment?.name, 'shop-12')
    assert.equal(membershipOf('B', input).membership, 'pending')
    assert.equal(membershipOf('Z', input).membership, 'pending')
    assert.deepEqual(
      enrollmentsInForce(input).map((e) => e.device),
      ['A'],
    )
  })

  test('an operator enrollment wins over a claim; once expired, the claim counts again; revoked is final', () => {
    const op = enr('A', ['canary'], 50)
    const base = { revocations: [], claims: [won], now: 100 }
    assert.deepEqual(membershipOf('A', { ...base, enrollments: [op] }).enrollment?.tags, ['canary'])
    const expired = enr('A', ['canary'], 50, 90)
    assert.deepEqual(membershipOf('A', { ...base, enrollments: [expired] }).enrollment?.tags, ['pilot'])
    const revoked = {
      ...base,
      enrollments: [op],
      revocations: [
        { type: 'Revocation' as const, v: 1 as const, fleet: 'f-1', device: 'A', issued_at: 60, reason: 'x' },
      ],
    }
    assert.equal(membershipOf('A', revoked).membership, 'revoked')
    assert.deepEqual(enrollmentsInForce(revoked), [])
    // a revoked winner keeps its use: the loser stays pending
    assert.equal(membershipOf('B', { ...revoked, claims: [won, lost] }).membership, 'pending')
  })
})

describe('claims on the wire', async () => {
  const opKey = generateOperatorKey()
  const signer = createOperatorSigner(opKey.privateKeyPem)
  const T0 = 1_800_000_000_000
  const trust: TrustRoot = {
    type: 'TrustRoot',
    v: 1,
    fleet: 'f-1',
    version: 1,
    keys: [opKey.key],
    threshold: 1,
    created_at: T0 - 1000,
    auto_enroll: false,
  }
  const deviceKey = await generateKeyPair('Ed25519')
  const ctx = (now: number) => ({ trust, now, deviceStatus: () => 'unknown' as const })
  const made = await createInvite({ fleet: 'f-1', tags: ['pilot'], ttlMs: 60_000, now: T0 }, signer)
  const text = JSON.stringify(made.file)

  test('an unenrolled device’s claim of a valid invite verifies, and names the invite', async () => {
    const wire = await signClaim(openInviteFile(text, trust, T0 + 1000), deviceKey, CAPS, T0 + 1000)
    const res = verifyEnvelope(wire, ctx(T0 + 1000))
    assert.ok(res.ok, res.ok ? '' : res.error.message)
    assert.equal(res.type, 'InviteClaim')
    assert.equal(inviteOfClaim(res.message as InviteClaim)?.id, made.invite.id)
    // later, on a node that hears of it after the invite expired: still valid (judged at claimed_at)
    assert.ok(verifyEnvelope(wire, ctx(T0 + 10 * 60_000)).ok)
  })

  test('an expired invite is refused: by the device at start and by every node in a claim', async () => {
    assert.throws(() => openInviteFile(text, trust, T0 + 61_000), { code: 'ERR_EXPIRED' })
    const opened = openInviteFile(text, trust, T0)
    const late = await signClaim(opened, deviceKey, CAPS, T0 + 61_000)
    const res = verifyEnvelope(late, ctx(T0 + 61_000))
    assert.equal(res.ok ? 'ok' : res.error.code, 'ERR_EXPIRED')
  })

  test('a claim without the invite key’s proof for this device is refused', async () => {
    const wire = await signClaim(openInviteFile(text, trust, T0), deviceKey, CAPS, T0 + 1000)
    const env = JSON.parse(Buffer.from(wire).toString()) as { payload: string }
    const stolen = JSON.parse(Buffer.from(fromBase64(env.payload)).toString()) as InviteClaim
    // another device copies the invite and the proof from a claim it read on the mesh
    const thief = await generateKeyPair('Ed25519')
    const forged = await signDeviceMessage({ ...stolen, device: peerIdFromPrivateKey(thief).toString() }, thief)
    const res = verifyEnvelope(forged, ctx(T0 + 1000))
    assert.equal(res.ok ? 'ok' : res.error.code, 'ERR_BAD_SIGNATURE')
  })

  test('an invite no fleet key signed, or a claim dated before its invite, is refused', async () => {
    const other = createOperatorSigner(generateOperatorKey().privateKeyPem)
    const rogue = await createInvite({ fleet: 'f-1', ttlMs: 60_000, now: T0 }, other)
    const opened = { invite: rogue.invite, wire: fromBase64(rogue.file.invite), file: rogue.file }
    const res = verifyEnvelope(await signClaim(opened, deviceKey, CAPS, T0 + 1), ctx(T0 + 1))
    assert.equal(res.ok ? 'ok' : res.error.code, 'ERR_UNKNOWN_SIGNER')
    const good = openInviteFile(text, trust, T0)
    const wire = await signClaim(good, deviceKey, CAPS, T0)
    const env = JSON.parse(Buffer.from(wire).toString()) as { payload: string }
    const c = JSON.parse(Buffer.from(fromBase64(env.payload)).toString()) as InviteClaim
    const early = await signDeviceMessage({ ...c, claimed_at: T0 - 10 * 60_000 }, deviceKey)
    const r2 = verifyEnvelope(early, ctx(T0))
    assert.equal(r2.ok ? 'ok' : r2.error.code, 'ERR_SCHEMA')
  })

  test('a revoked device’s claim is refused; an unenrolled device’s report still is', async () => {
    const wire = await signClaim(openInviteFile(text, trust, T0), deviceKey, CAPS, T0)
    const res = verifyEnvelope(wire, { trust, now: T0, deviceStatus: () => 'revoked' })
    assert.equal(res.ok ? 'ok' : res.error.code, 'ERR_REVOKED')
  })

  test('createInvite refuses silly uses and lifetimes', async () => {
    await assert.rejects(createInvite({ fleet: 'f-1', uses: 0, ttlMs: 1000, now: T0 }, signer), {
      code: 'ERR_INVALID_INPUT',
    })
    await assert.rejects(createInvite({ fleet: 'f-1', ttlMs: 0, now: T0 }, signer), { code: 'ERR_INVALID_INPUT' })
  })
})
