/**
 * Inference through real `llmesh` processes in network namespaces: a seed, one device (logging
 * at trace level) and a client host, all on the bed's private bridge.
 * 1. The official `openai` client, run in the client's namespace, gets completions and chat
 *    completions, streamed and not, from the device's API over the bridge.
 * 2. The worker of a new version SIGKILLed from outside (`kill -9`, not the OOM killer): a crash,
 *    not an OOM: the worker is restarted and serves the new version again (time logged), the restart
 *    is counted in /metrics and in a signed HealthReport (read from the seed's store), no OOM is,
 *    and the device does not roll back. (Real OOM kills: test/unit/inference-oom.test.ts.)
 * 3. The worker of a new version crashing (SIGSEGV) 4 times: counted as restarts, rolled back.
 * 4. A release llama.cpp refuses to load: counted as a load failure in /metrics and the report,
 *    rolled back.
 * 5. Privacy: the prompts' marker appears in no log line of the device or the seed (stderr of the
 *    real processes, llama.cpp's output included), no metric and no stored message.
 */

import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { HealthReport } from '../../protocols/index.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { scaled } from '../helpers/index.ts'
import { ALL_POLICY, apiUrl, type DistStatus, httpStatus, publishRelease, startNode } from './distribution-bed.ts'
import { decisionsLater, type LanNode, makeFleetDir } from './helpers.ts'
import { badLines, canRunBed, REPO_ROOT, TestBed, until } from './netns.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'
const CLIENT = join(REPO_ROOT, 'test', 'lan', 'inference-client.ts')

type Status = DistStatus & { inference?: { state: string; version: string | null; restarts: number } }
interface ClientOut {
  models: string[]
  completion: { text: string; usage: { prompt_tokens: number; completion_tokens: number }; model: string }
  completionStream: { text: string; chunks: number; usage: { completion_tokens: number } | null; finish: string }
  chat: { text: string; role: string; usage: { completion_tokens: number } }
  chatStream: { text: string; chunks: number }
  badRequest: { status?: number; type?: string }
}

