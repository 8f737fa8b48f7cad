import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { DowngradeError, VersionExistsError } from '../../seed/errors.ts'
import { uploadName } from '../../seed/publish-query.ts'
import { checkVersion, type KnownRelease, preflightManifest } from '../../seed/release-checks.ts'
import { checkGgufStart } from '../../seed/upload.ts'
import { exampleRelease } from '../fixtures/messages.ts'

const KNOWN: KnownRelease[] = [
  { model: 'tiny', version: '1.0.0+gguf-q4_0', seq: 1 },
  { model: 'tiny', version: '1.2.0+gguf-q4_K_M', seq: 2 },
  { model: 'other', version: '9.0.0', seq: 1 },
]

describe('seed publish checks', () => {
  test('a model@version is published once, whatever the flags', () => {
    for (const allow of [false, true]) {
      assert.throws(
        () => checkVersion('tiny', '1.0.0+gguf-q4_0', KNOWN, allow),
        (e: unknown) => {
          assert.ok(e instanceof VersionExistsError)
          assert.equal(e.code, 'ERR_VERSION_EXISTS')
          assert.match(e.message, /^tiny@1\.0\.0\+gguf-q4_0 is already published \(seq 1\)/)
          assert.doesNotMatch(e.message, /\n/)
          return true
        },
      )
    }
  })

  test('below the highest precedence is a downgrade; allowed only on request, and then recorded', () => {
    assert.throws(
      () => checkVersion('tiny', '1.1.0+gguf-f16', KNOWN),
      (e: unknown) => {
        assert.ok(e instanceof DowngradeError)
        assert.equal(e.code, 'ERR_DOWNGRADE')
        assert.match(e.message, /1\.2\.0\+gguf-q4_K_M/)
        return true
      },
    )
    assert.throws(() => checkVersion('tiny', '1.2.0-rc.1', KNOWN), DowngradeError)
    assert.deepEqual(checkVersion('tiny', '1.1.0+gguf-f16', KNOWN, true), { downgradeFrom: '1.2.0+gguf-q4_K_M' })
  })

  test('higher versions, other models and other builds of the highest core are not downgrades', () => {
    assert.deepEqual(checkVersion('tiny', '1.3.0', KNOWN), {})
    assert.deepEqual(checkVersion('tiny', '1.2.0+gguf-Q8_0', KNOWN), {})
    assert.deepEqual(checkVersion('tiny', '1.2.0', KNOWN), {})
    assert.deepEqual(checkVersion('other2', '0.0.1', KNOWN), {})
    assert.deepEqual(checkVersion('tiny', '0.1.0', []), {})
    assert.throws(() => checkVersion('tiny', 'one', KNOWN), { code: 'ERR_INVALID_INPUT' })
  })

  test('the preflight refuses each bad field by name, before any file is read', () => {
    const ctx = { fleet: 'test-fleet', seq: 1, now: 1_700_000_000_000 }
    const ok = { model: 'tiny', version: '1.0.0' }
    preflightManifest(ok, ctx)
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ model: 'Bad Name' }, /model/],
      [{ version: '1.0' }, /version/],
      [{ runtime: 'not-a-range' }, /runtime/],
      [{ architectures: ['sparc'] }, /architectures/],
      [{ minRamMb: 1.5 }, /min_ram_mb/],
      [{ approvedBy: [''] }, /approved_by/],
      [{ ttlMs: 0 }, /ttl/],
      [{ ttlMs: Number.NaN }, /ttl/],
    ]
    for (const [over, re] of cases) {
      assert.throws(
        () => preflightManifest({ ...ok, ...over } as Parameters<typeof preflightManifest>[0], ctx),
        (e: unknown) => (e as { code: string }).code === 'ERR_INVALID_INPUT' && re.test((e as Error).message),
        JSON.stringify(over),
      )
    }
    // the agent's release name and its package feeds (llmesh-agent-<arch>) are not model names
    for (const model of ['llmesh-agent', 'llmesh-agent-x64']) {
      assert.throws(() => preflightManifest({ ...ok, model }, ctx), {
        code: 'ERR_RESERVED_NAME',
        message: /reserved for agent releases/,
      })
    }
  })

  test('the manifest schema: downgrade is optional, and its from must be a version', () => {
    assert.equal(ReleaseManifest.safeParse(exampleRelease()).success, true)
    assert.equal(
      ReleaseManifest.safeParse({ ...exampleRelease(), downgrade: { from: '2.0.0+gguf-q4_0' } }).success,
      true,
    )
    assert.equal(ReleaseManifest.safeParse({ ...exampleRelease(), downgrade: { from: 'two' } }).success, false)
    assert.equal(ReleaseManifest.safeParse({ ...exampleRelease(), downgrade: {} }).success, false)
  })

  test('GGUF start check and client file names', () => {
    const head = Buffer.alloc(8)
    head.writeUInt32LE(0x46554747, 0)
    head.writeUInt32LE(3, 4)
    checkGgufStart(head, 'm.gguf')
    head.writeUInt32LE(99, 4)
    assert.throws(() => checkGgufStart(head, 'm.gguf'), { code: 'ERR_GGUF_UNSUPPORTED_VERSION' })
    assert.throws(() => checkGgufStart(Buffer.from('PK\x03\x04zip!'), 'a.zip'), {
      code: 'ERR_GGUF_BAD_MAGIC',
      message: /^a\.zip: not a GGUF file/,
    })
    assert.throws(() => checkGgufStart(Buffer.from('GGUF'), 'short'), { code: 'ERR_GGUF_BAD_MAGIC' })
    assert.equal(uploadName('/home/op/models/tiny.gguf'), 'tiny.gguf')
    assert.equal(uploadName('C:\\models\\tiny q4.gguf'), 'tiny_q4.gguf')
    assert.equal(uploadName(undefined), 'upload')
    assert.equal(uploadName('x'.repeat(500)).length, 128)
  })
})
