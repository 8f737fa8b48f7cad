/**
 * One agent release for several architectures (seed/agent-routes.ts, agent-staging.ts): the seed's
 * real routes over a real model store (hypercore feeds in a temporary directory) and a real
 * sequence authority. Each package is staged (`stage=1`: chunked into its architecture's lineage
 * feed, nothing signed), then one signed release names them all; each device takes the package of
 * its own architecture (protocols/agent/upgrade.ts). Staging tokens are bounded input: unknown,
 * another version's, or two for one architecture are refused and nothing is signed.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import Fastify from 'fastify'
import { silentLogger } from '../../node/logger.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import { AGENT_LINEAGE } from '../../protocols/agent/constants.ts'
import { checkAgentUpgrade } from '../../protocols/agent/upgrade.ts'
import { sha256Hex } from '../../protocols/encoding.ts'
import type { AgentRelease } from '../../protocols/schemas/index.ts'
import { verifyEnvelope } from '../../protocols/verify.ts'
import { type AgentPublishResponse, type AgentStagedResponse, agentRoutes } from '../../seed/agent-routes.ts'
import { SeqAuthority } from '../../seed/seq-authority.ts'
import { tmpDir } from '../helpers/index.ts'
import { makeFleet } from '../mesh/fixtures.ts'

const fleet = makeFleet()

describe('one agent release, one package per architecture, in one publish', () => {
  test('staged packages become one signed release; each device takes its own', async (t) => {
    const dir = await tmpDir(t, 'llmesh-multiarch-')
    const store = new ModelStore({ dataDir: join(dir, 'store') })
    await store.start()
    t.after(() => store.stop())
    const seqs = new SeqAuthority({ file: join(dir, 'release-seq.json') })
    const published: Array<{ release: AgentRelease; digest: string }> = []
    const app = Fastify()
    await app.register(
      agentRoutes({
        store,
        signer: fleet.signer,
        fleet: fleet.id,
        uploadDir: join(dir, 'uploads'),
        publish: async (wire) => {
          const r = verifyEnvelope(wire, { trust: fleet.trust, now: Date.now() })
          assert.ok(r.ok && r.message.type === 'AgentRelease', 'a validly signed agent release')
          published.push({ release: r.message as AgentRelease, digest: r.digest })
        },
        releases: () => published,
        seqs,
        logger: silentLogger(),
      }),
    )
    t.after(() => app.close())
    const files: Record<string, Buffer> = {}
    const post = async (query: string, name?: string) => {
      const headers: Record<string, string> = {}
      let payload: Buffer | undefined
      if (name !== undefined) {
        payload = files[name] ?? gzipSync(randomBytes(300_000)) // incompressible: several chunks
        files[name] = payload
        await writeFile(join(dir, name), payload)
        Object.assign(headers, { 'content-type': 'application/octet-stream', 'x-llmesh-filename': name })
      }
      const r = await app.inject({ method: 'POST', url: `/agent-releases?${query}`, headers, payload })
      return { status: r.statusCode, body: r.json() }
    }

    const x64 = await post('version=0.9.1&stage=1', 'llmesh-0.9.1-linux-x64.tar.gz')
    const arm = await post('version=0.9.1&stage=1', 'llmesh-0.9.1-linux-arm64.tar.gz')
    assert.deepEqual([x64.status, arm.status], [201, 201], JSON.stringify([x64.body, arm.body]))
    const [tx, ta] = [x64.body, arm.body].map((b) => (b as AgentStagedResponse).staged.token)
    assert.equal(published.length, 0, 'staging signs nothing')

    // bad token lists are refused, nothing is signed
    const other = await post('version=0.9.2&stage=1', 'llmesh-0.9.2-linux-x64.tar.gz')
    const to = (other.body as AgentStagedResponse).staged.token
    for (const [list, why] of [
      [`${tx},${to}`, /staged for agent 0\.9\.2/],
      [`${tx},${tx}`, /one package per architecture/],
      [`${tx},${'0'.repeat(32)}`, /unknown or expired/],
      ['../../etc', /unknown or expired/],
      [Array(9).fill(tx).join(','), /1 to 8/],
    ] as const) {
      const r = await post(`version=0.9.1&packages=${encodeURIComponent(list)}`)
      assert.equal(r.status, 400, list)
      assert.match((r.body as { error: { message: string } }).error.message, why)
    }
    assert.equal(published.length, 0)

    const pub = await post(`version=0.9.1&packages=${tx},${ta}`)
    assert.equal(pub.status, 201, JSON.stringify(pub.body))
    const { release } = pub.body as AgentPublishResponse
    assert.deepEqual(
      release.packages.map((p) => [p.arch, p.name, p.sha256, p.size]),
      [
        [
          'x64',
          'llmesh-0.9.1-linux-x64.tar.gz',
          sha256Hex(files['llmesh-0.9.1-linux-x64.tar.gz']),
          files['llmesh-0.9.1-linux-x64.tar.gz'].length,
        ],
        [
          'arm64',
          'llmesh-0.9.1-linux-arm64.tar.gz',
          sha256Hex(files['llmesh-0.9.1-linux-arm64.tar.gz']),
          files['llmesh-0.9.1-linux-arm64.tar.gz'].length,
        ],
      ],
    )
    assert.notEqual(
      release.packages[0].chunks.feed,
      release.packages[1].chunks.feed,
      'one lineage feed per architecture',
    )
    assert.deepEqual(
      published.map((p) => p.release.version),
      ['0.9.1'],
    )
    // the seq is the operator's, reserved before signing
    assert.equal(seqs.next(AGENT_LINEAGE, 0), release.seq + 1)
    // each device takes the package of its own architecture; others have none
    for (const arch of ['x64', 'arm64']) {
      const d = checkAgentUpgrade(release, { arch, running: '0.9.0' })
      assert.equal(d.action === 'install' && d.pkg.arch, arch)
    }
    assert.equal(checkAgentUpgrade(release, { arch: 'riscv64', running: '0.9.0' }).action, 'not-mine')
    // the tokens are spent; the version exists now
    assert.equal((await post(`version=0.9.1&packages=${tx},${ta}`)).status, 400)
    assert.equal((await post('version=0.9.1&stage=1', 'llmesh-0.9.1-linux-x64.tar.gz')).status, 409)
  })
})
