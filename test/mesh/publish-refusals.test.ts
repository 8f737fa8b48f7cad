/**
 * A running seed counts every refused publish in `llmesh_publish_refusals_total{code}` on its
 * GET /metrics: a seq counter that does not parse refuses with ERR_SEQ_AUTHORITY (500, until the
 * operator mends the file) and a request without a version with its 400 code, model and agent
 * releases alike (POST /agent-releases). A model named like agent releases (`llmesh-agent`) is
 * refused with ERR_RESERVED_NAME before the seq counter is read. One seed daemon on loopback, mDNS
 * off; nothing is published.
 */
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { silentLogger } from '../../node/logger.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { tmpDir } from '../helpers/index.ts'
import { makeFleet } from './fixtures.ts'

/** The samples of `llmesh_publish_refusals_total`, by code. */
function refusals(text: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^llmesh_publish_refusals_total\{code="([A-Z0-9_]+)"\} (\d+)$/gm))
    out[m[1]] = Number(m[2])
  return out
}

test('every refused publish is counted by its code, ERR_SEQ_AUTHORITY included', async (t) => {
  const dir = await tmpDir(t, 'llmesh-refusals-')
  const fleet = makeFleet()
  const seqFile = join(dir, 'release-seq.json')
  await writeFile(seqFile, '{"v": 1, "seq": {"tiny": "not a number"}}')
  const seed = createSeedDaemon({
    fleet: { id: fleet.id, psk: fleet.psk, trust: fleet.trust },
    dataDir: join(dir, 'seed'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    api: '127.0.0.1:0',
    mdns: false,
    logger: silentLogger(),
    tags: ['seed'],
    signer: fleet.signer,
    seqFile,
  })
  t.after(() => seed.stop())
  await seed.start()
  const metrics = async () => refusals(await (await fetch(`${seed.apiUrl}/metrics`)).text())
  // exposed before any refusal, so the first one is an increase
  assert.deepEqual(await metrics(), { ERR_SEQ_AUTHORITY: 0 })

  const gguf = join(dir, 'tiny.gguf')
  await writeTinyGguf(gguf, { layers: 2, embd: 64 })
  const post = async (query: string, body: Buffer | string, route = 'releases') => {
    const res = await fetch(`${seed.apiUrl}/${route}?${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    })
    return { status: res.status, code: ((await res.json()) as { error?: { code: string } }).error?.code }
  }
  const file = await readFile(gguf)
  assert.deepEqual(await post('model=tiny&version=1.0.0', file), { status: 500, code: 'ERR_SEQ_AUTHORITY' })
  assert.deepEqual(await post('model=tiny&version=1.0.1', file), { status: 500, code: 'ERR_SEQ_AUTHORITY' })
  const invalid = await post('model=tiny', file)
  assert.equal(invalid.status, 400)
  // refused before the (broken) seq counter is read: the name alone decides
  assert.deepEqual(await post('model=llmesh-agent&version=1.0.0', file), { status: 400, code: 'ERR_RESERVED_NAME' })
  // agent releases: the same counter, the same codes
  const pkg = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0])
  assert.deepEqual(await post('version=0.9.1&arch=x64', pkg, 'agent-releases'), {
    status: 500,
    code: 'ERR_SEQ_AUTHORITY',
  })
  assert.deepEqual(await post('arch=x64', pkg, 'agent-releases'), { status: 400, code: invalid.code })
  assert.equal(seed.context.store.releases().length, 0, 'nothing was published')
  assert.equal(seed.context.store.list('AgentRelease').length, 0, 'no agent release either')
  assert.deepEqual(await metrics(), { ERR_SEQ_AUTHORITY: 3, [invalid.code ?? '?']: 2, ERR_RESERVED_NAME: 1 })
})
