import assert from 'node:assert/strict'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import {
  nextState,
  resolveSwarmKey,
  SWARM_KEY_STATE_FILE,
  writeSwarmKeyState,
} from '../../node/mesh/swarm-key-state.ts'
import { swarmKeyFile } from '../../protocols/swarm-key/index.ts'
import { tmpDir } from '../helpers/index.ts'

const keyFile = (n: number) => swarmKeyFile(new Uint8Array(32).fill(n))
const NOW = 1_700_000_000_000

test('no state: the fleet directory’s key at epoch 0', async (t) => {
  const dir = await tmpDir(t)
  const r = await resolveSwarmKey(dir, keyFile(1), NOW)
  assert.equal(r.epoch, 0)
  assert.deepEqual(r.psk, keyFile(1))
})

test('a rotation is durable; before its switch the old key, after it the new one', async (t) => {
  const dir = await tmpDir(t)
  const s1 = nextState(keyFile(1), undefined, { key: new Uint8Array(32).fill(2), epoch: 1, switchAt: NOW + 1000 })
  await writeSwarmKeyState(dir, s1)
  assert.equal((await stat(join(dir, SWARM_KEY_STATE_FILE))).mode & 0o777, 0o600)
  const before = await resolveSwarmKey(dir, keyFile(1), NOW)
  assert.equal(before.epoch, 1)
  assert.deepEqual(before.psk, keyFile(1))
  assert.deepEqual(before.pending?.psk, keyFile(2))
  assert.equal(before.pending?.at, NOW + 1000)
  const afterSwitch = await resolveSwarmKey(dir, keyFile(1), NOW + 1000)
  assert.deepEqual(afterSwitch.psk, keyFile(2))
  assert.equal(afterSwitch.pending, undefined)
  // a second rotation supersedes both earlier keys: an old fleet directory copy still resolves to the newest
  const s2 = nextState(keyFile(2), undefined, { key: new Uint8Array(32).fill(3), epoch: 2, switchAt: NOW }, s1)
  await writeSwarmKeyState(dir, s2)
  for (const old of [1, 2, 3]) assert.deepEqual((await resolveSwarmKey(dir, keyFile(old), NOW)).psk, keyFile(3))
  assert.match(await readFile(join(dir, SWARM_KEY_STATE_FILE), 'utf8'), /"epoch":2/)
})

test('a key file the node never held (the operator’s newer one) wins, at the state’s epoch', async (t) => {
  const dir = await tmpDir(t)
  await writeSwarmKeyState(
    dir,
    nextState(keyFile(1), undefined, { key: new Uint8Array(32).fill(2), epoch: 1, switchAt: NOW }),
  )
  const r = await resolveSwarmKey(dir, keyFile(9), NOW)
  assert.deepEqual(r.psk, keyFile(9))
  assert.equal(r.epoch, 1)
})

test('a corrupt state file is an error, not a silent fallback to the old key', async (t) => {
  const dir = await tmpDir(t)
  const { writeFile } = await import('node:fs/promises')
  await writeFile(join(dir, SWARM_KEY_STATE_FILE), '{"epoch":"x"}')
  await assert.rejects(resolveSwarmKey(dir, keyFile(1), NOW), { code: 'ERR_SWARM_KEY_STATE' })
})
