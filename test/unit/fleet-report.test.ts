/**
 * Fleet reports (protocols/fleet-report.ts, node/fleet/report-*.ts, cli/commands/fleet-report.ts):
 * a site's signed messages written to a directory as their exact wire bytes and imported into
 * another node through its own ingest (real message stores, the fleet verifier, the CLI's writer
 * and upload). The hostile cases: a message file with one byte flipped, one altered and renamed to
 * its new hash, a report of another fleet, frames not listed, sent twice, torn or past the bounds;
 * each is refused with its stable code, and a refused message never stops the rest.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { parseSince, reportUpload, writeReport } from '../../cli/commands/fleet-report.ts'
import { declaredTags } from '../../node/daemon.ts'
import { planReport, reportStream } from '../../node/fleet/report-export.ts'
import { importReport } from '../../node/fleet/report-import.ts'
import { silentLogger } from '../../node/logger.ts'
import { createFleetVerifier } from '../../node/mesh/fleet-verifier.ts'
import { Ingest } from '../../node/mesh/ingest.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { fleetDevices } from '../../protocols/fleet/device-view.ts'
import {
  MAX_REPORT_INDEX_BYTES,
  messageFile,
  ReportError,
  type ReportIndex,
  reportFrameHeader,
  reportHead,
  SiteName,
  siteOf,
  splitReportStream,
} from '../../protocols/fleet-report.ts'
import { signDeviceMessage } from '../../protocols/index.ts'
import type { HealthReport } from '../../protocols/schemas/index.ts'
import { suiteTmpDir } from '../helpers/index.ts'
import { command, enrollment, makeFleet, type TestFleet } from '../mesh/fixtures.ts'

const root = suiteTmpDir('llmesh-report-')
const fleet = makeFleet('report-fleet')
let dirs = 0

/** A node's message store behind its ingest (the path gossip and anti-entropy use). */
function node(f: TestFleet = fleet) {
  const store = new MessageStore({ logger: silentLogger() }, {})
  const verify = createFleetVerifier({ trust: f.trust, store })
  const ingest = new Ingest({ store, verify, logger: silentLogger() }, {})
  return { store, ingest: (b: Uint8Array) => ingest.ingest(b, 'import'), counters: ingest.counters }
}
type Node = ReturnType<typeof node>

async function report(key: Awaited<ReturnType<typeof generateKeyPair>>, seq: number, site: string, now = Date.now()) {
  const msg: HealthReport = {
    type: 'HealthReport',
    v: 1,
    fleet: fleet.id,
    device: peerIdFromPrivateKey(key).toString(),
    seq,
    window: { start: now - 60_000, end: now },
    meta: { device_type: 'test', tags: declaredTags(['lab'], site), runtime_version: '3.21.1', uptime_s: 10 },
    active: [{ model: 'tiny', version: '1.0.0' }],
    hardware: { cpu_pct: 1, ram_pct: 2, ram_total_mb: 1024 },
    inference: [],
    events: [],
  }
  return signDeviceMessage(msg, key)
}

/** Site B: two enrolled devices with a report each, and an operator command. */
async function siteB() {
  const b = node()
  const keys = [await generateKeyPair('Ed25519'), await generateKeyPair('Ed25519')]
  const ids = keys.map((k) => peerIdFromPrivateKey(k).toString())
  for (const id of ids) assert.equal((await b.ingest(await enrollment(fleet, id))).status, 'accepted')
  for (const [i, k] of keys.entries()) assert.equal((await b.ingest(await report(k, i + 1, 'b'))).status, 'accepted')
  assert.equal((await b.ingest(await command(fleet))).status, 'accepted')
  return { b, ids, keys }
}

/** `fleet report --out` of a node, through the CLI's writer. */
async function exportDir(n: Node, since?: number) {
  const out = join(root, `report-${dirs++}`)
  const plan = planReport({ messages: n.store, fleet: fleet.id, self: 'node-b1', site: 'b' }, since)
  const { index } = await writeReport(out, reportStream(plan))
  return { out, index }
}

/** `fleet report import` of a directory into a node, through the CLI's upload. */
async function importDir(dir: string, into: Node, f = fleet) {
  const up = await reportUpload(dir)
  return importReport(Readable.from(up.body), { ingest: into.ingest, fleet: f.id })
}

function importBytes(bytes: Uint8Array, into: Node) {
  return importReport(Readable.from([Buffer.from(bytes)]), { ingest: into.ingest, fleet: fleet.id })
}

