/**
 * kill -9 at seeded random points (issue #17, goal 6): ≥ 30 trials spread over download, assembly
 * and activation of a new version over the active one, 30 versions in a row on one device. After each kill the restarted
 * node finds `active` naming a complete file matching its signed sha256 (never missing, never
 * corrupt), no leftovers, and resumes: the download continues from the blocks already stored and
 * the trial ends with v2 verified and active. The seed is printed: LLMESH_KILL_SEED=<n> replays it.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { hashFile } from '../../node/install/assemble.ts'
import { Installer } from '../../node/install/installer.ts'
import { silentLogger } from '../../node/logger.ts'
import { blockInventory, releaseBlocks } from '../../node/store/fetcher.ts'
import { LEGACY_CHUNKING } from '../../node/store/lineage-chunking.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { prng, writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { scaled } from '../helpers/index.ts'
import { cleanup, startPeer, type TestPeer } from '../mesh/distribution-helpers.ts'
import { makeRelease } from './install-fixtures.ts'

const CHILD = join(import.meta.dirname, 'install-trials-child.ts')
const TRIALS = 30
const PHASES = ['download', 'assembly', 'activation'] as const
/** An assembly trial's kill comes up to this long after `download 100%`, ms (assembly of these files takes longer). */
const ASSEMBLY_KILL_MS = 3

/** Runs the child: `waitLine` resolves when a stdout line matches `re` (rejects if it exits first or after `ms`). */
function spawnChild(args: object) {
  const child = spawn(process.execPath, [CHILD, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: string[] = []
  let buf = ''
  const waiters = new Set<() => void>()
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString()
    const parts = buf.split('\n')
    buf = parts.pop() ?? ''
    lines.push(...parts)
    for (const w of [...waiters]) w()
  })
  // 'close', not 'exit': the lines a child wrote just before it died are all read by then
  const exited = new Promise<void>((r) => child.once('close', () => r()))
  const waitExit = (ms: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child still running after ${ms} ms`)), ms)
      exited.then(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  const waitLine = (re: RegExp, ms: number) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no line ${re} within ${ms} ms`)), ms)
      const check = () => {
        const hit = lines.find((l) => re.test(l))
        if (hit !== undefined) done(null, hit)
      }
      const done = (err: Error | null, line?: string) => {
        clearTimeout(timer)
        waiters.delete(check)
        if (err) reject(err)
        else resolve(line as string)
      }
      waiters.add(check)
      exited.then(() => setTimeout(() => done(new Error(`child exited before ${re}`)), 50))
      check()
    })
  return { child, lines, waitLine, waitExit, exited }
}

async function kill9(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await exited
}

/** What a restarted node finds: `active` names a verified file, no leftovers. Returns the active version. */
async function restartCheck(
  dev: TestPeer,
  where: string,
  allowed: string[],
): Promise<{ installer: Installer; active: string }> {
  const installer = new Installer({ store: dev.store, logger: silentLogger() }, { dataDir: dev.dataDir })
  await installer.start()
  const mdir = join(dev.dataDir, 'models', 'tiny')
  const entries = await readdir(mdir)
  assert.ok(!entries.some((e) => e.startsWith('.tmp-')), `${where}: tmp links left: ${entries}`)
  for (const v of entries.filter((e) => /^\d/.test(e))) {
    const files = await readdir(join(mdir, v))
    assert.ok(!files.includes('model.gguf.partial') && !files.includes('manifest.json.tmp'), `${where}: ${files}`)
  }
  const active = (await installer.status()).tiny?.active
  assert.ok(typeof active === 'string' && allowed.includes(active), `${where}: active is ${active}`)
  const m = JSON.parse(await readFile(join(mdir, active, 'manifest.json'), 'utf8')) as ReleaseManifest
  assert.equal((await hashFile(join(mdir, active, 'model.gguf'))).sha256, m.file.sha256, `${where}: active corrupt`)
  return { installer, active }
}

