/**
 * `llmesh release publish --probes` through a real seed (loopback, mDNS off): the probe set lands
 * inline in the signed manifest, named by provenance.validation_dataset; a bad probe file is
 * refused by the CLI before any upload, a bad header or a quality gate without probes by the seed
 * before anything is written; a set near its 64 KiB bound fits the request head.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { loadFleet } from '../../node/fleet/index.ts'
import { silentLogger } from '../../node/logger.ts'
import { encodeProbeHeader } from '../../protocols/probe-file.ts'
import { MAX_PROBE_SET_BYTES, probeSetDigest, type ReleaseManifest } from '../../protocols/schemas/index.ts'
import { createSeedDaemon, type SeedDaemon } from '../../seed/seed-daemon.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { cli, scaled } from '../helpers/index.ts'

const PROBES_YAML = `id: smoke
generation: { max_tokens: 8 }
probes:
  - prompt: The capital of France is
    reference: " Paris"
`
const GATED = `
stages:
  - { name: all, percent: 100 }
gates:
  quality: { min_agreement: 0.9 }
`

describe('release publish --probes on a seed', { timeout: scaled(300_000) }, () => {
  let home: string
  let seed: SeedDaemon
  let api: string
  let model: string
  const seqOf = () => seed.context.store.highestReleaseSeq('tiny')

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'llmesh-probes-'))
    const fleetDir = join(home, 'fleet')
    const init = await cli(['fleet', 'init', fleetDir, '--fleet-id', 'probe-fleet'])
    assert.equal(init.code, 0, init.stderr)
    const fl = await loadFleet(fleetDir)
    seed = createSeedDaemon({
      fleet: { id: fl.root.fleet, psk: fl.swarmKey, trust: fl.root },
      dataDir: join(home, 'seed'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      api: '127.0.0.1:0',
      mdns: false,
      logger: silentLogger(),
      signer: fl.operatorSigner!,
    })
    await seed.start()
    api = String(seed.apiUrl)
    model = join(home, 'tiny.gguf')
    await writeTinyGguf(model)
  })
  after(async () => {
    await seed?.stop()
    await rm(home, { recursive: true, force: true })
  })
  const publish = (version: string, ...extra: string[]) =>
    cli(['release', 'publish', model, '--model', 'tiny', '--version', version, '--api', api, '--json', ...extra])

  test('the probe set is carried inline in the signed manifest and named by its digest', async () => {
    const file = join(home, 'probes.yaml')
    await writeFile(file, PROBES_YAML)
    const policy = join(home, 'gated.yaml')
    await writeFile(policy, GATED)
    const r = await publish('1.0.0', '--probes', file, '--policy', policy)
    assert.equal(r.code, 0, r.stderr)
    const m = (JSON.parse(r.stdout) as { manifest: ReleaseManifest }).manifest
    assert.deepEqual(m.probes, {
      id: 'smoke',
      generation: { greedy: true, max_tokens: 8 },
      probes: [{ prompt: 'The capital of France is', reference: ' Paris' }],
    })
    assert.deepEqual(m.provenance.validation_dataset, { id: 'smoke', digest: probeSetDigest(m.probes!) })
    // what the fleet holds is the verified, signed manifest with its probes
    assert.deepEqual(seed.context.store.releases().find((x) => x.message.version === '1.0.0')?.message.probes, m.probes)
  })

  test('a bad probe file is refused by the CLI, naming it, before any upload', async () => {
    const before = seqOf()
    const bad = join(home, 'bad.yaml')
    await writeFile(bad, `id: x\nprobes:\n  - prompt: "${'a'.repeat(2049)}"\n    reference: b\n`)
    const r = await publish('2.0.0', '--probes', bad)
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /bad\.yaml: probes\.0\.prompt: .*2048.*\[ERR_INVALID_INPUT\]/)
    assert.equal(seqOf(), before)
  })

  test('the seed refuses a bad probe header and a quality gate without probes before writing anything', async () => {
    const before = seqOf()
    const body = new Uint8Array(await readFile(model))
    const post = async (headers: Record<string, string>) => {
      const res = await fetch(`${api}/releases?model=tiny&version=3.0.0`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', ...headers },
        body,
      })
      return { status: res.status, body: (await res.json()) as { error: { code: string; message: string } } }
    }
    const junk = await post({ 'x-llmesh-probes': Buffer.from('{"id":"x","probes":[]}').toString('base64') })
    assert.equal(junk.status, 400)
    assert.equal(junk.body.error.code, 'ERR_INVALID_INPUT')
    const gated = await post({ 'x-llmesh-policy': Buffer.from(GATED).toString('base64') })
    assert.equal(gated.status, 400)
    assert.match(gated.body.error.message, /quality gate/)
    assert.equal(seqOf(), before)
  })

  test('a probe set near its 64 KiB bound travels in the request head', async () => {
    const probes = Array.from({ length: 32 }, (_, i) => ({
      prompt: `${i} ${'p'.repeat(990)}`,
      reference: 'r'.repeat(900),
    }))
    const set = { id: 'big', generation: { greedy: true as const, max_tokens: 64 }, probes }
    const header = encodeProbeHeader(set)
    assert.ok(header.length > 64 * 1024 && header.length < (MAX_PROBE_SET_BYTES * 4) / 3 + 8, `${header.length}`)
    const file = join(home, 'big.json')
    await writeFile(file, JSON.stringify(set))
    const r = await publish('4.0.0', '--probes', file)
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as { manifest: ReleaseManifest }).manifest.probes?.probes.length, 32)
  })
})
