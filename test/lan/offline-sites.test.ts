/**
 * Two offline sites (issue #13, acceptance 1), real `llmesh` processes in two test beds: two
 * separate bridges of network namespaces with no link between them (mDNS inside each).
 *   site A: the seed (operator key) and 3 devices (`--site a`);
 *   site B: 3 devices (`--site b`) with a fleet directory holding no operator key, joined with
 *           invites the operator signed at head office before shipping them; no seed.
 * A release published at A is exported from a DEVICE of A (`llmesh release export`), a copy with
 * one byte flipped in one chunk file is refused at B and changes nothing, the intact bundle is
 * imported through one device of B and activates on all of B under its policy. Then B's evidence
 * goes back: `llmesh fleet report` on a device of B, `llmesh fleet report import` on A's seed,
 * and A's `device list --json` and `rollout status --json` show B's devices (site b) serving it.
 *
 * Acceptance 2, on the same two beds: a WAN link (a router namespace shaped to 5 Mbit/s) between
 * one device of A and one of B (the gateways). A's gateway listens on WebSockets (`--ws-port`) and
 * caps its WAN bytes (`--wan-rate 3Mbit`); B's dials it over `/ws` (`--bootstrap`). A release
 * published at A reaches every device of B, the bytes through the router are at most 1.15× the
 * file (the chunks cross once, then spread on B's LAN from B's gateway), the link never carries
 * more than the cap, and B's health reports reach A's seed over the link.
 */
import assert from 'node:assert/strict'
import { cp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { ReportImportResult } from '../../node/fleet/report-import.ts'
import type { ReleaseRolloutStatus } from '../../node/rollout/plan.ts'
import type { ReportIndex } from '../../protocols/fleet-report.ts'
import type { DeviceView } from '../../seed/devices.ts'
import { POLICIES, scaled } from '../helpers/index.ts'
import { inviteFor, type LanNode, startArgs } from './helpers.ts'
import { canRunBed, type Host, REPO_ROOT, TestBed, until } from './netns.ts'
import { getJson, publishTiny, type RolloutBed, serving, startRolloutBed, statusOf } from './rollout-bed.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'
/** `--wan-rate` of A's gateway: under the link's 5 Mbit/s, so the cap (not tc) sets the pace. */
const WAN_RATE = '3Mbit'
const WAN_RATE_BYTES = 375_000
/** Bytes/s of live traffic over the WAN link (1 s health reports of 7 nodes, gossip, pings), well under a transfer's. */
const QUIET_LINK_BPS = 40_000
const BIN = join(REPO_ROOT, 'cli', 'bin.ts')

/** `llmesh …` inside a namespace: exit code and output, never a throw. */
async function cliIn(bed: TestBed, host: Host, args: string[], timeoutMs = 120_000) {
  try {
    const r = await bed.exec(host, process.execPath, [BIN, ...args], timeoutMs)
    return { code: 0, ...r }
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) }
  }
}

