/**
 * Federated serving with real daemons on loopback (seed + 4 devices, real installer, inference
 * worker, health reports, rollout controllers, libp2p): the release excludes the `edge` devices by
 * tag, so only the two `gpu` devices serve `tiny`. The edge device lists `tiny` as remote in
 * GET /v1/models and answers chat completions (plain and streamed), completions and embeddings
 * through a gpu device, with the official `openai` client, naming the serving peer and version
 * in headers. A gpu device whose queue is full serves the next request through the other one. A
 * peer that cannot take the stream is skipped for the other (failover); a stopped
 * peer is no longer chosen; a client that goes away stops the peer's generation. A request
 * already forwarded is never forwarded again; with forwarding off a device answers 503 as before.
 * Hostile frames, strangers, over-long frames and a fifth stream from one peer on
 * /llmesh/infer/1.0.0 are refused with typed answers; the prompt marker is in no file of any node; /metrics counts the forwards both ways.
 */
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import OpenAI from 'openai'
import { PROTOCOL_INFER } from '../../protocols/constants.ts'
import { decodeBodyFrame, decodeInferHead, encodeInferRequest, INFER_MAX_REQUEST_BYTES } from '../../protocols/infer.ts'
import { POLICIES, scaled } from '../helpers/index.ts'
import { startNode, type TestNode } from './fixtures.ts'
import {
  type FleetDevice,
  publish,
  type RolloutFleet,
  servedOf,
  startRolloutFleet,
  waitFor,
} from './rollout-helpers.ts'

const EDGE_EXCLUDED = POLICIES.ONE_STAGE_EXCEPT('edge')
const MARKER = `marker-${process.pid}-${Date.now()}`

const client = (d: FleetDevice) => new OpenAI({ baseURL: `${d.daemon.apiUrl}/v1`, apiKey: 'none', maxRetries: 0 })

/** Every file under `dir` that contains `needle`. */
async function filesWith(dir: string, needle: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue
    const p = join(e.parentPath, e.name)
    // a temporary file may be renamed away between the listing and the read
    const bytes = await readFile(p).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return Buffer.alloc(0)
      throw e
    })
    if (bytes.includes(needle)) out.push(p)
  }
  return out
}

/** One PROTOCOL_INFER exchange from `from` to `to` with raw frames: the head and the body text. */
async function exchange(from: TestNode['node']['libp2p'], to: string, frames: Uint8Array[]) {
  const stream = await from.dialProtocol(peerIdFromString(to), PROTOCOL_INFER)
  const lp = lpStream(stream, { maxDataLength: 2 * INFER_MAX_REQUEST_BYTES })
  for (const f of frames) await lp.write(f)
  await stream.close()
  const head = decodeInferHead((await lp.read()).subarray())
  let text = ''
  for (;;) {
    const f = decodeBodyFrame((await lp.read()).subarray(), text.length)
    if (f.end) break
    text += Buffer.from(f.data).toString()
  }
  return { head, body: JSON.parse(text) as { error: { code: string } } }
}

const metric = async (d: FleetDevice, direction: string, outcome: string): Promise<number> => {
  const text = await (await fetch(`${d.daemon.apiUrl}/metrics`)).text()
  const m = new RegExp(
    `^llmesh_forwarded_requests_total\\{direction="${direction}",outcome="${outcome}"\\} (\\d+)$`,
    'm',
  )
  return Number(m.exec(text)?.[1] ?? Number.NaN)
}

