import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { initFleet, loadFleet, rotateFleetKey, sha256File } from '../../node/fleet/index.ts'
import {
  applyRootChain,
  createOperatorSigner,
  generateOperatorKey,
  signOperatorBundle,
  signOperatorMessage,
} from '../../protocols/index.ts'
import { makeTinyGgufBuffer } from '../fixtures/gguf-writer.ts'
import { DAY, exampleRelease } from '../fixtures/messages.ts'
import { cli, suiteTmpDir } from '../helpers/index.ts'

const dir = suiteTmpDir('llmesh-fleet-')
describe('fleet directory', () => {
  test('init writes the trust root (public) and both secrets (0600) and loads back', async () => {
    const d = join(dir, 'a')
    const f = await initFleet(d, { fleetId: 'acme-fleet' })
    assert.equal(f.root.fleet, 'acme-fleet')
    assert.equal((await stat(join(d, 'operator.key'))).mode & 0o777, 0o600)
    assert.equal((await stat(join(d, 'swarm.key'))).mode & 0o777, 0o600)
    assert.match(
      await readFile(join(d, 'swarm.key'), 'utf8'),
      /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}$/,
    )
    const loaded = await loadFleet(d)
    assert.deepEqual(loaded.root, f.root)
    assert.equal(loaded.operatorSigner?.keyid, f.root.keys[0].keyid)
    assert.equal(loaded.chain.length, 1)
  })

  test('init refuses to overwrite an existing fleet', async () => {
    const d = join(dir, 'b')
    await initFleet(d)
    const before = await readFile(join(d, 'operator.key'), 'utf8')
    await assert.rejects(initFleet(d), (e: { code?: string }) => e.code === 'ERR_FLEET_EXISTS')
    assert.equal(await readFile(join(d, 'operator.key'), 'utf8'), before)
  })

  test('load without operator.key gives a device view; missing or tampered files are clear errors', async () => {
    const d = join(dir, 'c')
    await initFleet(d)
    await rm(join(d, 'operator.key'))
    const f = await loadFleet(d)
    assert.equal(f.operatorSigner, undefined)
    await assert.rejects(loadFleet(join(dir, 'nope')), (e: { code?: string }) => e.code === 'ERR_FLEET_MISSING')
    const file = JSON.parse(await readFile(join(d, 'trust-root.json'), 'utf8'))
    // swap in a foreign key: the signed chain no longer matches
    file.root.keys = [generateOperatorKey().key]
    await writeFile(join(d, 'trust-root.json'), JSON.stringify(file))
    await assert.rejects(loadFleet(d), (e: { code?: string }) => e.code === 'ERR_FLEET_INVALID')
    await writeFile(join(d, 'trust-root.json'), '{not json')
    await assert.rejects(loadFleet(d), (e: { code?: string }) => e.code === 'ERR_FLEET_INVALID')
  })

  test('rotate-key: root v2 signed by old and new key, old key kept, devices on v1 follow the chain', async () => {
    const d = join(dir, 'r')
    const v1 = await initFleet(d)
    const oldSigner = v1.operatorSigner
    const f = await rotateFleetKey(d)
    assert.equal(f.root.version, 2)
    assert.notEqual(f.root.keys[0].keyid, v1.root.keys[0].keyid)
    assert.equal(createOperatorSigner(await readFile(join(d, 'operator.key.1'), 'utf8')).keyid, oldSigner?.keyid)
    const loaded = await loadFleet(d)
    assert.equal(loaded.root.version, 2)
    assert.equal(loaded.operatorSigner?.keyid, f.root.keys[0].keyid)
    const device = applyRootChain(v1.root, loaded.chain.slice(1), Date.now())
    assert.ok(device.ok)
    assert.deepEqual(device.root, loaded.root)
  })

  test('sha256File streams the digest and size', async () => {
    const p = join(dir, 'x.bin')
    const buf = makeTinyGgufBuffer({ layers: 1, embd: 16 })
    await writeFile(p, buf)
    assert.deepEqual(await sha256File(p), { sha256: createHash('sha256').update(buf).digest('hex'), size: buf.length })
  })
})