test(`kill -9 in ${TRIALS} seeded trials over download, assembly and activation`, async (t) => {
  const seed = Number(process.env.LLMESH_KILL_SEED ?? Math.floor(Math.random() * 2 ** 31))
  t.diagnostic(`LLMESH_KILL_SEED=${seed}`)
  const rand = prng(seed)
  const root = await mkdtemp(join(tmpdir(), 'kill-trials-'))
  const peers: TestPeer[] = []
  t.after(async () => {
    await cleanup(peers)
    await rm(root, { recursive: true, force: true })
  })
  const src = await startPeer('trials-seed')
  peers.push(src)
  const seedAddr = src.libp2p.getMultiaddrs()[0]
  // one device through every trial: trial k installs version 1.k.0 over 1.(k-1).0
  const version = (k: number) => `1.${k}.0`
  const files: string[] = []
  const releases: ReleaseManifest[] = []
  for (let k = 0; k <= TRIALS; k++) {
    files.push(join(src.dataDir, `v${k}.gguf`))
    await writeTinyGguf(files[k], { layers: 3, embd: 192, seed: 100 + k })
    // 16/64/256 KiB chunks, as before new lineages got 32/128/256: with half the blocks the download
    // is over before the kills meant for it land (0 of 30 trials killed during it in one run)
    releases.push(await makeRelease(src.store, 'tiny', version(k), files[k], {}, { chunking: LEGACY_CHUNKING }))
  }
  const dataDir = join(root, 'device')
  const first = await startPeer('trials-dev', dataDir)
  await first.libp2p.dial(seedAddr)
  const inst0 = new Installer({ store: first.store, logger: silentLogger() }, { dataDir })
  await inst0.start()
  await inst0.prestage(releases[0])
  await inst0.activate('tiny', version(0))
  await first.stop()

  const phasesHit = new Map<string, number>()
  for (let trial = 1; trial <= TRIALS; trial++) {
    const phase = PHASES[trial % PHASES.length]
    const where = `trial ${trial} (${phase}, LLMESH_KILL_SEED=${seed})`
    const m = releases[trial]
    const allowed = [version(trial - 1), version(trial)]
    // download and assembly: the child kills itself, timed from its own log (install-trials-child.ts);
    // activation: the test kills it, at a random time while it flips active back and forth
    const killOn =
      phase === 'download'
        ? { msg: `download ${10 * (1 + Math.floor(rand() * 9))}%`, delayMs: 0 }
        : phase === 'assembly'
          ? { msg: 'download 100%', delayMs: rand() * ASSEMBLY_KILL_MS }
          : undefined
    const c = spawnChild({ dataDir, seedAddr: seedAddr.toString(), manifest: m, killOn })
    try {
      if (killOn !== undefined) await c.waitExit(scaled(60_000))
      else {
        await c.waitLine(/"msg":"release staged"/, scaled(60_000))
        await new Promise((r) => setTimeout(r, rand() * 100))
      }
    } finally {
      await kill9(c.child, c.exited)
    }
    // the phase the child was really in when it died
    const said = c.lines.filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { msg: string }).msg)
    const at = said.includes('release staged') ? 'activation' : said.includes('download 100%') ? 'assembly' : 'download'
    phasesHit.set(at, (phasesHit.get(at) ?? 0) + 1)

    const dev = await startPeer(`trial${trial}`, dataDir)
    peers.push(dev)
    const { installer } = await restartCheck(dev, where, allowed)
    const { have } = await blockInventory(await dev.store.feed(m.chunks.feed), releaseBlocks(m.chunks))
    if (at === 'download') assert.ok(have.length > 0, `${where}: nothing kept of the download to resume from`)
    await dev.libp2p.dial(seedAddr)
    await installer.prestage(m)
    await installer.activate('tiny', version(trial))
    const after = await restartCheck(dev, `${where}, after resuming`, allowed)
    assert.equal(after.active, version(trial), `${where}: not active after resuming`)
    assert.deepEqual(
      await readFile(join(dataDir, 'models/tiny', version(trial), 'model.gguf')),
      await readFile(files[trial]),
      `${where}: installed file differs`,
    )
    await dev.stop()
  }
  t.diagnostic(`killed during: ${[...phasesHit].map(([p, n]) => `${p} ${n}`).join(', ')}`)
  for (const p of PHASES) assert.ok((phasesHit.get(p) ?? 0) >= 3, `few kills during ${p}: ${[...phasesHit]}`)
})