describe('federated serving: a device answers through the peer that serves the model', {
  timeout: scaled(180_000),
}, () => {
  let f: RolloutFleet
  let gpus: FleetDevice[]
  let edge: FleetDevice
  let off: FleetDevice
  let stranger: TestNode | undefined
  const candidates = () => (edge.parts.serving?.forwarder()?.candidates('tiny') ?? []).map((c) => c.peer)
  before(async () => {
    f = await startRolloutFleet([['gpu'], ['gpu'], ['edge'], ['edge']], undefined, {
      // device 0 serves one request at a time and queues none: a second one is forwarded
      device: (i) =>
        i === 0
          ? { supervisor: { threads: 1, maxConcurrent: 1, maxQueue: 0 } }
          : i === 3
            ? { serving: { enabled: false } }
            : {},
    })
    gpus = f.devices.slice(0, 2)
    ;[edge, off] = f.devices.slice(2)
    await publish(f, '1.0.0', EDGE_EXCLUDED)
    await waitFor(() => gpus.every((g) => servedOf(g) === '1.0.0'), 60_000, 'the gpu devices serving 1.0.0')
    // the edge device learns it from the gpu devices' signed health reports
    await waitFor(() => candidates().length === 2, 30_000, 'both gpu devices as candidates on the edge device')
  })
  after(async () => {
    await stranger?.node.stop()
    await f?.stop()
  })

  test('GET /v1/models lists local and remote models, marked', async () => {
    assert.equal(servedOf(edge), undefined)
    const onEdge = (await client(edge).models.list()).data as unknown as Array<Record<string, unknown>>
    assert.deepEqual(
      onEdge.map((m) => [m.id, m.object, m.served, m.versions, m.peers]),
      [['tiny', 'model', 'remote', ['1.0.0'], 2]],
    )
    const onGpu = (await client(gpus[0]).models.list()).data as unknown as Array<Record<string, unknown>>
    assert.deepEqual(
      onGpu.map((m) => [m.id, m.served, m.version]),
      [['tiny', 'local', '1.0.0']],
    )
  })

  test('chat completions, plain and streamed, completions and embeddings, served by the peer', async () => {
    const messages = [{ role: 'user' as const, content: `say hi ${MARKER}` }]
    const plain = await client(edge).chat.completions.create({ model: 'tiny', messages, max_tokens: 4 }).withResponse()
    assert.equal(plain.response.status, 200)
    const ids = gpus.map((g) => g.id)
    assert.ok(ids.includes(plain.response.headers.get('x-llmesh-served-by') ?? ''))
    assert.equal(plain.response.headers.get('x-llmesh-served-version'), '1.0.0')
    assert.equal(plain.data.object, 'chat.completion')
    assert.equal(plain.data.model, 'tiny')
    assert.ok((plain.data.usage?.completion_tokens ?? 0) > 0)

    const streamed = await client(edge)
      .chat.completions.create({
        model: 'tiny',
        messages,
        max_tokens: 6,
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse()
    assert.ok(ids.includes(streamed.response.headers.get('x-llmesh-served-by') ?? ''))
    assert.match(streamed.response.headers.get('content-type') ?? '', /^text\/event-stream/)
    let chunks = 0
    let finish: string | null = null
    let usage: { completion_tokens: number } | undefined
    for await (const c of streamed.data) {
      chunks++
      finish = c.choices[0]?.finish_reason ?? finish
      usage = c.usage ?? usage
    }
    assert.ok(chunks >= 3, `${chunks} chunks`)
    assert.ok(finish === 'stop' || finish === 'length')
    assert.ok((usage?.completion_tokens ?? 0) > 0)

    const completion = await client(edge).completions.create({ model: 'tiny', prompt: MARKER, max_tokens: 3 })
    assert.equal(completion.object, 'text_completion')
    const emb = await client(edge).embeddings.create({
      model: 'tiny',
      input: [MARKER, 'two'],
      encoding_format: 'float',
    })
    assert.equal(emb.data.length, 2)
    assert.ok(emb.data[0].embedding.length > 0)

    assert.equal(await metric(edge, 'out', 'ok'), 4)
    assert.equal((await metric(gpus[0], 'in', 'ok')) + (await metric(gpus[1], 'in', 'ok')), 4)
    assert.equal(await metric(gpus[0], 'out', 'ok'), 0)
    assert.equal(edge.parts.serving?.forwarder()?.counters.failovers, 0)
  })

  test('a client that goes away stops the generation on the serving peer, streamed or not', async () => {
    for (const stream of [true, false]) {
      const aborted: string[] = []
      const listeners = gpus.map((g) => {
        const on = (r: { errorCode?: string }) => {
          if (r.errorCode === 'ERR_ABORTED') aborted.push(g.id)
        }
        g.parts.supervisor?.on('request', on)
        return () => g.parts.supervisor?.off('request', on)
      })
      // the previous generation's slot is freed once the worker confirmed its cancel
      await waitFor(() => gpus.every((g) => g.parts.supervisor?.status().active === 0), 10_000, 'idle peers')
      const ac = new AbortController()
      const res = fetch(`${edge.daemon.apiUrl}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', prompt: 'count', max_tokens: 2048, stream }),
        signal: ac.signal,
      })
      if (stream) {
        const r = await res
        assert.equal(r.status, 200)
        await r.body!.getReader().read()
      } else {
        res.catch(() => {})
        // no byte comes back before the whole answer: wait until a peer generates
        await waitFor(() => gpus.some((g) => (g.parts.supervisor?.status().active ?? 0) > 0), 10_000, 'a generation')
      }
      ac.abort()
      // far sooner than 2,048 tokens take on a loaded machine
      await waitFor(() => aborted.length > 0, 5_000, `the peer's generation aborted (stream: ${stream})`)
      for (const off of listeners) off()
      if (stream) assert.equal((await res).headers.get('x-llmesh-served-by'), aborted[0])
    }
  })

  test('a device whose queue is full serves the next request through a peer', async () => {
    const [busy, other] = gpus
    await waitFor(() => gpus.every((g) => g.parts.supervisor?.status().active === 0), 10_000, 'idle peers')
    const ac = new AbortController()
    const long = await fetch(`${busy.daemon.apiUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: 'count', max_tokens: 2048, stream: true }),
      signal: ac.signal,
    })
    assert.equal(long.headers.get('x-llmesh-served-by'), null)
    await long.body!.getReader().read()
    try {
      const messages = [{ role: 'user' as const, content: 'hi' }]
      const r = await client(busy).chat.completions.create({ model: 'tiny', messages, max_tokens: 2 }).withResponse()
      assert.equal(r.response.headers.get('x-llmesh-served-by'), other.id)
    } finally {
      ac.abort()
    }
  })

  test('a peer that cannot take the stream is skipped for the other; a stopped peer is not chosen', async () => {
    // the previous test's aborted generation may still hold a peer's queue (429 overloaded)
    await waitFor(() => gpus.every((g) => g.parts.supervisor?.status().active === 0), 10_000, 'idle peers')
    const [first, second] = candidates()
    const a = f.devices.find((d) => d.id === first)!
    await a.daemon.context.mesh.libp2p.unhandle(PROTOCOL_INFER)
    const fwd = edge.parts.serving!.forwarder()!
    const before = fwd.counters.failovers
    const messages = [{ role: 'user' as const, content: 'hi' }]
    const r = await client(edge).chat.completions.create({ model: 'tiny', messages, max_tokens: 2 }).withResponse()
    assert.equal(r.response.headers.get('x-llmesh-served-by'), second)
    assert.equal(fwd.counters.failovers, before + 1)
    await a.daemon.stop()
    await waitFor(() => candidates().join() === second, 10_000, 'only the running gpu device as a candidate')
    const r2 = await client(edge)
      .chat.completions.create({ model: 'tiny', messages, max_tokens: 2, stream: true })
      .withResponse()
    for await (const _ of r2.data);
    assert.equal(r2.response.headers.get('x-llmesh-served-by'), second)
  })

  test('with forwarding off a device answers 503 as without peers', async () => {
    assert.equal(off.parts.serving?.forwarder(), undefined)
    await assert.rejects(
      client(off).chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 503 && e.code === 'model_unavailable',
    )
    const models = (await client(off).models.list()).data
    assert.deepEqual(models, [])
  })

  test('an unknown model and a request already forwarded answer as without forwarding (no loop)', async () => {
    const res = await fetch(`${edge.daemon.apiUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-llmesh-forwarded': '1' },
      body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
    })
    assert.equal(res.status, 503)
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'model_unavailable')
    await assert.rejects(
      client(edge).chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 503,
    )
    assert.ok((await metric(edge, 'out', 'no_peer')) >= 1)
  })

  test('hostile frames, strangers and over-long frames are refused with typed answers', async () => {
    const libp2p = edge.daemon.context.mesh.libp2p
    const gpu = f.devices.find((d) => d.daemon.state === 'running' && servedOf(d) === '1.0.0')!
    const before = await metric(gpu, 'in', 'refused')
    const garbage = await exchange(libp2p, gpu.id, [new TextEncoder().encode('{"v":1,"path":"/rollout/commands"}')])
    assert.deepEqual([garbage.head.status, garbage.body.error.code], [400, 'invalid_forward'])
    const long = await exchange(libp2p, gpu.id, [new Uint8Array(INFER_MAX_REQUEST_BYTES + 1)])
    assert.deepEqual([long.head.status, long.body.error.code], [400, 'invalid_forward'])
    // a node with the join secret but no enrollment
    stranger = await startNode({ id: f.fleet.id, psk: f.fleet.psk, signer: f.fleet.signer, trust: f.fleet.trust })
    await stranger.node.dial(gpu.daemon.context.mesh.multiaddrs()[0])
    const req = encodeInferRequest({
      v: 1,
      path: '/v1/completions',
      model: 'tiny',
      body: { prompt: 'x', max_tokens: 1 },
    })
    const strange = await exchange(stranger.node.libp2p, gpu.id, [req])
    assert.deepEqual([strange.head.status, strange.body.error.code], [403, 'peer_not_enrolled'])
    assert.equal(await metric(gpu, 'in', 'refused'), before + 3)
  })

  test('a peer holding its 4 streams gets 429 too_many_forwards for a fifth', async () => {
    const gpu = f.devices.find((d) => d.daemon.state === 'running' && servedOf(d) === '1.0.0')!
    const libp2p = edge.daemon.context.mesh.libp2p
    // four streams that announce a 10-byte request and never send it
    const holders = await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const s = await libp2p.dialProtocol(peerIdFromString(gpu.id), PROTOCOL_INFER)
        s.send(Uint8Array.of(10))
        return s
      }),
    )
    try {
      const junk = new TextEncoder().encode('{}')
      let last: Awaited<ReturnType<typeof exchange>> | undefined
      await waitFor(
        async () => {
          last = await exchange(libp2p, gpu.id, [junk])
          return last.head.status === 429
        },
        10_000,
        'a refusal for the fifth stream',
        () => last,
      )
      assert.equal(last?.body.error.code, 'too_many_forwards')
    } finally {
      for (const s of holders) s.abort(new Error('done'))
    }
    // the slots are freed with the streams
    await waitFor(async () => (await exchange(libp2p, gpu.id, [new TextEncoder().encode('{}')])).head.status === 400)
  })

  test('the prompt marker is in no file of any node', async () => {
    assert.deepEqual(await filesWith(f.dir, MARKER), [])
  })
})