async function refusedWith(p: Promise<unknown>, code: string, file?: string) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ReportError, String(err))
    assert.equal(err.code, code, err.message)
    if (file !== undefined) assert.ok(err.message.startsWith(file), err.message)
    return true
  })
}

describe('fleet reports', () => {
  test('a report carries every signed message as its wire bytes; head office learns the site and its devices', async () => {
    const { b, ids } = await siteB()
    const { out, index } = await exportDir(b)
    assert.equal(index.site, 'b')
    assert.deepEqual(
      index.messages.map((m) => m.type),
      ['DeviceEnrollment', 'DeviceEnrollment', 'OperatorCommand', 'HealthReport', 'HealthReport'],
    )
    // each file holds a stored message's exact wire bytes, named by their sha256
    for (const m of b.store.list('HealthReport')) {
      const file = createHash('sha256').update(m.bytes).digest('hex')
      assert.ok(index.messages.some((e) => e.file === file))
      assert.deepEqual(new Uint8Array(await readFile(join(out, messageFile(file)))), new Uint8Array(m.bytes))
    }
    const a = node()
    const res = await importDir(out, a)
    assert.equal(res.site, 'b')
    assert.deepEqual([res.messages, res.accepted, res.duplicate, res.rejected], [5, 5, 0, 0])
    assert.deepEqual(res.devices, [...ids].sort())
    assert.deepEqual(res.by_type, { DeviceEnrollment: 2, OperatorCommand: 1, HealthReport: 2 })
    // the byte-exact messages: the same ids at head office
    for (const m of b.store.list('HealthReport')) assert.ok(a.store.has(m.digest))
    // the device view at head office labels them by the site their signed reports declare
    const view = fleetDevices({
      enrollments: a.store.list('DeviceEnrollment').map((m) => ({ message: m.message, digest: m.digest })),
      revocations: [],
      reports: a.store.list('HealthReport').map((m) => m.message),
      now: Date.now(),
    })
    assert.deepEqual(
      view.map((d) => [d.id, d.site, d.active]),
      [...ids].sort().map((id) => [id, 'b', ['tiny@1.0.0']]),
    )
    // again: every message already known, a directory exported twice keeps its files
    const again = await importDir(out, a)
    assert.deepEqual([again.accepted, again.duplicate, again.rejected], [0, 5, 0])
    const plan = planReport({ messages: b.store, fleet: fleet.id, self: 'x' })
    assert.equal((await writeReport(out, reportStream(plan))).kept, 5)
  })

  test('one byte flipped in a message file: that message is refused and counted, the rest imported', async () => {
    const { b, keys } = await siteB()
    const { out, index } = await exportDir(b)
    const victim = index.messages.find((m) => m.type === 'HealthReport')?.file as string
    const path = join(out, messageFile(victim))
    const bytes = await readFile(path)
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0x01
    await writeFile(path, bytes)
    const a = node()
    const res = await importDir(out, a)
    assert.deepEqual([res.accepted, res.rejected], [4, 1])
    assert.deepEqual(
      res.refused.map((r) => [r.file, r.code]),
      [[messageFile(victim), 'ERR_REPORT_DIGEST']],
    )
    assert.equal(a.store.list('HealthReport').length, 1)
    // altered and renamed to the hash of its new bytes: the signature refuses it
    const env = JSON.parse(Buffer.from(await report(keys[0] as never, 9, 'b')).toString('utf8'))
    const payload = Buffer.from(env.payload, 'base64').toString('utf8')
    assert.ok(payload.includes('"seq":9'))
    env.payload = Buffer.from(payload.replace('"seq":9', '"seq":8')).toString('base64')
    const forged = Buffer.from(JSON.stringify(env))
    const name = createHash('sha256').update(forged).digest('hex')
    await writeFile(join(out, messageFile(name)), forged)
    const ix = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as ReportIndex
    ix.messages.push({ file: name, type: 'HealthReport', bytes: forged.byteLength })
    ix.bytes += forged.byteLength
    await writeFile(join(out, 'report.json'), JSON.stringify(ix))
    const res2 = await importDir(out, node())
    assert.equal(res2.accepted, 4)
    assert.deepEqual(
      res2.refused.map((r) => r.code).sort(),
      ['ERR_REPORT_DIGEST', res2.refused.find((r) => r.file === messageFile(name))?.code].sort(),
    )
    assert.equal(res2.refused.find((r) => r.file === messageFile(name))?.code, 'ERR_BAD_SIGNATURE')
  })

  test('a report whose health reports come before their enrollments is imported whole (retried)', async () => {
    const { b } = await siteB()
    const { out, index } = await exportDir(b)
    index.messages.reverse()
    await writeFile(join(out, 'report.json'), JSON.stringify(index))
    const a = node()
    const res = await importDir(out, a)
    assert.deepEqual([res.accepted, res.rejected], [5, 0])
  })

  test('since: what the node received since, and every membership message', async () => {
    const { b } = await siteB()
    const later = Date.now() + 60_000
    const plan = planReport({ messages: b.store, fleet: fleet.id, self: 'x' }, later)
    assert.deepEqual(
      plan.index.messages.map((m) => m.type),
      ['DeviceEnrollment', 'DeviceEnrollment'],
    )
    assert.equal(plan.index.since, later)
  })

  test('hostile streams are refused with their codes', async () => {
    const { b } = await siteB()
    const plan = planReport({ messages: b.store, fleet: fleet.id, self: 'x' })
    const good = reportStream(plan)
    const a = node()
    // another fleet's report: refused whole, nothing stored
    const other = makeFleet('other-fleet')
    const { out } = await exportDir(b)
    await refusedWith(importDir(out, node(other), other), 'ERR_REPORT_FLEET', 'report.json')
    // a head past its bound, a head that is not an index, a torn stream
    const big = Buffer.alloc(4)
    big.writeUInt32BE(MAX_REPORT_INDEX_BYTES + 1)
    await refusedWith(importBytes(big, a), 'ERR_REPORT_TOO_LARGE', 'report.json')
    await refusedWith(importBytes(Buffer.from([0, 0, 0, 2, 0x7b, 0x7d]), a), 'ERR_REPORT_FORMAT', 'report.json')
    await refusedWith(importBytes(good.subarray(0, good.byteLength - 10), a), 'ERR_REPORT_FORMAT')
    // a frame the index does not list, a frame sent twice
    const head = reportHead(plan.index)
    const first = plan.messages[0] as { file: string; bytes: Uint8Array }
    const unlisted = Buffer.concat([head, reportFrameHeader('f'.repeat(64), 3), Buffer.from('abc')])
    await refusedWith(importBytes(unlisted, a), 'ERR_REPORT_FORMAT', messageFile('f'.repeat(64)))
    const frame = Buffer.concat([reportFrameHeader(first.file, first.bytes.byteLength), first.bytes])
    await refusedWith(importBytes(Buffer.concat([head, frame, frame]), a), 'ERR_REPORT_FORMAT', messageFile(first.file))
    // an index whose byte total lies, an index listing a file twice
    const lying = { ...plan.index, bytes: plan.index.bytes + 1 }
    await refusedWith(importBytes(reportHead(lying), a), 'ERR_REPORT_FORMAT', 'report.json')
    const twice = { ...plan.index, messages: [...plan.index.messages, plan.index.messages[0]] }
    assert.throws(() => splitReportStream(reportHead(twice as ReportIndex)), ReportError)
    // the first message stood on its own before the torn frame: it stays
    assert.ok(a.store.has(b.store.list('DeviceEnrollment')[0]?.digest as string))
    // the exporter's stream splits back into exactly its messages
    const split = splitReportStream(good)
    assert.deepEqual(
      split.frames.map((f) => f.file),
      plan.messages.map((m) => m.file),
    )
    // a missing file is skipped by the upload and named
    await rename(join(out, messageFile(first.file)), join(out, 'gone'))
    const up = await reportUpload(out)
    const res = await importReport(Readable.from(up.body), { ingest: node().ingest, fleet: fleet.id })
    assert.deepEqual(up.missing, [messageFile(first.file)])
    assert.equal(res.messages, 4)
  })

  test('sites: names, the site tag, --since', async () => {
    assert.equal(siteOf(['lab', 'site:warehouse-7']), 'warehouse-7')
    assert.equal(siteOf(['lab']), null)
    assert.deepEqual(declaredTags(['lab', 'site:b'], 'b'), ['lab', 'site:b'])
    assert.deepEqual(declaredTags(undefined, 'b'), ['site:b'])
    assert.ok(SiteName.safeParse('warehouse-7').success)
    for (const bad of ['', 'Upper', 'a b', 'x'.repeat(59), '-x']) assert.ok(!SiteName.safeParse(bad).success, bad)
    const now = 1_800_000_000_000
    assert.equal(await parseSince('2h', now), now - 7_200_000)
    assert.equal(await parseSince('2026-12-04T00:00:00Z', now), Date.parse('2026-12-04T00:00:00Z'))
    assert.equal(await parseSince(String(now - 5), now), now - 5)
    await assert.rejects(parseSince('yesterday', now), /--since/)
  })
})
