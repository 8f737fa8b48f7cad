import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { assignStages, cohortPosition, cohortSize } from '../../protocols/rollout/cohorts.ts'
import type { RolloutPolicy } from '../../protocols/schemas/policy.ts'
import { peer, policy } from './rollout-fixtures.ts'

const REL = { model: 'm', version: '2.0.0' }

const stagesArb = fc
  .array(fc.record({ percent: fc.integer({ min: 0, max: 100 }), min: fc.integer({ min: 0, max: 8 }) }), {
    minLength: 1,
    maxLength: 5,
  })
  .map((xs) => {
    const sorted = xs.map((x) => x.percent).sort((a, b) => a - b)
    sorted[sorted.length - 1] = 100
    return sorted.map((p, i) => ({
      name: `s${i}`,
      percent: p,
      min_devices: xs[i].min,
      tags: i === 0 ? ['pilot'] : [],
      window_ms: 0,
    }))
  })

const fleetArb = fc.uniqueArray(
  fc.record({ n: fc.integer({ min: 0, max: 10_000 }), pilot: fc.boolean(), lowram: fc.boolean() }),
  { maxLength: 40, selector: (d) => d.n },
)

function devicesOf(fleet: Array<{ n: number; pilot: boolean; lowram: boolean }>) {
  return fleet.map((d) => ({
    id: peer(d.n),
    tags: [...(d.pilot ? ['pilot'] : []), ...(d.lowram ? ['low-ram'] : [])],
  }))
}

describe('cohorts', () => {
  test('positions are in [0,1), deterministic and release-specific', () => {
    const a = cohortPosition(REL, peer(1))
    assert.ok(a >= 0 && a < 1)
    assert.equal(cohortPosition(REL, peer(1)), a)
    assert.notEqual(cohortPosition({ model: 'm', version: '3.0.0' }, peer(1)), a)
  })

  test('nesting, exclusion, min_devices, last stage = every eligible device', () => {
    fc.assert(
      fc.property(stagesArb, fleetArb, (stages, fleet) => {
        const p: RolloutPolicy = policy({ stages })
        const devices = devicesOf(fleet)
        const a = assignStages(p, REL, devices)
        const eligible = devices.filter((d) => !d.tags.includes('low-ram'))
        const eligibleIds = new Set(eligible.map((d) => d.id))
        for (const d of devices) {
          const k = a.get(d.id)
          if (!eligibleIds.has(d.id)) assert.equal(k, null)
          else assert.ok(typeof k === 'number' && k < stages.length)
          if (eligibleIds.has(d.id) && d.tags.includes('pilot')) assert.equal(k, 0)
        }
        stages.forEach((s, k) => {
          const size = cohortSize(a, k)
          assert.ok(size >= Math.min(s.min_devices, eligibleIds.size), 'min_devices holds')
          if (k > 0) assert.ok(size >= cohortSize(a, k - 1), 'nested')
        })
        assert.equal(cohortSize(a, stages.length - 1), eligibleIds.size)
      }),
      { numRuns: 300 },
    )
  })

  test('determinism: device order and duplicates do not matter', () => {
    fc.assert(
      fc.property(stagesArb, fleetArb, fc.integer(), (stages, fleet, seed) => {
        const p = policy({ stages })
        const devices = devicesOf(fleet)
        const shuffled = [...devices, ...devices.slice(0, 3)].sort(
          (x, y) => ((x.id.charCodeAt(9) * seed) % 7) - ((y.id.charCodeAt(9) * seed) % 7),
        )
        const a = assignStages(p, REL, devices)
        const b = assignStages(p, REL, shuffled)
        assert.deepEqual(new Map([...a].sort()), new Map([...b].sort()))
      }),
      { numRuns: 100 },
    )
  })

  test('monotone in percent: raising a stage percent never removes a device from that stage', () => {
    fc.assert(
      fc.property(stagesArb, fleetArb, fc.nat(), fc.integer({ min: 1, max: 100 }), (stages, fleet, pick, bump) => {
        const k = pick % stages.length
        const devices = devicesOf(fleet)
        const raised = stages.map((s, i) => (i === k ? { ...s, percent: Math.min(100, s.percent + bump) } : s))
        const before = assignStages(policy({ stages }), REL, devices)
        const after = assignStages(policy({ stages: raised }), REL, devices)
        for (const [id, st] of before) {
          if (st !== null && st <= k) assert.ok((after.get(id) ?? 99) <= k, `${id} left stage ${k}`)
        }
      }),
      { numRuns: 300 },
    )
  })

  test('tiny fleet: canary 5 % of 5 devices holds exactly min_devices', () => {
    const p = policy({
      stages: [
        { name: 'canary', percent: 5, min_devices: 1, tags: [], window_ms: 0 },
        { name: 'half', percent: 50, min_devices: 2, tags: [], window_ms: 0 },
        { name: 'full', percent: 100, min_devices: 0, tags: [], window_ms: 0 },
      ],
    })
    const devices = [1, 2, 3, 4, 5].map((n) => ({ id: peer(n), tags: [] }))
    const a = assignStages(p, REL, devices)
    assert.ok(cohortSize(a, 0) >= 1)
    const lowest = devices.map((d) => d.id).sort((x, y) => cohortPosition(REL, x) - cohortPosition(REL, y))[0]
    assert.equal(a.get(lowest), 0)
    assert.ok(cohortSize(a, 1) >= 2)
    assert.equal(cohortSize(a, 2), 5)
  })
})

