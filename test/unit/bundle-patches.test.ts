/**
 * The bundle's patched dependencies (packaging/bundle-patches.ts): localeCompare calls rewritten to
 * a code-unit comparison that sorts the same strings the same way, the real package copied and
 * patched without touching node_modules, and a package that changed fails the build.
 */
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, test } from 'node:test'
import { CODE_UNIT_COMPARE_PATCHES, codeUnitCompare, patchPackages } from '../../packaging/bundle-patches.ts'
import { tmpDir } from '../helpers/index.ts'

const REPO_ROOT = resolve(import.meta.dirname, '..', '..')

describe('bundle patches', () => {
  test('codeUnitCompare rewrites the call shapes peer-store uses, and sorts as the original does', () => {
    const src = [
      'xs.sort((a, b) => { return a.localeCompare(b); })',
      'ys.sort((a, b) => { return a.multiaddr.toString().localeCompare(b.multiaddr.toString()); })',
    ].join('\n')
    const { source, replaced } = codeUnitCompare(src)
    assert.equal(replaced, 2)
    assert.ok(!source.includes('localeCompare'), source)
    const xs = [
      '/ip4/10.0.0.2/tcp/4001',
      '/ip4/10.0.0.10/tcp/4001',
      '/ip6/::1/tcp/1',
      '/dns4/a/tcp/2',
      '/ip4/1.2.3.4/udp/9',
    ]
    const ys = xs.map((s) => ({ multiaddr: { toString: () => s } }))
    const run = new Function('xs', 'ys', `${source}; return [xs, ys.map((y) => y.multiaddr.toString())]`)
    const [sortedXs, sortedYs] = run([...xs], ys) as [string[], string[]]
    const byLocale = [...xs].sort((a, b) => a.localeCompare(b))
    assert.deepEqual(sortedXs, byLocale, 'multiaddrs sort the same by code unit as by locale')
    assert.deepEqual(sortedYs, byLocale)
    assert.deepEqual(codeUnitCompare('no calls here'), { source: 'no calls here', replaced: 0 })
  })

  test('patchPackages patches a copy of the installed package and leaves node_modules alone', async (t) => {
    const scratch = await tmpDir(t, 'bundle-patch-')
    const alias = patchPackages(REPO_ROOT, scratch)
    for (const p of CODE_UNIT_COMPARE_PATCHES) {
      assert.equal(alias[p.pkg], join(scratch, 'node_modules', p.pkg, p.entry))
      for (const file of Object.keys(p.files)) {
        assert.ok(!readFileSync(join(scratch, 'node_modules', p.pkg, file), 'utf8').includes('.localeCompare('))
        assert.ok(readFileSync(join(REPO_ROOT, 'node_modules', p.pkg, file), 'utf8').includes('.localeCompare('))
      }
    }
  })

  test('a package whose calls changed fails the patch (the build) instead of shipping unpatched', async (t) => {
    const app = await tmpDir(t, 'bundle-patch-app-')
    for (const p of CODE_UNIT_COMPARE_PATCHES) {
      for (const file of Object.keys(p.files)) {
        const path = join(app, 'node_modules', p.pkg, file)
        mkdirSync(join(path, '..'), { recursive: true })
        writeFileSync(path, 'export const sorted = (xs) => xs.sort(Intl.Collator().compare)\n')
      }
    }
    assert.throws(() => patchPackages(app, join(app, 'scratch')), /localeCompare calls to rewrite, expected/)
  })
})
