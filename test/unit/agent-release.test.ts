/**
 * Agent releases (issue 15): the manifest schema, the device's pure upgrade rules
 * (protocols/agent/upgrade.ts), signing/verification and the rollback key. Model manifests
 * must stay valid as they were, except that a model may not take a name agent releases own
 * (`llmesh-agent`, `llmesh-agent-<arch>`): every node refuses such a manifest, the seed the publish.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { bundleToJSON } from '@sigstore/bundle'
import { DSSEBundleBuilder } from '@sigstore/sign'
import { errorReply } from '../../node/api/errors.ts'
import { ReservedNameError } from '../../protocols/agent/reserved-names.ts'
import { agentReleaseProblems, checkAgentUpgrade } from '../../protocols/agent/upgrade.ts'
import { AgentRelease, OperatorMessage, ReleaseManifest } from '../../protocols/schemas/index.ts'
import {
  createOperatorSigner,
  operatorEnvelopeBytes,
  operatorPayload,
  signOperatorMessage,
  toSigstoreSigner,
} from '../../protocols/signing/index.ts'
import { SeqTracker } from '../../protocols/trust/sequence.ts'
import { verifyEnvelope } from '../../protocols/verify.ts'
import { parsePublishRequest } from '../../seed/publish-query.ts'
import { DAY, exampleOperator, examplePolicy, exampleRelease, FLEET, NOW, SHA_A, SHA_B } from '../fixtures/messages.ts'

function pkg(arch: 'x64' | 'arm64') {
  return {
    arch,
    name: `llmesh-0.2.0-linux-${arch}.tar.gz`,
    size: 1000,
    sha256: arch === 'x64' ? SHA_A : SHA_B,
    chunks: {
      feed: arch === 'x64' ? SHA_B : SHA_A,
      feed_length: 1,
      chunking: { algo: 'fastcdc' as const, min: 16_384, avg: 65_536, max: 262_144 },
      chunks: [{ hash: SHA_A, block: 0, size: 1000 }],
    },
  }
}

function agent(over: Partial<AgentRelease> = {}): AgentRelease {
  return {
    type: 'AgentRelease',
    v: 1,
    fleet: FLEET,
    version: '0.2.0',
    seq: 2,
    packages: [pkg('x64'), pkg('arm64')],
    min_agent_version: '0.1.0',
    policy: examplePolicy(),
    provenance: { approved_by: [] },
    created_at: NOW,
    expires_at: NOW + 30 * DAY,
    ...over,
  }
}

describe('agent release schema', () => {
  test('a valid agent release parses, and is an operator message', () => {
    assert.equal(AgentRelease.safeParse(agent()).success, true)
    assert.equal(OperatorMessage.safeParse(agent()).success, true)
  })
  test('two packages for one architecture, an `any` package and a non-tarball name are refused', () => {
    assert.equal(AgentRelease.safeParse(agent({ packages: [pkg('x64'), pkg('x64')] })).success, false)
    assert.equal(AgentRelease.safeParse(agent({ packages: [{ ...pkg('x64'), arch: 'any' as never }] })).success, false)
    assert.equal(
      AgentRelease.safeParse(agent({ packages: [{ ...pkg('x64'), name: '../evil.tar.gz' }] })).success,
      false,
    )
    assert.equal(AgentRelease.safeParse(agent({ packages: [{ ...pkg('x64'), name: 'a.zip' }] })).success, false)
    assert.equal(AgentRelease.safeParse(agent({ packages: [] })).success, false)
  })
  test('model manifests are unchanged: the example parses to the same object', () => {
    const m = exampleRelease()
    assert.deepEqual(ReleaseManifest.parse(m), m)
    assert.deepEqual(OperatorMessage.parse(m), m)
  })
  test('min_agent_version and min_from above the version are problems for the publisher', () => {
    assert.deepEqual(agentReleaseProblems(agent()), [])
    assert.equal(agentReleaseProblems(agent({ min_agent_version: '0.3.0' })).length, 1)
    assert.equal(agentReleaseProblems(agent({ min_from: '0.2.1' })).length, 1)
  })
})

describe('checkAgentUpgrade', () => {
  test('a device takes only the package of its own architecture', () => {
    const d = checkAgentUpgrade(agent(), { arch: 'arm64', running: '0.1.0' })
    assert.equal(d.action, 'install')
    assert.equal(d.action === 'install' && d.pkg.arch, 'arm64')
    const r = checkAgentUpgrade(agent({ packages: [pkg('x64')] }), { arch: 'arm64', running: '0.1.0' })
    assert.equal(r.action, 'not-mine')
  })
  test('the running version is current', () => {
    assert.equal(checkAgentUpgrade(agent(), { arch: 'x64', running: '0.2.0' }).action, 'current')
  })
  test('an upgrade that skips a required step is refused', () => {
    const r = checkAgentUpgrade(agent({ min_from: '0.1.5' }), { arch: 'x64', running: '0.1.4' })
    assert.equal(r.action === 'refuse' && r.code, 'ERR_AGENT_STEP')
    assert.equal(checkAgentUpgrade(agent({ min_from: '0.1.5' }), { arch: 'x64', running: '0.1.5' }).action, 'install')
    // prerelease ordering is semver's: 0.1.5-rc.1 < 0.1.5
    const rc = checkAgentUpgrade(agent({ min_from: '0.1.5' }), { arch: 'x64', running: '0.1.5-rc.1' })
    assert.equal(rc.action, 'refuse')
  })
  test('a downgrade needs the operator to have published it as one, and the running data to be readable', () => {
    const down = agent({ version: '0.1.0' })
    const r = checkAgentUpgrade(down, { arch: 'x64', running: '0.2.0' })
    assert.equal(r.action === 'refuse' && r.code, 'ERR_AGENT_DOWNGRADE')
    const allowed = agent({ version: '0.1.0', downgrade: { from: '0.2.0' } })
    assert.equal(checkAgentUpgrade(allowed, { arch: 'x64', running: '0.2.0' }).action, 'install')
    const unreadable = checkAgentUpgrade(allowed, { arch: 'x64', running: '0.2.0', runningMinAgent: '0.2.0' })
    assert.equal(unreadable.action === 'refuse' && unreadable.code, 'ERR_AGENT_INCOMPATIBLE')
  })
  test("going back from a version the fleet aborted is the fleet's rollback, under the same readability floor", () => {
    const back = agent({ version: '0.1.0' })
    assert.equal(checkAgentUpgrade(back, { arch: 'x64', running: '0.2.0', runningAborted: true }).action, 'install')
    assert.equal(checkAgentUpgrade(back, { arch: 'x64', running: '0.2.0', runningAborted: false }).action, 'refuse')
    const floor = checkAgentUpgrade(back, {
      arch: 'x64',
      running: '0.2.0',
      runningAborted: true,
      runningMinAgent: '0.2.0',
    })
    assert.equal(floor.action === 'refuse' && floor.code, 'ERR_AGENT_INCOMPATIBLE')
  })
  test('build metadata carries no precedence: another build of the running core is not a downgrade', () => {
    assert.equal(
      checkAgentUpgrade(agent({ version: '0.2.0+b2' }), { arch: 'x64', running: '0.2.0+b1' }).action,
      'install',
    )
  })
})

describe('agent release signing', () => {
  test('signed by the operator it verifies; a lower seq after a higher one is a rollback', async () => {
    const { op, root } = exampleOperator()
    const signer = createOperatorSigner(op.privateKeyPem)
    const wire3 = await signOperatorMessage(agent({ seq: 3, version: '0.3.0' }), signer)
    const wire2 = await signOperatorMessage(agent(), signer)
    const seqs = new SeqTracker()
    const ctx = { trust: root, now: NOW, highestSeq: seqs.highestSeq, seenDigest: seqs.seenDigest }
    const v3 = verifyEnvelope(wire3, ctx)
    assert.equal(v3.ok, true)
    if (!v3.ok) return
    assert.equal(v3.message.type, 'AgentRelease')
    seqs.record(v3.message, v3.digest)
    const v2 = verifyEnvelope(wire2, ctx)
    assert.equal(v2.ok === false && v2.error.code, 'ERR_ROLLBACK')
  })
})

describe('model names reserved for agent releases', () => {
  test('no model release named llmesh-agent or llmesh-agent-<arch>: the schema, every verifier and the seed refuse it', async () => {
    for (const model of ['llmesh-agent', 'llmesh-agent-x64', 'llmesh-agent-anything']) {
      const parsed = ReleaseManifest.safeParse(exampleRelease({ model }))
      assert.equal(parsed.success, false, model)
      assert.match(parsed.error?.issues[0]?.message ?? '', /reserved for agent releases/)
    }
    for (const model of ['llmesh-agents', 'my-llmesh-agent', 'llmesh']) {
      assert.equal(ReleaseManifest.safeParse(exampleRelease({ model })).success, true, model)
    }
    // signed with the operator key by hand (signOperatorMessage validates first), as an older
    // seed or a hostile key holder would: a peer still refuses it, typed
    const { op, root } = exampleOperator()
    const signer = createOperatorSigner(op.privateKeyPem)
    const ctx = { trust: root, now: NOW }
    assert.equal(verifyEnvelope(await signOperatorMessage(exampleRelease(), signer), ctx).ok, true)
    const { payloadType, payload } = operatorPayload(exampleRelease({ model: 'llmesh-agent' }))
    const builder = new DSSEBundleBuilder({ signer: toSigstoreSigner(signer), witnesses: [] })
    const bundle = await builder.create({ data: Buffer.from(payload), type: payloadType })
    const v = verifyEnvelope(
      operatorEnvelopeBytes('ReleaseManifest', JSON.parse(JSON.stringify(bundleToJSON(bundle)))),
      ctx,
    )
    assert.equal(v.ok, false)
    assert.equal(!v.ok && v.error.code, 'ERR_SCHEMA')
    assert.match(!v.ok ? v.error.message : '', /model: .*reserved for agent releases/)
    // the seed's publish request: a typed refusal, 400 in the one error table
    assert.throws(() => parsePublishRequest({ model: 'llmesh-agent', version: '1.0.0' }, {}), ReservedNameError)
    const reply = errorReply(new ReservedNameError('llmesh-agent'))
    assert.equal(reply.status, 400)
    assert.equal(reply.body.error.code, 'ERR_RESERVED_NAME')
    assert.equal(parsePublishRequest({ model: 'tiny', version: '1.0.0' }, {}).model, 'tiny')
  })
})