describe('seeds', () => {
  test('a device enrolled with the seed tag is never in a cohort, even when a policy forgets it', () => {
    const devices = [
      { id: peer(1), tags: ['seed'] },
      { id: peer(2), tags: ['pilot'] },
      { id: peer(3), tags: [] },
    ]
    const p = policy({ exclude_tags: [] })
    const a = assignStages(p, REL, devices)
    assert.equal(a.get(peer(1)), null)
    assert.notEqual(a.get(peer(3)), null)
    assert.equal(cohortSize(a, p.stages.length - 1), 2)
  })
})

describe('stages[].sites', () => {
  const stage = (name: string, percent: number, over: Partial<RolloutPolicy['stages'][number]> = {}) => ({
    name,
    percent,
    min_devices: 0,
    tags: [],
    window_ms: 0,
    ...over,
  })
  // 8 devices at site a, 8 at site b, 4 with no site (one of them a pilot); two at a are pilots
  const devices = Array.from({ length: 20 }, (_, i) => ({
    id: peer(100 + i),
    tags: [
      ...(i < 8 ? ['site:a'] : i < 16 ? ['site:b'] : []),
      ...(i === 0 || i === 1 || i === 16 ? ['pilot'] : []),
      ...(i === 2 ? ['zone:x'] : []),
    ],
  }))
  const site = (id: string) => devices.find((d) => d.id === id)?.tags.find((t) => t.startsWith('site:')) ?? null

  test('a stage limited to a site adds only that site: by percent, by tag and by the min_devices fill', () => {
    const p = policy({
      stages: [
        stage('pilot-a', 0, { tags: ['pilot'], sites: ['a'] }),
        stage('fill-a', 0, { min_devices: 5, sites: ['a'] }),
        stage('a', 100, { sites: ['a'] }),
        stage('full', 100),
      ],
    })
    const a = assignStages(p, REL, devices)
    // the no-site pilot (16) is not in the site-limited pilot stage: it joins at `full`
    assert.deepEqual(
      devices.filter((d) => a.get(d.id) === 0).map((d) => d.id),
      [peer(100), peer(101)],
    )
    assert.equal(a.get(peer(116)), 3)
    assert.equal(cohortSize(a, 1), 5, 'the fill took site a devices only')
    for (const [id, k] of a) if (k !== null && k <= 2) assert.equal(site(id), 'site:a')
    assert.equal(cohortSize(a, 2), 8, 'percent 100 of site a is all of site a, and only it')
    assert.equal(cohortSize(a, 3), 20, 'the unlimited last stage takes everyone, devices with no site too')
  })

  test('percent is a share of the listed sites; several sites; no site never matches a limited stage', () => {
    const many = Array.from({ length: 400 }, (_, i) => ({
      id: peer(1000 + i),
      tags: i % 4 === 0 ? [] : [`site:s${i % 4}`],
    }))
    const p = policy({ stages: [stage('half', 50, { sites: ['s1', 's2'] }), stage('full', 100)] })
    const a = assignStages(p, REL, many)
    const first = many.filter((d) => a.get(d.id) === 0)
    assert.ok(first.every((d) => d.tags[0] === 'site:s1' || d.tags[0] === 'site:s2'))
    // 200 devices at s1 and s2: half of them by position, give or take the hash's spread
    assert.ok(first.length > 70 && first.length < 130, `${first.length}`)
    assert.equal(cohortSize(a, 1), 400)
  })

  test('site-limited stages keep nesting and a site-only release leaves other devices out', () => {
    fc.assert(
      fc.property(stagesArb, fleetArb, fc.array(fc.constantFrom('a', 'b'), { maxLength: 5 }), (stages, fleet, pick) => {
        const limited: RolloutPolicy['stages'] = stages.map((s, i) =>
          pick[i] === undefined ? s : { ...s, sites: [pick[i]] },
        )
        const devices = devicesOf(fleet).map((d, i) => ({
          ...d,
          tags: [...d.tags, ...(i % 3 === 0 ? [] : [i % 3 === 1 ? 'site:a' : 'site:b'])],
        }))
        const a = assignStages(policy({ stages: limited }), REL, devices)
        limited.forEach((s, k) => {
          if (k > 0) assert.ok(cohortSize(a, k) >= cohortSize(a, k - 1), 'nested')
          for (const d of devices) {
            if (a.get(d.id) !== k || s.sites === undefined) continue
            assert.ok(d.tags.includes(`site:${s.sites[0]}`), `${d.id} joined ${s.name} from another site`)
          }
        })
      }),
      { numRuns: 200 },
    )
    const only = assignStages(policy({ stages: [stage('a', 100, { sites: ['a'] })] }), REL, devices)
    assert.equal(cohortSize(only, 0), 8)
    assert.equal(only.get(peer(119)), null, 'a device with no site takes no part')
    assert.equal(only.get(peer(110)), null, 'a device of site b takes no part')
  })
})
