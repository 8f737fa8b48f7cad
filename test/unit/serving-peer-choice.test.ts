/**
 * Federated serving's pure pieces: which peers can serve a model and in what order
 * (node/serving/peer-choice.ts), and the model list through peers.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { closedCanaries } from '../../node/serving/canaries.ts'
import { choosePeers, type PeerChoiceInput, remoteModels } from '../../node/serving/peer-choice.ts'
import { parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import { type HealthReport, RolloutPolicy } from '../../protocols/schemas/index.ts'

const NOW = 1_800_000_000_000

function report(
  device: string,
  active: Array<[string, string]>,
  opts: { concurrency?: number; cpu?: number; end?: number } = {},
): HealthReport {
  return {
    type: 'HealthReport',
    v: 1,
    fleet: 'f',
    device,
    seq: 1,
    window: { start: (opts.end ?? NOW) - 60_000, end: opts.end ?? NOW },
    meta: { device_type: 'test', tags: [], runtime_version: '3', uptime_s: 1 },
    active: active.map(([model, version]) => ({ model, version })),
    hardware: { cpu_pct: opts.cpu ?? 10, ram_pct: 10, ram_total_mb: 1024 },
    inference: active.map(([model, version]) => ({
      model,
      version,
      requests: 1,
      errors: 0,
      tokens_in: 1,
      tokens_out: 1,
      concurrency_max: opts.concurrency ?? 0,
      latency_ms: { alpha: 0.01, count: 0, sum: 0, min: 0, max: 0, zero: 0, bins: [] },
    })),
    events: [],
  }
}

function input(reports: HealthReport[], over: Partial<PeerChoiceInput> = {}): PeerChoiceInput {
  return {
    model: 'tiny',
    self: 'me',
    reports: new Map(reports.map((r) => [r.device, r])),
    connected: new Set(reports.map((r) => r.device)),
    eligible: () => true,
    isCanary: () => false,
    inflight: new Map(),
    maxPerPeer: 2,
    now: NOW,
    maxAgeMs: 180_000,
    ...over,
  }
}

const peers = (i: PeerChoiceInput) => choosePeers(i).map((c) => c.peer)

test('only peers that serve the model, least loaded first, ties by CPU then peer id', () => {
  const rs = [
    report('b', [['tiny', '1.0.0']], { concurrency: 2 }),
    report('a', [['tiny', '1.0.0']], { concurrency: 0, cpu: 50 }),
    report('c', [['tiny', '1.0.0']], { concurrency: 0, cpu: 5 }),
    report('d', [['other', '1.0.0']]),
    report('e', [['tiny', '1.0.0']], { concurrency: 0, cpu: 5 }),
  ]
  assert.deepEqual(peers(input(rs)), ['c', 'e', 'a', 'b'])
  assert.equal(choosePeers(input(rs))[0].version, '1.0.0')
})

test('this node, disconnected, ineligible (not enrolled, revoked) and stale peers are never candidates', () => {
  const rs = [
    report('me', [['tiny', '1.0.0']]),
    report('gone', [['tiny', '1.0.0']]),
    report('stranger', [['tiny', '1.0.0']]),
    report('stale', [['tiny', '1.0.0']], { end: NOW - 180_001 }),
    report('ok', [['tiny', '1.0.0']]),
  ]
  const connected = new Set(['me', 'stranger', 'stale', 'ok'])
  assert.deepEqual(peers(input(rs, { connected, eligible: (p) => p !== 'stranger' })), ['ok'])
})

test('canary versions take no forwarded request unless allowed', () => {
  const rs = [report('a', [['tiny', '2.0.0']]), report('b', [['tiny', '1.0.0']], { concurrency: 3 })]
  const isCanary = (_m: string, v: string) => v === '2.0.0'
  assert.deepEqual(peers(input(rs, { isCanary })), ['b'])
  assert.deepEqual(peers(input(rs, { isCanary, allowCanary: true })), ['a', 'b'])
})

test('forwards in flight count as load, and a peer at its cap is left out', () => {
  const rs = [report('a', [['tiny', '1.0.0']]), report('b', [['tiny', '1.0.0']], { concurrency: 1 })]
  assert.deepEqual(peers(input(rs, { inflight: new Map([['a', 1]]) })), ['a', 'b'])
  assert.deepEqual(peers(input(rs, { inflight: new Map([['a', 2]]) })), ['b'])
  assert.deepEqual(peers(input(rs, { inflight: new Map([['a', 2]]), maxPerPeer: 3 })), ['b', 'a'])
})

test('models through peers: not the local ones, merged across peers, sorted and bounded', () => {
  const rs = [
    report('a', [
      ['tiny', '1.0.0'],
      ['big', '2.0.0'],
    ]),
    report('b', [
      ['big', '1.0.0'],
      ['zeta', '1.0.0'],
    ]),
    report('stale', [['old', '1.0.0']], { end: NOW - 10_000_000 }),
  ]
  const all = remoteModels(input(rs), new Set(['tiny']), 10)
  assert.deepEqual(
    all.map((m) => [m.model, m.versions, m.peers]),
    [
      ['big', ['1.0.0', '2.0.0'], 2],
      ['zeta', ['1.0.0'], 1],
    ],
  )
  assert.deepEqual(
    remoteModels(input(rs), new Set(), 2).map((m) => m.model),
    ['big', 'tiny'],
  )
})

test('canaries closed to forwarded requests: rolling or paused releases, unless their policy opens them', () => {
  const releases = [
    { model: 'tiny', version: '2.0.0', phase: 'rolling' },
    { model: 'tiny', version: '1.0.0', phase: 'promoted' },
    { model: 'chat', version: '3.0.0', phase: 'paused' },
    { model: 'chat', version: '3.1.0', phase: 'rolling' },
    { model: 'gone', version: '1.0.0', phase: 'aborted' },
  ]
  const manifests = [
    { model: 'tiny', version: '2.0.0', policy: {} },
    { model: 'chat', version: '3.0.0', policy: { forward_to_canary: false } },
    { model: 'chat', version: '3.1.0', policy: { forward_to_canary: true } },
  ]
  assert.deepEqual([...closedCanaries(releases, manifests)].sort(), ['chat@3.0.0', 'tiny@2.0.0'])
  // a canary whose manifest this node does not hold stays closed
  assert.deepEqual([...closedCanaries(releases, [])].sort(), ['chat@3.0.0', 'chat@3.1.0', 'tiny@2.0.0'])
  // the field survives the policy schema, and is absent (not false) when not given
  const parsed = RolloutPolicy.parse({ stages: [{ name: 'all', percent: 100 }], gates: {}, forward_to_canary: true })
  assert.equal(parsed.forward_to_canary, true)
  assert.equal(
    'forward_to_canary' in RolloutPolicy.parse({ stages: [{ name: 'all', percent: 100 }], gates: {} }),
    false,
  )
})

test('forward_to_canary is read from a policy file', () => {
  const yaml = 'stages:\n  - { name: all, percent: 100 }\ngates: {}\nforward_to_canary: true\n'
  assert.equal(parsePolicyYaml(yaml).forward_to_canary, true)
})
