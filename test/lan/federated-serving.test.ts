/**
 * Federated serving (issue 18, item 2) with real `llmesh` processes in network namespaces: a seed
 * and 3 devices (mDNS inside the bed, each device also bootstrapping to the seed). The release
 * excludes the `edge` device by tag, so it has no model; the two `gpu` devices serve it.
 * 1. The edge device lists `tiny` as remote (2 peers) and answers chat completions, plain and
 *    streamed (curl inside its namespace), through a gpu device named in `x-llmesh-served-by`;
 *    the latency forwarding adds is measured against the serving peer asked directly.
 * 2. The peer serving a long stream is SIGKILLed mid-answer: that stream ends with an SSE
 *    `forward_failed` event (never a silent truncation), and the requests after the kill are all
 *    served by the other gpu device (failover time measured from the kill).
 * 3. The edge device restarted with `--no-forwarding`, connected to the serving peer and holding
 *    its fresh report, answers 503 `model_unavailable` as without peers and lists no model.
 * 4. The prompt marker is in no file of any node (logs, stores, messages.jsonl decoded) and in no
 *    /metrics output (the killed peer's read before the kill). Every node logs at debug level.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { scaled } from '../helpers/index.ts'
import { apiUrl } from './distribution-bed.ts'
import { type Answer, curlPost, filesWith, median, parseCurl, sseData } from './forwarding-helpers.ts'
import type { LanNode } from './helpers.ts'
import type { Host } from './netns.ts'
import { type BedProcess, canRunBed, until } from './netns.ts'
import { getJson, publishTiny, type RolloutBed, serving, startRolloutBed, statusOf } from './rollout-bed.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'
const POLICY = `
stages:
  - { name: full, percent: 100, window: 1s }
gates:
  min_reports: 0
exclude_tags: [edge, seed]
`
const MARKER = `llmesh-fwd-lan-${randomUUID()}`
const SERVED_BY = 'x-llmesh-served-by'

describe('federated serving in network namespaces', { skip, timeout: scaled(300_000) }, () => {
  let rb: RolloutBed
  let gpus: LanNode[]
  let edge: LanNode
  /** /metrics of the nodes as read along the way (the killed peer's before the kill). */
  const metricsSeen: string[] = []

  const url = (n: LanNode, path: string) => `${apiUrl(n)}${path}`
  const post = (from: Host, to: string, body: unknown) => curlPost(rb.bed, from, to, body)
  const chatBody = (extra: Record<string, unknown> = {}) => ({
    model: 'tiny',
    messages: [{ role: 'user', content: `say hi ${MARKER}` }],
    max_tokens: 8,
    ...extra,
  })
  const metricsOf = async (n: LanNode): Promise<string> => {
    const stdout = await rb.bed.get(n.host, url(n, '/metrics'))
    metricsSeen.push(stdout)
    return stdout
  }
  const forwarded = (text: string, direction: string, outcome: string) =>
    Number(
      new RegExp(
        `^llmesh_forwarded_requests_total\\{direction="${direction}",outcome="${outcome}"\\} (\\d+)$`,
        'm',
      ).exec(text)?.[1] ?? Number.NaN,
    )
  type ModelEntry = { id: string; served: string; versions?: string[]; peers?: number }
  const modelsOf = async (n: LanNode) => (await getJson<{ data: ModelEntry[] }>(rb.bed, n, '/v1/models')).data

  before(async () => {
    // debug: the serving code's most verbose logs are at debug level
    rb = await startRolloutBed({ tags: [['gpu'], ['gpu'], ['edge']], logLevel: 'debug' })
    gpus = rb.devices.slice(0, 2)
    edge = rb.devices[2]
    // 64 wide, 2 layers, a 4,096-token context: 2,048 greedy tokens take about 2 s (no early end-of-text token
    // in a local trial, unlike a 128-wide 4-layer model): the stream killed mid-answer is still running
    await publishTiny(rb, '1.0.0', POLICY, { ctx: 4096 })
    await until(
      async () => (await Promise.all(gpus.map((g) => statusOf(rb.bed, g)))).every((s) => serving(s, '1.0.0')),
      90_000,
      'both gpu devices serving 1.0.0',
    )
    // the edge device learns it from the gpu devices' signed health reports
    await until(
      async () => (await modelsOf(edge)).some((m) => m.id === 'tiny' && m.peers === 2),
      60_000,
      'tiny served through 2 peers on the edge device',
    )
  })
  after(async () => {
    await rb?.bed.destroy()
  })

  test('the excluded device answers chat completions, plain and streamed, through a peer', async () => {
    const s = await statusOf(rb.bed, edge)
    assert.equal(s.models.tiny?.active ?? null, null, 'the edge device has no model of its own')
    assert.deepEqual(
      (await modelsOf(edge)).map((m) => [m.id, m.served, m.versions, m.peers]),
      [['tiny', 'remote', ['1.0.0'], 2]],
    )
    const ids = gpus.map((g) => g.info.peerId)
    const plain = await post(edge.host, url(edge, '/v1/chat/completions'), chatBody())
    assert.equal(plain.status, 200, plain.body)
    assert.ok(ids.includes(plain.headers[SERVED_BY]), `served by ${plain.headers[SERVED_BY]}`)
    assert.equal(plain.headers['x-llmesh-served-version'], '1.0.0')
    const json = JSON.parse(plain.body) as { object: string; model: string; usage: { completion_tokens: number } }
    assert.deepEqual([json.object, json.model], ['chat.completion', 'tiny'])
    assert.ok(json.usage.completion_tokens > 0)

    const streamed = await post(
      edge.host,
      url(edge, '/v1/chat/completions'),
      chatBody({ stream: true, stream_options: { include_usage: true } }),
    )
    assert.equal(streamed.status, 200)
    assert.ok(ids.includes(streamed.headers[SERVED_BY]))
    assert.match(streamed.headers['content-type'] ?? '', /^text\/event-stream/)
    const data = sseData(streamed.body)
    assert.equal(data.at(-1), '[DONE]')
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as { usage?: { completion_tokens: number } })
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`)
    assert.ok((chunks.at(-1)?.usage?.completion_tokens ?? 0) > 0)

    // latency forwarding adds: the same request through the edge device, then to its serving peer directly
    const via: number[] = []
    const direct: number[] = []
    for (let i = 0; i < 5; i++) {
      const a = await post(edge.host, url(edge, '/v1/chat/completions'), chatBody())
      assert.equal(a.status, 200)
      const peer = gpus.find((g) => g.info.peerId === a.headers[SERVED_BY])!
      const b = await post(edge.host, url(peer, '/v1/chat/completions'), chatBody())
      assert.equal(b.status, 200)
      assert.equal(b.headers[SERVED_BY], undefined)
      via.push(a.ms)
      direct.push(b.ms)
    }
    console.log(
      `forwarding latency: through the edge device median ${median(via).toFixed(1)} ms, ` +
        `the serving peer directly ${median(direct).toFixed(1)} ms, ` +
        `added ${(median(via) - median(direct)).toFixed(1)} ms (via ${via.map((x) => x.toFixed(0)).join('/')}; ` +
        `direct ${direct.map((x) => x.toFixed(0)).join('/')})`,
    )
    const m = await metricsOf(edge)
    assert.equal(forwarded(m, 'out', 'ok'), 7)
    const served = await Promise.all(gpus.map(metricsOf))
    assert.equal(
      served.reduce((n, t) => n + forwarded(t, 'in', 'ok'), 0),
      7,
    )
  })

  test('the serving peer SIGKILLed mid-answer: that stream ends with an error, later requests fail over', async () => {
    const edgeUrl = url(edge, '/v1/chat/completions')
    // both peers' /metrics after the marker went through them (the one killed is gone afterwards)
    await Promise.all(gpus.map(metricsOf))
    let killedAt = 0
    let victim: LanNode | undefined
    let stream: BedProcess | undefined
    // a stream that ends before the kill (a fast generation) is no mid-answer kill: another one
    for (let attempt = 1; attempt <= 3 && victim === undefined; attempt++) {
      const args = ['-s', '-i', '-N', '--max-time', String(scaled(120)), '-H', 'content-type: application/json']
      // greedy decoding: another prompt for another attempt
      const content = `count ${attempt} ${MARKER}`
      const long = chatBody({ max_tokens: 2048, stream: true, messages: [{ role: 'user', content }] })
      const p = rb.bed.spawn(edge.host, `curl-long-${attempt}`, 'curl', [
        ...args,
        '--data-binary',
        JSON.stringify(long),
        edgeUrl,
      ])
      await until(() => p.stdout.includes('\ndata: ') || p.child.exitCode !== null, 30_000, 'the first chunk')
      const peer = gpus.find((g) => g.info.peerId === parseCurl(p.stdout, 0, false).headers[SERVED_BY])
      assert.ok(peer !== undefined, p.stdout.slice(0, 500))
      if (p.child.exitCode !== null || p.stdout.includes('[DONE]')) continue
      peer.proc.child.kill('SIGKILL')
      killedAt = Date.now()
      victim = peer
      stream = p
    }
    assert.ok(victim !== undefined && stream !== undefined, 'a stream still running when its peer was killed')
    const other = gpus.find((g) => g !== victim)!
    await victim.proc.exited

    // the requests after the kill, one after the other: every one served by the other peer
    const later: Answer[] = []
    let failoverMs = 0
    await until(
      async () => {
        const a = await post(edge.host, edgeUrl, chatBody())
        later.push(a)
        failoverMs = Date.now() - killedAt
        return a.status === 200 && a.headers[SERVED_BY] === other.info.peerId
      },
      30_000,
      'a request served by the other peer',
    )
    assert.deepEqual(
      later.map((a) => [a.status, a.headers[SERVED_BY]]),
      [[200, other.info.peerId]],
      'no request after the kill failed or went to the killed peer',
    )
    const s = await post(edge.host, edgeUrl, chatBody({ stream: true }))
    assert.equal(s.headers[SERVED_BY], other.info.peerId)
    assert.equal(sseData(s.body).at(-1), '[DONE]')

    // the stream in flight: an SSE error event, no [DONE], never a silent truncation
    await until(() => stream!.child.exitCode !== null, 30_000, 'the broken stream to end')
    const broken = parseCurl(stream.stdout, stream.child.exitCode ?? -1, false)
    const last = sseData(broken.body).at(-1) ?? ''
    assert.equal(broken.status, 200)
    assert.equal((JSON.parse(last) as { error: { code: string } }).error.code, 'forward_failed', last)
    assert.ok(!broken.body.includes('[DONE]'))
    const m = await metricsOf(edge)
    assert.ok(forwarded(m, 'out', 'failed') >= 1)
    await until(
      async () => (await modelsOf(edge)).some((x) => x.id === 'tiny' && x.peers === 1),
      30_000,
      'only the running peer listed',
    )
    console.log(
      `failover: first request after the SIGKILL served by the other peer ${failoverMs} ms after the kill ` +
        `(its own time ${later[0].ms.toFixed(0)} ms); the in-flight stream ended with forward_failed after ` +
        `${sseData(broken.body).length - 1} chunks`,
    )
  })

  test('restarted with --no-forwarding, the excluded device answers 503 as without peers', async () => {
    await rb.bed.terminate(edge.proc)
    const restartedAt = Date.now()
    const off = await rb.startDevice(2, ['--no-forwarding'])
    const other = gpus.find((g) => g.proc.child.exitCode === null && g.proc.child.signalCode === null)!
    // connected to the serving peer and holding a report of it newer than the restart: a forwarding device would forward
    await until(
      async () => {
        const s = await statusOf(rb.bed, off)
        const d = s.devices.find((x) => x.id === other.info.peerId)
        return s.peers.includes(other.info.peerId) && (d?.last_report ?? 0) > restartedAt
      },
      60_000,
      'the restarted device connected to the serving peer, with its fresh report',
    )
    const before = forwarded(await metricsOf(other), 'in', 'ok')
    const a = await post(off.host, url(off, '/v1/chat/completions'), chatBody())
    assert.equal(a.status, 503, a.body)
    assert.equal((JSON.parse(a.body) as { error: { code: string } }).error.code, 'model_unavailable')
    assert.equal(a.headers[SERVED_BY], undefined)
    assert.deepEqual(await modelsOf(off), [])
    assert.equal(forwarded(await metricsOf(other), 'in', 'ok'), before)
    await metricsOf(off)
    await metricsOf(rb.seed)
  })

  test('the prompt marker is in no log, store or metric of any node', async () => {
    // the scan sees the nodes' files: the edge device's id is in the stores and logs
    assert.ok((await filesWith(rb.work, edge.info.peerId)).length > 0)
    assert.deepEqual(await filesWith(rb.work, MARKER), [])
    assert.ok(metricsSeen.length >= 6)
    for (const m of metricsSeen) assert.ok(!m.includes(MARKER), 'prompt marker in /metrics')
    for (const n of [rb.seed, ...gpus, edge, rb.devices[2]])
      assert.ok(!n.proc.stderr.includes(MARKER), `marker in ${n.proc.name}'s log`)
  })
})
