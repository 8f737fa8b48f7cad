/** Durable writes of the node's own state files (node/durable-file.ts). */
import assert from 'node:assert/strict'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { writeFileDurable } from '../../node/durable-file.ts'
import { loadPersisted, savePersisted } from '../../node/rollout/persisted.ts'
import { tmpDir } from '../helpers/index.ts'

describe('durable file writes', () => {
  test('the temp file is fsynced before the rename and the directory after it', async (t) => {
    const dir = await tmpDir(t)
    const file = join(dir, 'state.json')
    const order: string[] = []
    await writeFileDurable(file, '{"a":1}', 0o600, { synced: (what, path) => order.push(`${what}:${path}`) })
    assert.deepEqual(order, [`file:${file}.tmp`, `dir:${dir}`])
    assert.equal(await readFile(file, 'utf8'), '{"a":1}')
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    assert.deepEqual(await readdir(dir), ['state.json'])
  })

  test('a failed write leaves the old file whole and no temp file', async (t) => {
    const dir = await tmpDir(t)
    const file = join(dir, 'state.json')
    await writeFile(file, 'old')
    // the temp path is taken by a directory: the write fails
    await mkdir(`${file}.tmp`)
    await assert.rejects(writeFileDurable(file, 'new'))
    assert.equal(await readFile(file, 'utf8'), 'old')
  })

  test('rollout-state.json goes through it: saved and read back', async (t) => {
    const dir = await tmpDir(t)
    const p = await loadPersisted(dir)
    await savePersisted(dir, p)
    assert.deepEqual(await loadPersisted(dir), p)
    assert.deepEqual(await readdir(dir), ['rollout-state.json'])
  })
})