describe('llmesh fleet / llmesh verify (CLI)', () => {
  let fleetDir = ''
  let model = ''
  let wirePath = ''
  let rawPath = ''
  before(async () => {
    fleetDir = join(dir, 'cli-fleet')
    const r = await cli(['fleet', 'init', fleetDir, '--fleet-id', 'cli-fleet', '--json'])
    assert.equal(r.code, 0, r.stderr)
    model = join(dir, 'tiny.gguf')
    const buf = makeTinyGgufBuffer({ layers: 1, embd: 16 })
    await writeFile(model, buf)
    const { operatorSigner } = await loadFleet(fleetDir)
    assert.ok(operatorSigner)
    const base = exampleRelease()
    const manifest = exampleRelease({
      fleet: 'cli-fleet',
      file: { ...base.file, size: buf.length, sha256: createHash('sha256').update(buf).digest('hex') },
      created_at: Date.now() - 1000,
      expires_at: Date.now() + DAY,
    })
    wirePath = join(dir, 'release.wire.json')
    await writeFile(wirePath, await signOperatorMessage(manifest, operatorSigner))
    rawPath = join(dir, 'release.sigstore.json')
    await writeFile(rawPath, JSON.stringify(await signOperatorBundle(manifest, operatorSigner), null, 2))
  })

  test('auto_enroll is off by default; --auto-enroll turns it on and fleet show warns about it', async () => {
    const off = await cli(['fleet', 'show', fleetDir])
    assert.equal(off.code, 0, off.stderr)
    assert.doesNotMatch(off.stdout, /WARNING/)
    assert.match(off.stdout, /enrollment by invite/)
    assert.equal((await loadFleet(fleetDir)).root.auto_enroll, false)
    const lab = join(dir, 'lab-fleet')
    assert.equal((await cli(['fleet', 'init', lab, '--auto-enroll'])).code, 0)
    const on = await cli(['fleet', 'show', lab])
    assert.match(on.stdout, /WARNING: auto_enroll is on/)
    assert.equal(
      (JSON.parse((await cli(['fleet', 'show', lab, '--json'])).stdout) as { auto_enroll: boolean }).auto_enroll,
      true,
    )
  })

  test('fleet init --json prints the summary; a second init fails with one stderr line', async () => {
    const show = await cli(['fleet', 'show', fleetDir, '--json'])
    assert.equal(show.code, 0)
    assert.equal(JSON.parse(show.stdout).fleet, 'cli-fleet')
    const again = await cli(['fleet', 'init', fleetDir])
    assert.equal(again.code, 1)
    assert.match(again.stderr, /refusing to overwrite.*\[ERR_FLEET_EXISTS\]\n$/)
    assert.equal(again.stderr.trim().split('\n').length, 1)
  })

  test('verify accepts the file with a wire envelope or a raw Sigstore bundle', async () => {
    for (const b of [wirePath, rawPath]) {
      const r = await cli(['verify', model, '--bundle', b, '--fleet', fleetDir, '--json'])
      assert.equal(r.code, 0, r.stderr)
      const out = JSON.parse(r.stdout)
      assert.equal(out.model, 'tiny-llama')
      assert.equal(
        out.sha256,
        createHash('sha256')
          .update(await readFile(model))
          .digest('hex'),
      )
    }
  })

  test('verify says why it fails: flipped file byte, foreign fleet', async () => {
    const bad = join(dir, 'tampered.gguf')
    const buf = await readFile(model)
    buf[100] ^= 0x01
    await writeFile(bad, buf)
    const r = await cli(['verify', bad, '--bundle', wirePath, '--fleet', fleetDir])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /\[ERR_DIGEST_MISMATCH\]\n$/)
    const other = join(dir, 'other-fleet')
    assert.equal((await cli(['fleet', 'init', other])).code, 0)
    const r2 = await cli(['verify', model, '--bundle', wirePath, '--fleet', other])
    assert.equal(r2.code, 1)
    assert.match(r2.stderr, /\[ERR_UNKNOWN_SIGNER\]/)
  })

  test('verify after rotate-key (runs last): the old key no longer verifies, the new one does', async () => {
    const r = await cli(['fleet', 'rotate-key', fleetDir, '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).version, 2)
    const v = await cli(['verify', model, '--bundle', wirePath, '--fleet', fleetDir])
    assert.equal(v.code, 1)
    assert.match(v.stderr, /\[ERR_UNKNOWN_SIGNER\]/)
    const { operatorSigner } = await loadFleet(fleetDir)
    assert.ok(operatorSigner)
    const old = JSON.parse(await readFile(rawPath, 'utf8'))
    const manifest = JSON.parse(Buffer.from(old.dsseEnvelope.payload, 'base64').toString()).predicate
    const resigned = join(dir, 'release-v2.wire.json')
    await writeFile(resigned, await signOperatorMessage(manifest, operatorSigner))
    const ok = await cli(['verify', model, '--bundle', resigned, '--fleet', fleetDir])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, new RegExp(`signed by ${operatorSigner.keyid}`))
  })
})
