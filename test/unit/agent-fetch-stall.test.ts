/**
 * A stalled agent package fetch asks for the replication sessions to be restarted, as a model
 * download does (node/agent-update/unpack.ts → node/install/progress.ts `onStall`): a package whose
 * feed no peer serves makes no progress, and `onStall` fires within the stall period. Without it, a
 * device whose peers hypercore paused waited forever (seen once in a LAN run: 0 of 84 MB in 14 min).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { test } from 'node:test'
import { installAgentPackage } from '../../node/agent-update/unpack.ts'
import { silentLogger } from '../../node/logger.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import type { AgentPackage, AgentRelease } from '../../protocols/schemas/index.ts'
import { tmpDir, waitFor } from '../helpers/index.ts'

test('a package fetch with no block arriving calls onStall, and the abort still ends it', async (t) => {
  const dir = await tmpDir(t)
  const store = new ModelStore({ dataDir: join(dir, 'store') })
  await store.start()
  t.after(() => store.stop())
  const chunk = { block: 0, size: 1000, hash: randomBytes(32).toString('hex') }
  const pkg = {
    arch: 'x64',
    size: 1000,
    sha256: randomBytes(32).toString('hex'),
    chunks: {
      feed: randomBytes(32).toString('hex'), // a feed nobody serves
      feed_length: 1,
      chunking: { algo: 'fastcdc', min: 16384, avg: 65536, max: 262144 },
      chunks: [chunk],
    },
  } as unknown as AgentPackage
  const release = { version: '0.0.2' } as unknown as AgentRelease
  const abort = new AbortController()
  let stalls = 0
  const fetching = installAgentPackage(store, join(dir, 'agent'), release, pkg, abort.signal, {
    logger: silentLogger(),
    onStall: () => stalls++,
    stallMs: 200,
  })
  fetching.catch(() => {}) // awaited below
  t.after(() => abort.abort(new Error('test over'))) // a failed wait must not leave the fetch hanging
  await waitFor(() => stalls > 0, { timeoutMs: 10_000, what: 'onStall of the stalled fetch' })
  abort.abort(new Error('stop'))
  await assert.rejects(fetching, /stop/)
})
