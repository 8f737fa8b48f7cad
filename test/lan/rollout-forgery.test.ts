/**
 * Issue 6: forged health reports change nothing, with real `llmesh` processes in network
 * namespaces and forgeries sent over gossip by bare mesh peers (test/lan/injector.ts).
 * Seed + 4 devices; the pilot cohort is {d1, d2} and `min_reports: 2`. d2 is stopped before v1 is
 * published, so the pilot stage holds at 1 of 2 voters: ONE counted forged vote would promote it,
 * ONE counted forged failure would abort it. While d2 is away the injectors publish:
 * - stored by the mesh (well signed) but worthless to the gates: a report signed by a fresh
 *   unenrolled key (claims v1 and failures); a report by an enrolled device outside the cohort
 *   (d3, signed with its own key: claims v1 and failures);
 * - ignored as duplicates: exact replays of d1's and d2's genuine reports;
 * - refused with a warn line on every node: reports for d1 (failures) and d2 (a v1 vote) signed
 *   by the stranger's key; d1's and d2's genuine reports replayed with tampered payloads (a
 *   failure, a v1 vote) under their original signatures.
 * Every node stays at the pilot stage with 1 of 2 voters, no verdict; d2 comes back and v1 goes
 * to full with promotions only.
 */

import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { generateKeyPair, privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { PAYLOAD_TYPE_DEVICE, TOPIC_HEALTH } from '../../protocols/constants.ts'
import {
  canonicalBytes,
  fromBase64,
  type HealthReport,
  messageIdOfWire,
  pae,
  sha256Hex,
  signDeviceMessage,
  toBase64,
} from '../../protocols/index.ts'
import { scaled } from '../helpers/index.ts'
import { decisionsLater, injectorDone, type LanNode, startInjector } from './helpers.ts'
import { badLines, canRunBed, until } from './netns.ts'
import { publishTiny, type RolloutBed, rolloutOf, serving, startRolloutBed, statusOf } from './rollout-bed.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'
const V = '1.0.0'
const POLICY = `
stages:
  - { name: pilot, tags: [pilot], window: 3s }
  - { name: full, percent: 100 }
gates:
  restarts: { max: 3, per: 5m }
  ooms: { max: 0 }
  min_reports: 2
exclude_tags: [seed]
`
const FAILING = { restarts: 9, ooms: 2, load_failures: 1, probe_failures: 1, rollbacks: 1 }

interface DiskLine {
  d: string
  m: HealthReport
  w: string
}

describe('forged health reports (network namespaces)', { skip, timeout: scaled(280_000) }, () => {
  let rb: RolloutBed
  const retired: LanNode[] = []

  /** The genuine reports a node stored, newest seq last. */
  const storedReports = async (n: LanNode, device: string): Promise<DiskLine[]> =>
    (await readFile(join(n.dataDir, 'messages.jsonl'), 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as DiskLine)
      .filter((l) => l.m.type === 'HealthReport' && l.m.device === device)
      .sort((a, b) => a.m.seq - b.m.seq)
  const storedDigests = async (n: LanNode): Promise<string> => readFile(join(n.dataDir, 'messages.jsonl'), 'utf8')
  /** The refusal log line of wire bytes (named by their sha256: a refused message may have no id). */
  const rejectedOn = (n: LanNode, wire: string) =>
    n.proc.logs.find((l) => l.msg === 'message rejected' && l.wire === wire && l.level === 40)

  before(async () => {
    rb = await startRolloutBed({ tags: [['pilot'], ['pilot'], [], []] })
  })

  after(async () => {
    await rb?.bed.destroy()
  })

  test('unenrolled, impersonating, out-of-cohort, replayed and tampered reports change nothing', async () => {
    const { bed, seed, fleet, work } = rb
    const [d1, d2, d3, d4] = rb.devices
    // d2's last genuine report, then d2 goes away (on purpose, cleanly)
    await until(async () => (await storedReports(seed, d2.info.peerId)).length > 0, 30_000, 'a report of d2')
    const stop = await bed.terminate(d2.proc)
    assert.equal(stop.code, 0)
    retired.push(d2)
    const d2Old = (await storedReports(seed, d2.info.peerId)).at(-1)!

    await publishTiny(rb, V, POLICY)
    const running = [seed, d1, d3, d4]
    // held by the quorum alone: the window is over, d1 votes, d2 does not
    await until(
      async () => {
        const rs = await Promise.all(running.map((n) => rolloutOf(bed, n, V)))
        return rs.every(
          (r) =>
            r?.stage === 0 &&
            r.gate?.reporters === 1 &&
            r.gate.required === 2 &&
            r.gate.figures.find((f) => f.gate === 'window_ms')?.pass === true,
        )
      },
      90_000,
      'v1 pilot held at 1 of 2 voters on every node',
    )
    const createdAt = (await rolloutOf(bed, seed, V))!.stageStartedAt!

    const report = (device: string, seq: number, counts?: typeof FAILING): HealthReport => ({
      type: 'HealthReport',
      v: 1,
      fleet: fleet.root.fleet,
      device,
      seq,
      window: { start: createdAt + 1, end: Date.now() },
      meta: { device_type: 'test', tags: ['pilot'], runtime_version: '3.21.1', uptime_s: 100 },
      active: [{ model: 'tiny', version: V }],
      hardware: { cpu_pct: 1, ram_pct: 1, ram_total_mb: 1024 },
      inference: [],
      events: counts === undefined ? [] : [{ model: 'tiny', version: V, counts }],
    })
    /** A device envelope whose payload names `msg.device` but is signed by `key` (any key). */
    const signedAs = async (msg: HealthReport, key: PrivateKey): Promise<Uint8Array> => {
      const payload = canonicalBytes(msg)
      const sig = await key.sign(pae(PAYLOAD_TYPE_DEVICE, payload))
      const signer = peerIdFromPrivateKey(key).toString()
      return canonicalBytes({ kind: 'device', type: msg.type, signer, payload: toBase64(payload), sig: toBase64(sig) })
    }
    /** A genuine envelope with its payload changed and its original signature kept. */
    const tampered = (wire: string, change: (m: HealthReport) => HealthReport): Uint8Array => {
      const env = JSON.parse(Buffer.from(fromBase64(wire)).toString('utf8')) as { payload: string }
      const m = JSON.parse(Buffer.from(fromBase64(env.payload)).toString('utf8')) as HealthReport
      return canonicalBytes({ ...env, payload: toBase64(canonicalBytes(change(m))) })
    }
    const stranger = await generateKeyPair('Ed25519')
    const strangerId = peerIdFromPrivateKey(stranger).toString()
    const d3Key = privateKeyFromProtobuf(await readFile(join(d3.dataDir, 'identity.key')))
    const d1Now = (await storedReports(seed, d1.info.peerId)).at(-1)!
    const d3Seq = (await storedReports(seed, d3.info.peerId)).at(-1)!.m.seq
    const forged = {
      unenrolled: await signDeviceMessage(report(strangerId, 1, FAILING), stranger),
      outOfCohort: await signDeviceMessage(report(d3.info.peerId, d3Seq + 50, FAILING), d3Key),
      replayD1: fromBase64(d1Now.w),
      replayD2: fromBase64(d2Old.w),
      asD1: await signedAs(report(d1.info.peerId, d1Now.m.seq + 50, FAILING), stranger),
      asD2: await signedAs(report(d2.info.peerId, d2Old.m.seq + 50), stranger),
      tamperedD1: tampered(d1Now.w, (m) => ({ ...m, events: [{ model: 'tiny', version: V, counts: FAILING }] })),
      tamperedD2: tampered(d2Old.w, (m) => ({ ...report(d2.info.peerId, m.seq + 1), meta: m.meta })),
    }
    const files: Record<string, string> = {}
    for (const [name, bytes] of Object.entries(forged)) {
      files[name] = join(work, `forged-${name}.json`)
      await writeFile(files[name], bytes)
    }
    const wire = (name: keyof typeof forged) => sha256Hex(forged[name])
    const id = (name: keyof typeof forged) => messageIdOfWire(forged[name])
    const dial = running.map((n) => `/ip4/${n.host.ip}/tcp/4001/p2p/${n.info.peerId}`)
    const inject = (name: string, which: Array<keyof typeof forged>) =>
      startInjector(bed, bed.hosts[0], name, [
        ...['--fleet', fleet.dir, '--min-subscribers', String(running.length)],
        ...dial.flatMap((a) => ['--dial', a]),
        ...which.flatMap((k) => ['--publish', `${TOPIC_HEALTH}=${files[k]}`]),
      ])
    // gossipsub graylists a peer after its second invalid message: two invalid ones per injector
    const injectors = [
      inject('injector-a', ['unenrolled', 'outOfCohort', 'replayD1', 'replayD2', 'asD1', 'asD2']),
      inject('injector-b', ['tamperedD1', 'tamperedD2']),
    ]
    for (const p of injectors) {
      const events = await injectorDone(p, 60_000)
      const published = events.filter((e) => e.event === 'published')
      assert.equal(published.length, p.name === 'injector-a' ? 6 : 2, JSON.stringify(events))
      assert.ok(
        published.every((e) => (e.recipients as number) >= running.length),
        JSON.stringify(events),
      )
    }

    // the forgeries arrived: refused ones with a warn line on every node, the other stored
    // (an unenrolled key's well-signed report is refused before it is stored or forwarded)
    const refused = {
      unenrolled: 'ERR_NOT_ENROLLED',
      // signed by a key no device holds: its signer is refused as unenrolled before any signature work
      asD1: 'ERR_NOT_ENROLLED',
      asD2: 'ERR_NOT_ENROLLED',
      tamperedD1: 'ERR_BAD_SIGNATURE',
      tamperedD2: 'ERR_BAD_SIGNATURE',
    } as const
    await until(
      async () => {
        for (const n of running) {
          for (const name of Object.keys(refused) as Array<keyof typeof refused>) {
            if (rejectedOn(n, wire(name)) === undefined) return false
          }
          const stored = await storedDigests(n)
          if (!stored.includes(id('outOfCohort')) || stored.includes(id('unenrolled'))) return false
        }
        return true
      },
      30_000,
      'every node refused the forged signatures and the unenrolled key, and stored the well-signed forgery',
    )
    for (const n of running) {
      for (const [name, code] of Object.entries(refused)) {
        assert.equal(rejectedOn(n, wire(name as keyof typeof refused))?.code, code, `${n.proc.name} ${name}`)
      }
    }

    // several report intervals and decisions later, nothing moved
    // two pilot windows (3 s) of reports
    await decisionsLater(running, (n) => statusOf(bed, n), { count: 6, atLeastMs: 6000 })
    for (const n of running) {
      const r = (await rolloutOf(bed, n, V))!
      assert.deepEqual([r.state, r.stage, r.abortedBy], ['pilot', 0, undefined], n.proc.name)
      assert.equal(r.gate?.outcome, 'inconclusive', JSON.stringify(r.gate))
      assert.deepEqual([r.gate?.reporters, r.gate?.required], [1, 2], `${n.proc.name} ${JSON.stringify(r.gate)}`)
      assert.deepEqual(r.verdicts, [], n.proc.name)
    }
    for (const n of [d3, d4]) {
      assert.notEqual((await statusOf(bed, n)).models.tiny?.active, V, `${n.proc.name} activated v1`)
    }
    assert.ok(serving(await statusOf(bed, d1), V), 'the pilot d1 serves v1')

    // d2 comes back: the genuine quorum promotes v1 to full, promotions only
    const d2b = await rb.startDevice(1)
    await until(
      async () => (await Promise.all(rb.devices.map((n) => statusOf(bed, n)))).every((s) => serving(s, V)),
      90_000,
      'every device serving v1 after d2 came back',
    )
    await until(
      async () => (await Promise.all(rb.nodes.map((n) => rolloutOf(bed, n, V)))).every((r) => r?.state === 'promoted'),
      30_000,
      'v1 promoted on every node',
    )
    for (const n of rb.nodes) {
      const r = (await rolloutOf(bed, n, V))!
      assert.equal(r.abortedBy, undefined)
      assert.ok(r.verdicts.length > 0 && r.verdicts.every((v) => v.outcome === 'promote'), JSON.stringify(r.verdicts))
    }
    assert.equal(d2b.info.peerId, d2.info.peerId)

    for (const p of injectors) await bed.terminate(p)
    for (const n of rb.nodes) {
      const exit = await bed.terminate(n.proc)
      assert.equal(exit.code, 0, `${n.proc.name} exit ${JSON.stringify(exit)}`)
    }
    for (const n of [...rb.nodes, ...retired]) assert.deepEqual(badLines(n.proc), [], n.proc.name)
  })
})
