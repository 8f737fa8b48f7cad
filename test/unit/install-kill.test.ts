/**
 * kill -9 at random moments during activation and during a download, then restart: `active`
 * always names a complete, verified file, no temporary files pile up, and the download resumes
 * from the blocks already stored.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { hashFile } from '../../node/install/assemble.ts'
import { Installer } from '../../node/install/installer.ts'
import { silentLogger } from '../../node/logger.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { tmpDir } from '../helpers/index.ts'
import { cleanup, startPeer } from '../mesh/distribution-helpers.ts'
import { makeRelease } from './install-fixtures.ts'

const CHILD = join(import.meta.dirname, 'install-kill-child.ts')

function run(args: object): { child: ChildProcess; lines: string[]; waitFor: (re: RegExp) => Promise<string> } {
  const child = spawn(process.execPath, [CHILD, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: string[] = []
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = []
  let buf = ''
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString()
    let i = buf.indexOf('\n')
    while (i >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      lines.push(line)
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve(line)
        }
      }
      i = buf.indexOf('\n')
    }
  })
  const waitFor = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const hit = lines.find((l) => re.test(l))
      if (hit) return resolve(hit)
      waiters.push({ re, resolve })
      child.once('exit', (code) => setTimeout(() => reject(new Error(`child exited (${code}) before ${re}`)), 50))
    })
  return { child, lines, waitFor }
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill('SIGKILL')
  })
}

/** Checks the install tree as a restarted node sees it. */
async function checkIntact(dataDir: string, model: string): Promise<string | null> {
  const store = new ModelStore({ dataDir })
  const installer = new Installer({ store, logger: silentLogger() }, { dataDir })
  await installer.start() // opens the store (installed files are adopted as block sources): close it below
  try {
    return await checkTree(dataDir, model, installer)
  } finally {
    await store.stop()
  }
}

async function checkTree(dataDir: string, model: string, installer: Installer): Promise<string | null> {
  const entries = await readdir(join(dataDir, 'models', model))
  assert.ok(!entries.some((e) => e.startsWith('.tmp-')), `tmp links left after start(): ${entries}`)
  for (const v of entries.filter((e) => /^\d/.test(e))) {
    assert.ok(!(await readdir(join(dataDir, 'models', model, v))).includes('model.gguf.partial'))
  }
  const st = (await installer.status())[model]
  if (st.active === null) return null
  const m = JSON.parse(
    await readFile(join(dataDir, 'models', model, st.active, 'manifest.json'), 'utf8'),
  ) as ReleaseManifest
  const got = await hashFile(join(dataDir, 'models', model, st.active, 'model.gguf'))
  assert.equal(got.sha256, m.file.sha256, 'active file does not match its signed sha256')
  return st.active
}

describe('kill -9', () => {
  test('during activation: active always names a verified file', async (t) => {
    const dataDir = await tmpDir(t, 'kill-act-')
    const store = new ModelStore({ dataDir })
    await store.start()
    const installer = new Installer({ store, logger: silentLogger() }, { dataDir })
    await installer.start()
    for (const [i, v] of ['1.0.0', '1.1.0', '1.2.0'].entries()) {
      const f = join(dataDir, `v${i}.gguf`)
      await writeTinyGguf(f, { layers: 2, embd: 64, seed: 1, perturbLayer: i % 2 })
      await installer.prestage(await makeRelease(store, 'tiny', v, f))
    }
    await installer.activate('tiny', '1.0.0')
    await store.stop()
    const seen = new Set<string>()
    for (let round = 0; round < 8; round++) {
      const r = run({ mode: 'activate', dataDir })
      await r.waitFor(/^ready$/)
      await new Promise((res) => setTimeout(res, 5 + Math.random() * 60))
      await killed(r.child)
      const active = await checkIntact(dataDir, 'tiny')
      assert.ok(active !== null)
      seen.add(active)
    }
    assert.ok(seen.size >= 1)
  })

  test('during download: resumes from stored blocks, active stays intact', async (t) => {
    const seed = await startPeer('kill-seed')
    const dataDir = await tmpDir(t, 'kill-dl-')
    try {
      const f1 = join(seed.dataDir, 'v1.gguf')
      const f2 = join(seed.dataDir, 'v2.gguf')
      await writeTinyGguf(f1, { layers: 2, embd: 64, seed: 1 })
      await writeTinyGguf(f2, { layers: 6, embd: 320, seed: 2 })
      const m1 = await makeRelease(seed.store, 'tiny', '1.0.0', f1)
      const m2 = await makeRelease(seed.store, 'tiny', '2.0.0', f2)
      const seedAddr = seed.libp2p.getMultiaddrs()[0].toString()
      const first = run({ mode: 'download', dataDir, seedAddr, manifest: m1 })
      await first.waitFor(/^done$/)
      await new Promise((res) => first.child.once('exit', res))
      assert.equal(await checkIntact(dataDir, 'tiny'), '1.0.0')

      const resumedFrom: number[] = []
      for (let round = 0; round < 3; round++) {
        const r = run({ mode: 'download', dataDir, seedAddr, manifest: m2 })
        resumedFrom.push(Number((await r.waitFor(/^start-have /)).split(' ')[1]))
        await r.waitFor(/^have [1-9]/)
        await new Promise((res) => setTimeout(res, Math.random() * 100))
        await killed(r.child)
        const active = await checkIntact(dataDir, 'tiny')
        assert.ok(active === '1.0.0' || active === '2.0.0', `active ${active}`)
      }
      const last = run({ mode: 'download', dataDir, seedAddr, manifest: m2 })
      resumedFrom.push(Number((await last.waitFor(/^start-have /)).split(' ')[1]))
      await last.waitFor(/^done$/)
      await new Promise((res) => last.child.once('exit', res))
      assert.ok(
        resumedFrom.slice(1).some((n) => n > 0),
        `restarts began with ${resumedFrom} blocks: nothing resumed`,
      )
      assert.equal(await checkIntact(dataDir, 'tiny'), '2.0.0')
      assert.deepEqual(await readFile(join(dataDir, 'models/tiny/2.0.0/model.gguf')), await readFile(f2))
    } finally {
      await cleanup([seed])
    }
  })
})
