import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import semver from 'semver'
import { ReleaseManifest } from '../../protocols/schemas/index.ts'
import {
  compareVersions,
  compareVersionsTotal,
  highestVersion,
  isVersion,
  parseVersion,
} from '../../protocols/version.ts'
import { exampleRelease } from '../fixtures/messages.ts'

const BUILDS = ['q4_0', 'q4_K_M', 'f16', 'Q8_0']

describe('release versions (build metadata may hold _)', () => {
  test('builds semver.valid() refuses parse here, with core and build split', () => {
    for (const b of BUILDS) {
      const v = `1.3.0+gguf-${b}`
      assert.equal(semver.valid(v) === null, b.includes('_'), `semver.valid on ${v}`) // why this module exists
      const p = parseVersion(v)
      assert.ok(p, v)
      assert.equal(p.core, '1.3.0')
      assert.equal(p.build, `gguf-${b}`)
      assert.deepEqual([p.major, p.minor, p.patch], [1, 3, 0])
    }
    assert.deepEqual(parseVersion('2.0.0-rc.1+b_1.x')?.prerelease, ['rc', 1])
  })

  test('invalid versions are refused', () => {
    for (const v of [
      '',
      '1.0',
      'v1.0.0',
      '01.0.0',
      '1.0.0+',
      '1.0.0+a..b',
      '1.0.0+a b',
      '1.0.0-',
      `1.0.0+${'a'.repeat(130)}`,
    ]) {
      assert.equal(isVersion(v), false, v)
    }
    assert.throws(() => compareVersions('1.0', '1.0.0'), TypeError)
  })

  test('precedence ignores build metadata; prerelease sorts before release', () => {
    assert.ok(compareVersions('1.3.0+gguf-q4_0', '1.2.9+gguf-Q8_0') > 0)
    assert.ok(compareVersions('1.3.0-rc.1+gguf-f16', '1.3.0+gguf-f16') < 0)
    assert.ok(compareVersions('1.10.0+gguf-q4_K_M', '1.9.0+gguf-q4_K_M') > 0)
    for (const a of BUILDS) for (const b of BUILDS) assert.equal(compareVersions(`1.3.0+${a}`, `1.3.0+${b}`), 0)
    assert.equal(compareVersions('1.3.0', '1.3.0+gguf-q4_0'), 0)
  })

  test('total order: builds of one core are distinct and deterministic', () => {
    const vs = ['1.3.0+gguf-q4_K_M', '1.3.0+gguf-f16', '1.2.0+gguf-Q8_0', '1.3.0', '1.3.0+gguf-q4_0', '1.3.0-rc.1']
    const sorted = [...vs].sort(compareVersionsTotal)
    assert.deepEqual(sorted, [
      '1.2.0+gguf-Q8_0',
      '1.3.0-rc.1',
      '1.3.0',
      '1.3.0+gguf-f16',
      '1.3.0+gguf-q4_0',
      '1.3.0+gguf-q4_K_M',
    ])
    assert.deepEqual([...vs].reverse().sort(compareVersionsTotal), sorted)
    assert.equal(compareVersionsTotal('1.3.0+gguf-q4_0', '1.3.0+gguf-q4_0'), 0)
    assert.equal(highestVersion(vs), '1.3.0+gguf-q4_K_M')
    assert.equal(highestVersion([]), undefined)
  })

  test('the manifest schema accepts exactly what parseVersion accepts', () => {
    for (const v of ['1.3.0+gguf-q4_0', '1.3.0+gguf-q4_K_M', '1.0.0', 'x', '1.0.0+a..b']) {
      const ok = ReleaseManifest.safeParse({ ...exampleRelease(), version: v }).success
      assert.equal(ok, isVersion(v), v)
    }
  })
})
