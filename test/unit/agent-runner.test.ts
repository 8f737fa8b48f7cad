/**
 * The wrapper (node/agent-update/runner.ts) with real child processes (tiny sh launchers) and the
 * layout records (node/agent-update/layout.ts): a new version that stays up but never reports
 * ready is rolled back when the window ends; one that reports ready is confirmed; `current` is
 * switched by rename (never absent); the failure record is bounded and survives junk.
 */
import assert from 'node:assert/strict'
import { chmod, mkdir, readlink, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { AGENT_FAILURES_FILE, MAX_AGENT_FAILURES } from '../../node/agent-update/constants.ts'
import {
  readCurrent,
  readFailures,
  readPending,
  recordFailure,
  switchCurrent,
  writePending,
} from '../../node/agent-update/layout.ts'
import { AgentRunner } from '../../node/agent-update/runner.ts'
import { silentLogger } from '../../node/logger.ts'
import { scaled, tmpDir, waitFor } from '../helpers/index.ts'

const READY = '#!/bin/sh\n: > "$LLMESH_AGENT_READY_FILE"\nexec sleep 60\n'
const SILENT = '#!/bin/sh\nexec sleep 60\n'

async function version(root: string, v: string, script: string): Promise<void> {
  await mkdir(join(root, v, 'bin'), { recursive: true })
  await writeFile(join(root, v, 'bin', 'llmesh'), script)
  await chmod(join(root, v, 'bin', 'llmesh'), 0o755)
}

test('a version that never reports ready is rolled back when its window ends', async (t) => {
  const root = await tmpDir(t)
  await version(root, '1.0.0', READY)
  await version(root, '1.0.1', SILENT)
  await symlink('1.0.1', join(root, 'current'))
  await writePending(root, { version: '1.0.1', previous: '1.0.0' })
  const runner = new AgentRunner({ logger: silentLogger() }, { root, args: [], healthWindowMs: 1500 })
  const done = runner.run()
  t.after(async () => {
    runner.stop()
    await done
  })
  await waitFor(() => runner.rollbacks.includes('1.0.1'), { timeoutMs: 20_000, what: 'the rollback' })
  assert.equal(await readCurrent(root), '1.0.0')
  assert.equal(await readPending(root), null)
  const failures = await readFailures(root)
  assert.equal(failures.length, 1)
  assert.match(failures[0].reason, /not ready within 1500 ms/)
  runner.stop()
  await done
})

test('a version whose launcher cannot be started is rolled back', async (t) => {
  const root = await tmpDir(t)
  await version(root, '1.0.0', READY)
  await version(root, '1.0.1', READY)
  await chmod(join(root, '1.0.1', 'bin', 'llmesh'), 0o644) // not executable: spawn fails with EACCES
  await symlink('1.0.1', join(root, 'current'))
  await writePending(root, { version: '1.0.1', previous: '1.0.0' })
  const runner = new AgentRunner({ logger: silentLogger() }, { root, args: [], healthWindowMs: scaled(30_000) })
  const done = runner.run()
  t.after(async () => {
    runner.stop()
    await done
  })
  await waitFor(() => runner.rollbacks.includes('1.0.1'), { timeoutMs: 20_000, what: 'the rollback' })
  assert.equal(await readCurrent(root), '1.0.0')
  assert.match((await readFailures(root))[0].reason, /exited before ready/)
  // stopped here, before tmpDir's removal (after-hooks run in the order they were added)
  runner.stop()
  await done
})

test('a version that reports ready is confirmed and kept', async (t) => {
  const root = await tmpDir(t)
  await version(root, '1.0.0', READY)
  await version(root, '1.0.1', READY)
  await symlink('1.0.1', join(root, 'current'))
  await writePending(root, { version: '1.0.1', previous: '1.0.0' })
  const runner = new AgentRunner({ logger: silentLogger() }, { root, args: [], healthWindowMs: scaled(30_000) })
  const done = runner.run()
  t.after(async () => {
    runner.stop()
    await done
  })
  await waitFor(async () => (await readPending(root)) === null, { timeoutMs: 20_000, what: 'the confirmation' })
  assert.equal(await readCurrent(root), '1.0.1')
  assert.deepEqual(runner.rollbacks, [])
  assert.deepEqual(await readFailures(root), [])
  // stopped here, before tmpDir's removal (after-hooks run in the order they were added)
  runner.stop()
  await done
})

test('switchCurrent replaces the link by rename; failure records are bounded and junk is ignored', async (t) => {
  const root = await tmpDir(t)
  await switchCurrent(root, '2.0.0')
  assert.equal(await readlink(join(root, 'current')), '2.0.0')
  await switchCurrent(root, '2.0.1')
  assert.equal(await readCurrent(root), '2.0.1')
  await assert.rejects(switchCurrent(root, '../etc'), TypeError)
  for (let i = 0; i < MAX_AGENT_FAILURES + 4; i++)
    await recordFailure(root, { version: `3.0.${i}`, reason: 'x'.repeat(1000), at: i })
  const f = await readFailures(root)
  assert.equal(f.length, MAX_AGENT_FAILURES)
  assert.equal(f.at(-1)?.version, `3.0.${MAX_AGENT_FAILURES + 3}`)
  assert.equal(f[0].reason.length, 256)
  await writeFile(join(root, AGENT_FAILURES_FILE), '{not json')
  assert.deepEqual(await readFailures(root), [])
  await writeFile(join(root, '.agent-pending.json'), JSON.stringify({ version: '../x', previous: '1.0.0' }))
  assert.equal(await readPending(root), null)
})
