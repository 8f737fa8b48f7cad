/**
 * `llmesh status` and `llmesh rollout status` in a terminal: a deactivated model says which version
 * and why; revoked devices say so; failing, conflicted and duplicated releases come first.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { humanStatus, type StatusView } from '../../cli/commands/node.ts'
import { humanRollout } from '../../cli/commands/rollout.ts'

const base: StatusView = {
  device: { id: '12D3KooWdev', tags: ['pilot'], enrolled: true, role: 'node', fleet: 'f' },
  peers: ['a', 'b'],
  releases: [{ model: 'tiny', version: '1.0.0', state: 'aborted' }],
  models: {},
  devices: [
    { id: '12D3KooWx', membership: 'revoked', tags: [], active: [], last_seen: null },
    { id: '12D3KooWy', membership: 'enrolled', tags: ['lan'], active: ['tiny@2.0.0'], last_seen: null },
    { id: '12D3KooWz', membership: 'pending', tags: [], active: [], last_seen: null },
  ],
}

test('a deactivated model shows its version and reason; an active one does not', () => {
  const out = humanStatus({
    ...base,
    models: {
      tiny: {
        active: null,
        previous: null,
        staged: ['1.0.0'],
        deactivated: { version: '1.0.0', reason: 'release aborted', at: 1 },
      },
      other: { active: '2.0.0', previous: '1.0.0', staged: ['1.0.0', '2.0.0'] },
    },
  })
  assert.match(out, /tiny {2}active=- previous=- staged=1\.0\.0 {2}deactivated: 1\.0\.0 \(release aborted\)/)
  assert.match(out, /other {2}active=2\.0\.0 previous=1\.0\.0 staged=1\.0\.0,2\.0\.0$/m)
  assert.match(out, /12D3KooWx {2}revoked/)
  assert.match(out, /12D3KooWy {2}enrolled {2}tags=lan {2}versions=tiny@2\.0\.0/)
  assert.match(out, /12D3KooWz {2}pending {2}tags=- /)
  assert.match(out, /tiny@1\.0\.0 {2}aborted/)
})

test('failing and conflicted releases and failing loop items come first, under problems', () => {
  const out = humanStatus({
    ...base,
    releases: [...base.releases, { model: 'tiny', version: '1.1.0', state: 'conflicted' }],
    rollout: {
      errors: [
        {
          model: 'tiny',
          version: '1.1.0',
          code: 'ERR_RELEASE_CONFLICT',
          message: 'tiny@1.1.0 has 2 valid manifests',
          count: 9,
          since: 1,
          last: 2,
        },
      ],
    },
    loops: {
      errors: { gc: 1, rollout: 0 },
      failing: [
        { loop: 'gc', item: 'tiny@0.9.0', code: 'ERR_INTERNAL', message: 'EBUSY', since: 1, last: 2, count: 1 },
      ],
    },
  })
  assert.match(
    out,
    /^problems:\n {2}release tiny@1\.1\.0 {2}ERR_RELEASE_CONFLICT: tiny@1\.1\.0 has 2 valid manifests \(9×/m,
  )
  assert.match(out, /^ {2}loop gc {2}tiny@0\.9\.0 {2}ERR_INTERNAL: EBUSY$/m)
  assert.match(out, /tiny@1\.1\.0 {2}conflicted/)
  assert.ok(out.indexOf('problems:') < out.indexOf('releases:'))
  assert.doesNotMatch(humanStatus(base), /problems:/)
})

test('llmesh rollout status: a conflicted release, a duplicate and a failing release come first', () => {
  const m = (seq: number, sha: string) => ({
    digest: sha.repeat(64),
    seq,
    sha256: sha.repeat(64),
    size: 1,
    created_at: 1,
  })
  const out = humanRollout({
    releases: [],
    conflicts: [
      { model: 'ghost', version: '1.0.0', outcome: 'conflicted', manifests: [m(1, 'a'), m(2, 'b')] },
      {
        model: 'tiny',
        version: '1.0.0',
        outcome: 'duplicate',
        chosen: 'a'.repeat(64),
        manifests: [m(3, 'a'), m(4, 'a')],
      },
    ],
    errors: [
      { model: 'ghost', version: '1.0.0', code: 'ERR_RELEASE_CONFLICT', message: 'x', since: 0, last: 0, count: 3 },
      { model: 'tiny', version: '2.0.0', code: 'ERR_INTERNAL', message: 'boom', since: 0, last: 0, count: 2 },
    ],
  })
  const lines = out.split('\n')
  assert.match(
    lines[0],
    /^ghost@1\.0\.0 {2}CONFLICTED: 2 valid manifests for different files \(seq 1 aaaaaaaaaaaa, seq 2 bbbbbbbbbbbb\)/,
  )
  assert.match(lines[1], /^tiny@1\.0\.0 {2}published 2 times with the same file .*the lowest seq counts$/)
  assert.match(lines[2], /^tiny@2\.0\.0 {2}ERROR ERR_INTERNAL: boom \(2× since 1970-01-01T00:00:00\.000Z\)$/)
  assert.equal(lines.length, 4) // the conflict is not repeated as an error; then "(no releases)"
})
