/**
 * The operator's sequence authority (seed/seq-authority.ts): seqs come from a durable counter
 * beside the operator key, reserved before signing, so a seed whose data directory (and message
 * store) was lost or restored from an older backup never signs a second manifest with a seq it
 * already used; an unreadable counter refuses publishing instead of restarting at 1.
 */
import assert from 'node:assert/strict'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { ModelStore } from '../../node/store/model-store.ts'
import { parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import { SEQ_FILE } from '../../seed/constants.ts'
import { publishRelease } from '../../seed/publish.ts'
import { SeqAuthority, SeqAuthorityError } from '../../seed/seq-authority.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { POLICIES, tmpDir } from '../helpers/index.ts'
import { makeFleet } from '../mesh/fixtures.ts'

const counter = async (file: string) =>
  JSON.parse(await readFile(file, 'utf8')) as { v: number; seq: Record<string, number> }

describe('SeqAuthority', () => {
  test('allocates above both the counter and what the store has seen, and keeps the counter across instances', async (t) => {
    const file = join(await tmpDir(t), SEQ_FILE)
    const a = new SeqAuthority({ file })
    assert.equal(a.next('tiny', 0), 1)
    assert.equal(a.next('tiny', 4), 5)
    await a.reserve('tiny', 5)
    assert.deepEqual(await counter(file), { v: 1, seq: { tiny: 5 } })
    // the data directory was lost: the store has seen nothing, the counter still says 5
    const b = new SeqAuthority({ file })
    assert.equal(b.next('tiny', 0), 6)
    assert.equal(b.next('other', 0), 1)
    assert.equal(b.next('tiny', 9), 10, 'a store ahead of the counter (a publish by another node) wins')
  })

  test('reservations are serialized and never lower the counter', async (t) => {
    const file = join(await tmpDir(t), SEQ_FILE)
    const a = new SeqAuthority({ file })
    await Promise.all([a.reserve('m', 3), a.reserve('m', 7), a.reserve('m', 2), a.reserve('n', 1)])
    assert.deepEqual(await counter(file), { v: 1, seq: { m: 7, n: 1 } })
    assert.equal(new SeqAuthority({ file }).next('m', 0), 8)
  })

  test('a counter that does not parse, or is oversized, refuses every allocation with ERR_SEQ_AUTHORITY', async (t) => {
    const dir = await tmpDir(t)
    const cases: Array<[string, string | Buffer]> = [
      ['torn.json', '{"v":1,"seq":{"tiny":'],
      ['wrong.json', JSON.stringify({ v: 1, seq: { tiny: -1 } })],
      ['other.json', JSON.stringify({ version: 2 })],
      ['huge.json', Buffer.alloc(1024 * 1024 + 1, 0x20)],
    ]
    for (const [name, body] of cases) {
      const file = join(dir, name)
      await writeFile(file, body)
      const a = new SeqAuthority({ file })
      assert.throws(
        () => a.next('tiny', 3),
        (err: unknown) => err instanceof SeqAuthorityError && err.code === 'ERR_SEQ_AUTHORITY',
        name,
      )
      await assert.rejects(a.reserve('tiny', 4), { code: 'ERR_SEQ_AUTHORITY' }, name)
      assert.deepEqual(await readFile(file), Buffer.from(body), `${name} left as it was`)
    }
  })

  test('a counter that cannot be written refuses the reservation and keeps the last good value', async (t) => {
    const dir = join(await tmpDir(t), 'fleet')
    await mkdir(dir)
    const file = join(dir, SEQ_FILE)
    const a = new SeqAuthority({ file })
    await a.reserve('tiny', 2)
    await rm(dir, { recursive: true }) // the fleet directory went away (an unmounted stick)
    await assert.rejects(a.reserve('tiny', 3), { code: 'ERR_SEQ_AUTHORITY' })
    assert.equal(a.next('tiny', 0), 3, 'still above the last seq written')
  })

  test('publishRelease signs the seq the counter allocates and reserves it first', async (t) => {
    const dir = await tmpDir(t)
    const fleet = makeFleet('seq-fleet')
    const store = new ModelStore({ dataDir: join(dir, 'data') })
    await store.start()
    t.after(() => store.stop())
    const seqs = new SeqAuthority({ file: join(dir, SEQ_FILE) })
    await seqs.reserve('tiny', 7) // signed before the data directory was lost
    const file = join(dir, 'tiny.gguf')
    await writeTinyGguf(file, { layers: 2, embd: 64 })
    const r = await publishRelease(
      { model: 'tiny', version: '2.0.0', file, policy: parsePolicyYaml(POLICIES.ONE_STAGE) },
      { store, signer: fleet.signer, fleet: fleet.id, highestSeq: () => 0, seqs },
    )
    assert.equal(r.manifest.seq, 8)
    assert.deepEqual((await counter(join(dir, SEQ_FILE))).seq, { tiny: 8 })
  })
})
