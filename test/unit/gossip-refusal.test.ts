/**
 * The gossip validator's answer to a refused message (node/mesh/gossip-service.ts `refusalVerdict`):
 * only refusals every node makes alike are Rejected (gossipsub then charges every peer that
 * delivered a copy); refusals that depend on this node's state are Ignored, and the signer sending
 * its own messages gets a behaviour penalty on its own.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { NOT_ENROLLED_PENALTY, QUOTA_PENALTY } from '../../node/mesh/constants.ts'
import { IGNORED_CODES, refusalVerdict } from '../../node/mesh/gossip-service.ts'

const SIGNER = '12D3KooWsigner'
const FORWARDER = '12D3KooWforwarder'

describe('gossip refusal verdicts', () => {
  test('past quota: Ignored from anyone; only the signer delivering its own messages is penalised', () => {
    assert.deepEqual(refusalVerdict('ERR_QUOTA', SIGNER, SIGNER), { result: 'ignore', penalty: QUOTA_PENALTY })
    assert.deepEqual(refusalVerdict('ERR_QUOTA', SIGNER, FORWARDER), { result: 'ignore', penalty: 0 })
    assert.ok(QUOTA_PENALTY > 0)
  })

  test('not enrolled: Ignored; a stranger sending what it signed itself is penalised', () => {
    assert.deepEqual(refusalVerdict('ERR_NOT_ENROLLED', SIGNER, SIGNER), {
      result: 'ignore',
      penalty: NOT_ENROLLED_PENALTY,
    })
    assert.deepEqual(refusalVerdict('ERR_NOT_ENROLLED', SIGNER, FORWARDER), { result: 'ignore', penalty: 0 })
  })

  test('refusals every node makes alike are Rejected, the others Ignored, none penalised beyond P4', () => {
    for (const code of ['ERR_BAD_SIGNATURE', 'ERR_OVERSIZED', 'ERR_UNKNOWN_TYPE', 'ERR_SCHEMA']) {
      assert.deepEqual(refusalVerdict(code, SIGNER, FORWARDER), { result: 'reject', penalty: 0 }, code)
      assert.deepEqual(refusalVerdict(code, SIGNER, SIGNER), { result: 'reject', penalty: 0 }, code)
    }
    // state of this node (its clock): a genuine message that expired on the way costs its forwarders nothing
    assert.deepEqual(refusalVerdict('ERR_EXPIRED', SIGNER, FORWARDER), { result: 'ignore', penalty: 0 })
    assert.deepEqual(refusalVerdict('ERR_FUTURE', SIGNER, FORWARDER), { result: 'ignore', penalty: 0 })
    // state of this node (its trust root): a key of a root it has not rotated to yet, or has rotated past
    assert.deepEqual(refusalVerdict('ERR_UNKNOWN_SIGNER', SIGNER, FORWARDER), { result: 'ignore', penalty: 0 })
    for (const code of IGNORED_CODES) {
      assert.equal(refusalVerdict(code, SIGNER, FORWARDER).result, 'ignore', code)
    }
  })
})