describe('inference in network namespaces', { skip, timeout: scaled(240_000) }, () => {
  let bed: TestBed
  let seed: LanNode
  let dev: LanNode
  let work: string
  const marker = `llmesh-lan-privacy-${randomUUID()}`
  const texts: string[] = []

  const status = async (): Promise<Status> => (await httpStatus(bed, dev)) as Status
  const serving = async (v: string) => {
    const s = await status()
    return s.models.tiny?.active === v && s.inference?.version === v && s.inference.state === 'ready'
  }
  const metrics = async () => bed.get(bed.hosts[2], `${apiUrl(dev)}/metrics`)
  /** Sum of a metric's samples whose labels contain every given `k="v"`. */
  const metric = (text: string, name: string, labels: Record<string, string> = {}) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)))
      .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)
  const publish = async (version: string, gguf = {}) => {
    const file = join(work, `tiny-${version}.gguf`)
    await writeTinyGguf(file, { layers: 2, embd: 64, ...gguf })
    await publishRelease(bed, seed, file, { model: 'tiny', version, policy: ALL_POLICY })
  }
  /** Health reports of the device the seed verified and stored (its messages.jsonl). */
  const reportsAtSeed = async (): Promise<HealthReport[]> => {
    const text = await readFile(join(seed.dataDir, 'messages.jsonl'), 'utf8').catch(() => '')
    return text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { s: string; m: HealthReport })
      .filter((l) => l.m.type === 'HealthReport' && l.m.device === dev.info.peerId && l.s === dev.info.peerId)
      .map((l) => l.m)
  }
  const eventCount = (rs: HealthReport[], version: string, k: keyof HealthReport['events'][number]['counts']) =>
    rs.flatMap((r) => r.events.filter((e) => e.version === version)).reduce((n, e) => n + e.counts[k], 0)
  const rolledBack = (version: string) =>
    dev.proc.logs.find((l) => l.msg === 'rolled back locally' && l.version === version)
  /** The inference worker: the daemon's child process running worker.ts. */
  const workerPid = async (): Promise<number> => {
    const pid = dev.proc.child.pid!
    const kids = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean)
    for (const k of kids) {
      const cmd = await readFile(`/proc/${k}/cmdline`, 'utf8').catch(() => '')
      if (cmd.includes('worker')) return Number(k)
    }
    throw new Error(`no worker among the children of ${pid}: ${kids.join(' ')}`)
  }

  before(async () => {
    bed = await TestBed.create({ hosts: 3 })
    work = bed.logDir
    const fleet = await makeFleetDir(work)
    seed = await startNode(bed, bed.hosts[0], {
      role: 'seed',
      fleetDir: fleet.dir,
      dataDir: join(work, 'data-seed'),
      name: 'seed',
      extra: ['--tags', 'seed', '--report-interval', '500ms'],
      env: { LLMESH_LOG_LEVEL: 'debug' },
    })
    dev = await startNode(bed, bed.hosts[1], {
      role: 'node',
      fleetDir: fleet.dir,
      dataDir: join(work, 'data-dev'),
      name: 'device',
      // the seed as bootstrap too: redialled if the only connection drops (mDNS alone does not redial)
      extra: [
        '--report-interval',
        '500ms',
        '--bootstrap',
        seed.info.multiaddrs.find((a) => a.includes(bed.hosts[0].ip))!,
      ],
      env: { LLMESH_LOG_LEVEL: 'trace' },
    })
    await until(async () => (await httpStatus(bed, seed)).devices.some((d) => d.enrolled), 60_000, 'device enrolled')
    await publish('1.0.0')
    await until(() => serving('1.0.0'), 60_000, 'device serving v1')
  })

  after(async () => {
    await bed?.destroy()
  })

  test('the openai client in another namespace gets completions, streamed and not', async () => {
    const { stdout } = await bed.exec(bed.hosts[2], process.execPath, [CLIENT, `${apiUrl(dev)}/v1`, marker], 120_000)
    const out = JSON.parse(stdout) as ClientOut
    assert.deepEqual(out.models, ['tiny'])
    assert.equal(out.completion.model, 'tiny')
    assert.ok(out.completion.text.length > 0)
    assert.ok(out.completion.usage.prompt_tokens > 0 && out.completion.usage.completion_tokens > 0)
    // greedy decoding: the stream carries the same text, in more than one chunk
    assert.equal(out.completionStream.text, out.completion.text)
    assert.ok(out.completionStream.chunks > 1, `chunks: ${out.completionStream.chunks}`)
    assert.equal(out.completionStream.usage?.completion_tokens, out.completion.usage.completion_tokens)
    assert.ok(['length', 'stop'].includes(out.completionStream.finish))
    assert.equal(out.chat.role, 'assistant')
    assert.ok(out.chat.text.length > 0)
    assert.equal(out.chatStream.text, out.chat.text)
    assert.equal(out.badRequest.status, 404)
    texts.push(out.completion.text, out.chat.text)
    const m = await metrics()
    const sel = { model: 'tiny', model_version: '1.0.0' }
    assert.equal(metric(m, 'llmesh_inference_requests_total', { ...sel, outcome: 'ok' }), 4)
    assert.ok(metric(m, 'llmesh_inference_tokens_out_total', sel) >= out.completion.usage.completion_tokens * 2)
  })

  test('kill -9 of a new version’s worker is a crash: restarted, serving again, not rolled back', async () => {
    await publish('2.0.0', { perturbLayer: 1 })
    await until(() => serving('2.0.0'), 60_000, 'device serving v2')
    const victim = await workerPid()
    const t0 = Date.now()
    process.kill(victim, 'SIGKILL')
    // a worker start (node-llama-cpp) takes 2–3 s on an idle machine; generous under a CPU hog
    await until(async () => (await status()).inference?.restarts === 1 && (await serving('2.0.0')), 60_000, 'v2 back')
    const took = Date.now() - t0
    assert.notEqual(await workerPid(), victim)
    const m = await metrics()
    assert.equal(metric(m, 'llmesh_inference_restarts_total', { model_version: '2.0.0', reason: 'crash' }), 1)
    assert.equal(metric(m, 'llmesh_inference_oom_total'), 0, 'a kill -9 is no OOM')
    await until(async () => eventCount(await reportsAtSeed(), '2.0.0', 'restarts') >= 1, 20_000, 'report at seed')
    assert.equal(eventCount(await reportsAtSeed(), '2.0.0', 'ooms'), 0)
    // still on v2 after more ticks: one crash is no reason to roll back
    await decisionsLater([dev], () => status(), { count: 3 })
    assert.ok(await serving('2.0.0'))
    assert.equal(rolledBack('2.0.0'), undefined)
    console.log(`kill -9 → serving again after ${took} ms`)
  })

  test('a new version whose worker crashes 4 times (SIGSEGV) is counted and rolled back', async () => {
    await publish('3.0.0', { perturbLayer: 0 })
    await until(() => serving('3.0.0'), 90_000, 'device serving v3')
    const before = (await status()).inference!.restarts
    for (let i = 0; i < 4 && rolledBack('3.0.0') === undefined; i++) {
      const pid = await workerPid()
      process.kill(pid, 'SIGSEGV')
      await until(
        async () => rolledBack('3.0.0') !== undefined || ((await status()).inference?.restarts ?? 0) > before + i,
        30_000,
        `restart ${i + 1}`,
      )
      if (i < 3) await until(() => serving('3.0.0'), 30_000, 'v3 back after the restart')
    }
    await until(() => rolledBack('3.0.0') !== undefined, 60_000, 'local rollback of v3')
    assert.equal(rolledBack('3.0.0')?.trigger, 'restart-loop')
    await until(() => serving('2.0.0'), 60_000, 'device back on v2')
    const m = await metrics()
    assert.ok(metric(m, 'llmesh_inference_restarts_total', { model_version: '3.0.0', reason: 'crash' }) >= 4)
    await until(async () => eventCount(await reportsAtSeed(), '3.0.0', 'rollbacks') >= 1, 20_000, 'report at seed')
    assert.ok(eventCount(await reportsAtSeed(), '3.0.0', 'restarts') >= 4)
  })

  test('a release llama.cpp refuses to load is counted and rolled back', async () => {
    await publish('4.0.0', { breakTensor: true, perturbLayer: 1 })
    await until(() => rolledBack('4.0.0') !== undefined, 90_000, 'local rollback of v4')
    assert.equal(rolledBack('4.0.0')?.trigger, 'load-failure')
    await until(() => serving('2.0.0'), 60_000, 'device back on v2')
    const m = await metrics()
    assert.ok(metric(m, 'llmesh_inference_load_failures_total') >= 1, 'load failure in /metrics')
    await until(async () => eventCount(await reportsAtSeed(), '4.0.0', 'load_failures') >= 1, 20_000, 'report')
    // the worker survived the refused file: still serving v2 on the same kind of worker
    assert.equal((await status()).inference?.state, 'ready')
  })

  test('the prompt marker is in no log line, metric or stored message; no error in the logs', async () => {
    const m = await metrics()
    const stores = await Promise.all(
      [seed, dev].map((n) => readFile(join(n.dataDir, 'messages.jsonl'), 'utf8').catch(() => '')),
    )
    // the capture saw the inference service at work (worker exits, llama.cpp's own output)
    assert.match(dev.proc.stderr, /"svc":"inference".*"msg":"inference worker exited"/)
    assert.match(dev.proc.stderr, /"msg":"llama\.cpp"/)
    assert.ok(metric(m, 'llmesh_inference_requests_total', { model_version: '1.0.0' }) >= 4)
    assert.ok((await reportsAtSeed()).some((r) => r.inference.some((i) => i.requests > 0)))
    for (const [what, text] of [
      ['device log', dev.proc.stderr],
      ['seed log', seed.proc.stderr],
      ['device stdout', dev.proc.stdout],
      ['metrics', m],
      ['seed store', stores[0]],
      ['device store', stores[1]],
    ] as const) {
      assert.ok(!text.includes(marker), `prompt marker found in ${what}`)
      for (const t of texts.filter((x) => x.length >= 8)) {
        assert.ok(!text.includes(t) && !text.includes(JSON.stringify(t).slice(1, -1)), `completion text in ${what}`)
      }
    }
    // the faults above are warnings, not errors: no error line, nothing uncaught, in either process
    assert.deepEqual(badLines(dev.proc), [])
    assert.deepEqual(badLines(seed.proc), [])
    // stored messages are base64 too: decode and look again
    for (const s of stores) {
      for (const l of s.split('\n').filter((x) => x.startsWith('{'))) {
        const w = (JSON.parse(l) as { w: string }).w
        assert.ok(!Buffer.from(w, 'base64').includes(marker))
      }
    }
  })
})
