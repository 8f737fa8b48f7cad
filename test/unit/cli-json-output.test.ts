/**
 * The one boundary of the CLI's --json output (cli/json-output.ts): camelCase field names become
 * snake_case at every depth, in arrays too; the keys of data maps (bare or parent-qualified in
 * DATA_MAPS) are kept byte for byte while their values are shaped; keys that are not camelCase
 * identifiers (peer ids, codes, dotted GGUF keys) are never rewritten; a bare array or value is
 * refused (the envelope is an object).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { jsonDocument, snakeKey } from '../../cli/json-output.ts'

const PEER = '12D3KooWSaAAUuTHSki3vbM1EXLjVLHnHgTS4q1k3XKHPCc86VKj'

test('field names become snake_case at every depth; data maps keep their keys', () => {
  const doc = jsonDocument({
    releases: [{ stageName: 'canary', stageStartedAt: 1, cohorts: { earlyAdopters: ['a'], full: [] } }],
    replication: { bytesIn: 3, peers: { [PEER]: { bytesIn: 1, invalidBlocks: 0 } } },
    loops: { errors: { 'peer-sync': 2, healthReport: 1 } },
    // `errors` elsewhere is not a data map: its records' fields are shaped
    rollout: { errors: [{ firstSeen: 1 }] },
    models: { tinyLlama: { activeVersion: '1.0.0' } },
    metadata: { 'general.architecture': 'llama' },
    when: new Date(0),
  })
  assert.deepEqual(doc, {
    releases: [{ stage_name: 'canary', stage_started_at: 1, cohorts: { earlyAdopters: ['a'], full: [] } }],
    replication: { bytes_in: 3, peers: { [PEER]: { bytes_in: 1, invalid_blocks: 0 } } },
    loops: { errors: { 'peer-sync': 2, healthReport: 1 } },
    rollout: { errors: [{ first_seen: 1 }] },
    models: { tinyLlama: { active_version: '1.0.0' } },
    metadata: { 'general.architecture': 'llama' },
    when: '1970-01-01T00:00:00.000Z',
  })
})

test('only camelCase identifiers are rewritten', () => {
  assert.equal(snakeKey('antiEntropy'), 'anti_entropy')
  assert.equal(snakeKey('verdictsPublished'), 'verdicts_published')
  for (const k of [PEER, 'ENOSPC', 'ERR_X', 'already_snake', 'tiny@1.0.0', 'Capital', 'a.bC'])
    assert.equal(snakeKey(k), k)
})

test('the envelope is an object, never a bare array or value', () => {
  assert.throws(() => jsonDocument([1, 2] as unknown as object), TypeError)
  assert.throws(() => jsonDocument(null as unknown as object), TypeError)
})