describe('two offline sites: a release carried to B, its evidence carried back to A', {
  skip,
  timeout: scaled(300_000),
}, () => {
  let a: RolloutBed
  let bedB: TestBed
  const b: LanNode[] = []

  let fleetB = ''
  /** Starts (or restarts, same data dir and identity) device i of B; B's devices bootstrap to b0. */
  const startB = async (i: number, more: string[] = [], run = 1): Promise<LanNode> => {
    const host = bedB.hosts[i] as Host
    const dataDir = join(bedB.logDir, `data-b${i}`)
    const invite = await inviteFor(a.fleet.dir, dataDir) // signed at head office, shipped with the device
    const first = i === 0 ? undefined : b[0]
    const extra = [
      ...['--site', 'b', '--report-interval', '1s', '--invite', invite],
      ...(first === undefined ? [] : ['--bootstrap', `/ip4/${first.host.ip}/tcp/4001/p2p/${first.info.peerId}`]),
      ...more,
    ]
    const name = run === 1 ? `b${i}` : `b${i}-run${run}`
    const proc = bedB.llmesh(host, name, startArgs(host, { role: 'node', fleetDir: fleetB, dataDir, extra }), {
      LLMESH_LOG_LEVEL: 'info',
    })
    await until(
      () => proc.logs.some((l) => l.msg === 'llmesh node started') || proc.child.exitCode !== null,
      scaled(30_000),
      `${name} to start`,
    )
    if (proc.child.exitCode !== null) throw new Error(`${name} exited: ${proc.stderr}`)
    const info = JSON.parse(await readFile(join(dataDir, 'node.json'), 'utf8')) as LanNode['info']
    b[i] = { proc, host, dataDir, info }
    return b[i] as LanNode
  }

  before(async () => {
    a = await startRolloutBed({ tags: [['site:a'], ['site:a'], ['site:a']] })
    bedB = await TestBed.create({ hosts: 3 })
    // site B's fleet directory: the trust root and the join secret, no operator key
    fleetB = join(bedB.logDir, 'fleet-b')
    await cp(a.fleet.dir, fleetB, { recursive: true })
    for (const f of await readdir(fleetB)) if (f.includes('operator')) await rm(join(fleetB, f))
    for (let i = 0; i < 3; i++) await startB(i)
    await until(
      async () =>
        (await Promise.all(b.map((n) => statusOf(bedB, n)))).every(
          (s) => s.devices.filter((d) => d.enrolled).length >= b.length,
        ),
      scaled(90_000),
      'site B enrolled by its invites',
    )
  })

  after(async () => {
    await bedB?.destroy()
    await a?.bed.destroy()
  })

  test('exported from a device of A, imported at B, B activates it; B’s report shows at A', async () => {
    const t0 = Date.now()
    await publishTiny(a, '1.0.0', POLICIES.ONE_STAGE)
    await until(
      async () => (await Promise.all(a.devices.map((d) => statusOf(a.bed, d)))).every((s) => serving(s, '1.0.0')),
      scaled(120_000),
      'site A serving 1.0.0',
    )
    const tA = Date.now()
    const device = a.devices[0] as LanNode
    const stick = join(a.work, 'stick')
    const bundle = join(stick, 'tiny-1.0.0')
    const ex = await cliIn(a.bed, device.host, [
      'release',
      'export',
      'tiny@1.0.0',
      '--out',
      bundle,
      '--api',
      device.info.api,
    ])
    assert.equal(ex.code, 0, ex.stderr)
    const chunks = await readdir(join(bundle, 'chunks'))

    // a copy with one byte flipped in one chunk file: refused naming it, nothing changes at B
    const bad = join(stick, 'tampered')
    await cp(bundle, bad, { recursive: true })
    const victim = join(bad, 'chunks', chunks[0] as string)
    const bytes = await readFile(victim)
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0x01
    await writeFile(victim, bytes)
    const importer = b[0] as LanNode
    const refused = await cliIn(bedB, importer.host, ['release', 'import', bad, '--api', importer.info.api, '--json'])
    assert.notEqual(refused.code, 0)
    assert.match(refused.stderr, /ERR_BUNDLE_CHUNK_DIGEST/)
    assert.ok(refused.stderr.includes(`chunks/${chunks[0]}`), refused.stderr)
    for (const n of b) {
      const s = await statusOf(bedB, n)
      assert.equal(s.models.tiny?.active ?? null, null)
      assert.equal((s.rollout?.releases ?? []).length, 0)
    }

    const im = await cliIn(bedB, importer.host, ['release', 'import', bundle, '--api', importer.info.api])
    assert.equal(im.code, 0, im.stderr)
    await until(
      async () => (await Promise.all(b.map((n) => statusOf(bedB, n)))).every((s) => serving(s, '1.0.0')),
      scaled(120_000),
      'every device of site B serving 1.0.0',
    )
    const tB = Date.now()

    // B's evidence, carried back: exported on a device of B, imported on A's seed
    const back = join(bedB.logDir, 'stick', 'report-b')
    const other = b[2] as LanNode
    // wait until the device exporting holds a report of every device of B serving 1.0.0
    await until(
      async () => {
        const s = await statusOf(bedB, other)
        return b.every((n) => s.devices.find((d) => d.id === n.info.peerId)?.active.includes('tiny@1.0.0'))
      },
      scaled(60_000),
      'the exporting device of B knows every device of B serves 1.0.0',
    )
    const rep = await cliIn(bedB, other.host, ['fleet', 'report', '--out', back, '--api', other.info.api, '--json'])
    assert.equal(rep.code, 0, rep.stderr)
    assert.equal(JSON.parse(rep.stdout).site, 'b')
    // before the report, head office knows nothing of B
    const before = await cliIn(a.bed, a.seed.host, ['device', 'list', '--json', '--api', a.seed.info.api])
    const known = (JSON.parse(before.stdout) as { devices: DeviceView[] }).devices.map((d) => d.id)
    for (const n of b) assert.ok(!known.includes(n.info.peerId))
    // a copy with one byte flipped in one health report: that message refused and counted, the rest imported
    const index = JSON.parse(await readFile(join(back, 'report.json'), 'utf8')) as ReportIndex
    const hurt = index.messages.find((m) => m.type === 'HealthReport')?.file as string
    const badReport = join(bedB.logDir, 'stick', 'report-b-tampered')
    await cp(back, badReport, { recursive: true })
    const msg = await readFile(join(badReport, 'messages', hurt))
    msg[msg.length >> 1] = (msg[msg.length >> 1] as number) ^ 0x01
    await writeFile(join(badReport, 'messages', hurt), msg)
    const tampered = await cliIn(a.bed, a.seed.host, [
      ...['fleet', 'report', 'import', badReport, '--api', a.seed.info.api, '--json'],
    ])
    assert.equal(tampered.code, 0, tampered.stderr)
    const first = JSON.parse(tampered.stdout) as ReportImportResult
    assert.equal(first.site, 'b')
    assert.equal(first.messages, index.messages.length)
    assert.deepEqual(
      first.refused.map((r) => [r.file, r.code]),
      [[`messages/${hurt}`, 'ERR_REPORT_DIGEST']],
    )
    assert.ok(first.accepted > 0)
    assert.equal(first.accepted + first.duplicate, index.messages.length - 1)
    // the intact report: only the refused message is new
    const imp = await cliIn(a.bed, a.seed.host, ['fleet', 'report', 'import', back, '--api', a.seed.info.api, '--json'])
    assert.equal(imp.code, 0, imp.stderr)
    const res = JSON.parse(imp.stdout) as ReportImportResult
    assert.deepEqual([res.accepted, res.rejected], [1, 0], JSON.stringify(res.refused))
    const devicesSeen = new Set([...first.devices, ...res.devices])
    for (const n of b) assert.ok(devicesSeen.has(n.info.peerId), `${n.info.peerId} among ${[...devicesSeen]}`)

    const list = await cliIn(a.bed, a.seed.host, ['device', 'list', '--json', '--api', a.seed.info.api])
    assert.equal(list.code, 0, list.stderr)
    const devices = (JSON.parse(list.stdout) as { devices: DeviceView[] }).devices
    for (const n of b) {
      const d = devices.find((x) => x.id === n.info.peerId)
      assert.ok(d !== undefined, `${n.info.peerId} listed at A`)
      assert.equal(d.site, 'b')
      assert.equal(d.enrolled, true)
      assert.deepEqual(d.active, ['tiny@1.0.0'])
    }
    for (const n of a.devices) assert.equal(devices.find((x) => x.id === n.info.peerId)?.site, 'a')
    const bySite = await cliIn(a.bed, a.seed.host, [
      'device',
      'list',
      '--site',
      'b',
      '--json',
      '--api',
      a.seed.info.api,
    ])
    assert.deepEqual(
      (JSON.parse(bySite.stdout) as { devices: DeviceView[] }).devices.map((d) => d.id).sort(),
      b.map((n) => n.info.peerId).sort(),
    )

    const st = await cliIn(a.bed, a.seed.host, ['rollout', 'status', '--json', '--api', a.seed.info.api])
    assert.equal(st.code, 0, st.stderr)
    const parsed = JSON.parse(st.stdout) as { releases: ReleaseRolloutStatus[] }
    const r = parsed.releases.find((x) => x.model === 'tiny' && x.version === '1.0.0')
    assert.ok(r !== undefined, st.stdout)
    console.log(
      `# rollout at A: ${JSON.stringify({ state: r.state, prestaged: r.prestaged, cohorts: r.cohorts, verdicts: r.verdicts.map((v) => v.device) })}`,
    )
    const inScope = Object.values(r.cohorts).flat()
    for (const n of b) assert.ok(inScope.includes(n.info.peerId), `${n.info.peerId} in A's cohorts`)
    assert.ok(!b.some((n) => r.prestaged.missing.includes(n.info.peerId)), JSON.stringify(r.prestaged))
    // A's 3 devices and B's 3 hold the release: the outcome at B counted at A
    assert.deepEqual([r.prestaged.devices, r.prestaged.of], [6, 6], JSON.stringify(r.prestaged))
    console.log(
      `# publish→A serving ${tA - t0} ms, export+import→B serving ${tB - tA} ms, report round trip ${Date.now() - tB} ms, ${chunks.length} chunks, ${first.accepted + res.accepted} messages imported`,
    )
  })
  test('linked over a 5 Mbit/s WAN: a release published at A reaches all of B, crossing once, capped', async (t) => {
    const t0 = Date.now()
    const gwA = a.devices[0] as LanNode
    const link = await a.bed.wanLink(gwA.host, (b[0] as LanNode).host, '5mbit')
    // A's gateway: WebSockets on 4002 and a WAN cap under the link's rate; B's dials it over /ws
    await a.bed.terminate(gwA.proc)
    // (the gateways report every 5 s: the beds' 1 s reports are live traffic the link carries too)
    const gw = await a.startDevice(0, ['--ws-port', '4002', '--wan-rate', WAN_RATE, '--report-interval', '5s'])
    await bedB.terminate((b[0] as LanNode).proc)
    const gwB = await startB(
      0,
      ['--bootstrap', `/ip4/${link.ip}/tcp/4002/ws/p2p/${gw.info.peerId}`, '--report-interval', '5s'],
      2,
    )
    await until(
      async () => (await statusOf(bedB, gwB)).peers.includes(gw.info.peerId),
      scaled(60_000),
      "B's gateway connected to A's over the WAN link",
    )
    // the link is a WebSocket connection (A's gateway accepted it on 4002 from B's gateway)
    const ss = await a.bed.exec(gw.host, 'ss', ['-Htn', 'state', 'established', '( sport = :4002 )'])
    assert.ok(ss.stdout.includes(link.otherIp), ss.stdout)
    await until(
      async () =>
        (await Promise.all(b.slice(1).map((n) => statusOf(bedB, n)))).every((s) => s.peers.includes(gwB.info.peerId)),
      scaled(60_000),
      "B's devices reconnected to B's gateway",
    )
    // the link first carries each site's history the other lacks (A's and B's earlier reports, by
    // anti-entropy): wait until it is down to live traffic before counting the release's bytes
    let last = { t: performance.now(), bytes: await link.bytes() }
    let quiet = 0
    await until(
      async () => {
        const now = { t: performance.now(), bytes: await link.bytes() }
        if (now.t - last.t < 2000) return false
        quiet = (now.bytes - last.bytes) / ((now.t - last.t) / 1000)
        last = now
        return quiet < QUIET_LINK_BPS
      },
      scaled(90_000),
      'the WAN link carrying live traffic only',
    )
    const tLinked = Date.now()
    // the router's counters every second while the release crosses: the cap bounds every window
    const samples: Array<{ t: number; bytes: number }> = []
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        samples.push({ t: performance.now(), bytes: await link.bytes() })
        await new Promise((r) => setTimeout(r, 1000))
      }
    })()
    const before = await link.bytes()
    const tBefore = performance.now()
    await publishTiny(a, '2.0.0', POLICIES.ONE_STAGE, { layers: 2, embd: 256, seed: 2 })
    const size = (await stat(join(a.work, 'tiny-2.0.0.gguf'))).size
    // the bytes through the link when B's gateway holds the whole file, then when all of B serves it
    let atGateway: number | undefined
    let gatewayS = 0
    await until(
      async () => {
        const all = await Promise.all(b.map((n) => statusOf(bedB, n)))
        const g = all[0]?.models.tiny
        if (atGateway === undefined && (g?.staged.includes('2.0.0') || g?.active === '2.0.0')) {
          atGateway = (await link.bytes()) - before
          gatewayS = (performance.now() - tBefore) / 1000
        }
        return all.every((s) => serving(s, '2.0.0'))
      },
      scaled(240_000),
      'every device of site B serving 2.0.0',
    )
    const tB = Date.now()
    const crossed = (await link.bytes()) - before
    const toGateway = atGateway ?? crossed
    sampling = false
    await sampler
    const tAfter = performance.now()
    // B's health reports reach A's seed over the link: each B device reported serving 2.0.0
    await until(
      async () => {
        const devices = (await getJson<{ devices: DeviceView[] }>(a.bed, a.seed, '/devices')).devices
        return b.every((n) => devices.find((d) => d.id === n.info.peerId)?.active.includes('tiny@2.0.0'))
      },
      scaled(60_000),
      "B's health reports at A's seed",
    )
    const afterRate = ((await link.bytes()) - before - crossed) / ((performance.now() - tAfter) / 1000)
    let peak = 0
    for (let i = 0; i < samples.length; i++) {
      const j = samples.findIndex((x) => x.t - (samples[i] as { t: number }).t >= 4000)
      if (j < 0) break
      const x = samples[i] as { t: number; bytes: number }
      const y = samples[j] as { t: number; bytes: number }
      peak = Math.max(peak, (y.bytes - x.bytes) / ((y.t - x.t) / 1000))
    }
    console.log(
      `# WAN: file ${size} B, crossed ${toGateway} B (${(toGateway / size).toFixed(3)}×) until B's gateway held it, ${crossed} B (${(crossed / size).toFixed(3)}×) until all of B served it, live traffic before ${Math.round(quiet)} B/s, after ${Math.round(afterRate)} B/s, peak ${Math.round(peak)} B/s over 4 s (cap ${WAN_RATE_BYTES} B/s, link 625000 B/s), link+restarts ${tLinked - t0} ms, publish→B serving ${tB - tLinked} ms`,
    )
    // the chunks crossed once, to B's gateway (B had no other way to get them) ... The counters also
    // hold the live traffic of those seconds (reports, anti-entropy), at the rate measured before:
    // a loaded machine's slower transfer carries more of it (a hog run: 36 s, 1.153x with it)
    const live = Math.round(quiet * (gatewayS || (performance.now() - tBefore) / 1000))
    t.diagnostic(`live traffic allowed for until B's gateway held the file: ${live} B (${gatewayS.toFixed(1)} s)`)
    assert.ok(toGateway >= size, 'the release crossed the link')
    assert.ok(
      toGateway - live <= 1.15 * size,
      `${toGateway} bytes crossed the WAN link for a ${size}-byte file (${live} B of them live traffic)`,
    )
    // ... and B's other devices got them on B's LAN: another copy over the link would be 1× more
    assert.ok(crossed - toGateway < 0.25 * size, `${crossed - toGateway} more bytes crossed while B's LAN spread it`)
    assert.ok(peak <= 1.25 * WAN_RATE_BYTES, `peak ${Math.round(peak)} B/s over the cap ${WAN_RATE_BYTES}`)
  })
})
