/**
 * Real kernel OOM kills against plain SIGKILLs. The test makes its own memory cgroup with a limit
 * (under this process's memory cgroup; removed afterwards) and runs real processes in it:
 * - a small node script that allocates until the kernel kills it → `oom`; a `kill -9` → `crash`;
 * - the real inference worker pushed past a memory limit → the supervisor's exit kind is `oom`;
 * - a daemon (test/fixtures/oom-daemon.ts: the real supervisor) and its worker under one limit, as
 *   systemd's MemoryMax= puts them: a new version too big for it makes the kernel kill the worker
 *   (its raised oom_score_adj), not the daemon, the larger of the two; the daemon counts an OOM
 *   (the cgroup's shared counter) and serves the previous version on a new worker.
 * Skipped with a message only when no memory cgroup can be made here and CI is not set.
 */

import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { WORKER_OOM_SCORE_ADJ } from '../../node/inference/constants.ts'
import { InferenceSupervisor } from '../../node/inference/inference-supervisor.ts'
import { createInferenceMetrics } from '../../node/inference/metrics.ts'
import { createOomDetector, locateOwnCgroup, realSources } from '../../node/inference/oom-detector.ts'
import type { SupervisorEvents } from '../../node/inference/types.ts'
import { classifyExit } from '../../node/inference/worker-process.ts'
import { silentLogger } from '../../node/logger.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { scaled, suiteTmpDir } from '../helpers/index.ts'

const MiB = 1024 * 1024
const src = realSources()

/** A memory cgroup for this test file with a limit, or why none can be made. */
function makeTestCgroup(limit: number, name = 'tight'): { dir: string } | { why: string } {
  const own = locateOwnCgroup(src)
  if (own === undefined) return { why: 'no memory cgroup controller is reachable' }
  if (own.version === 2 && !src.write(`${own.dir}/cgroup.subtree_control`, '+memory')) {
    return { why: `cannot enable the memory controller below ${own.dir}` }
  }
  const dir = `${own.dir}/llmesh-test-${process.pid}-${name}`
  if (!src.mkdir(dir)) return { why: `cannot create ${dir}` }
  const file = own.version === 2 ? 'memory.max' : 'memory.limit_in_bytes'
  if (!src.write(`${dir}/${file}`, String(limit))) {
    src.rmdir(dir)
    return { why: `cannot set ${file}` }
  }
  // no swapping instead of the OOM kill, where a machine has swap
  if (own.version === 2) src.write(`${dir}/memory.swap.max`, '0')
  else src.write(`${dir}/memory.swappiness`, '0')
  return { dir }
}

const made = makeTestCgroup(96 * MiB)
const skip = 'why' in made ? `memory cgroups unavailable: ${made.why}` : false
if (skip && process.env.CI) throw new Error(skip)
const cgroup = 'dir' in made ? made.dir : ''
/** A cgroup with room for an idle worker (~110 MB): the 96 MiB one above kills it at start. */
const roomyMade = skip ? undefined : makeTestCgroup(2048 * MiB, 'roomy')
const roomy = roomyMade !== undefined && 'dir' in roomyMade ? roomyMade.dir : ''
after(() => {
  if (cgroup) assert.ok(src.rmdir(cgroup), `test cgroup ${cgroup} left behind`)
  if (roomy) assert.ok(src.rmdir(roomy), `test cgroup ${roomy} left behind`)
})

/** Anonymous resident memory of `pid` (0 once it is gone). */
function anonOf(pid: number): number {
  try {
    return Number(/^RssAnon:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024
  } catch {
    return 0
  }
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
}

describe('a process in its own memory cgroup', { skip, timeout: scaled(60_000) }, () => {
  const detector = skip ? undefined : createOomDetector({}, { parent: cgroup })

  test('allocating past the limit: the kernel kills it and it is classified oom', async () => {
    const hog = spawn(process.execPath, ['-e', 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))'], {
      stdio: 'ignore',
    })
    const watch = detector!.watch(hog.pid!)
    assert.equal(watch.method, 'cgroup')
    const { code, signal } = await exitOf(hog)
    assert.equal(signal, 'SIGKILL')
    const oomKilled = await watch.oomKilled()
    assert.equal(oomKilled, true)
    assert.equal(classifyExit({ code, signal, killReason: undefined, stderrTail: '', oomKilled }), 'oom')
    watch.dispose()
    assert.equal(src.read(`${watch.cgroup}/cgroup.procs`), undefined, 'the worker cgroup is removed')
  })

  test('kill -9 from someone else: not an OOM kill, classified crash', async () => {
    const idle = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' })
    const watch = detector!.watch(idle.pid!)
    assert.equal(watch.method, 'cgroup')
    assert.equal(src.read(`${watch.cgroup}/cgroup.procs`)?.trim(), String(idle.pid))
    const exited = exitOf(idle)
    process.kill(idle.pid!, 'SIGKILL')
    const { code, signal } = await exited
    assert.equal(signal, 'SIGKILL')
    const oomKilled = await watch.oomKilled()
    assert.equal(oomKilled, false)
    assert.equal(classifyExit({ code, signal, killReason: undefined, stderrTail: '', oomKilled }), 'crash')
    watch.dispose()
  })
})

describe('the real inference worker past a memory limit', { skip, timeout: scaled(120_000) }, () => {
  const dir = suiteTmpDir('llmesh-oom-')
  let model = ''
  before(async () => {
    model = (await writeTinyGguf(join(dir, 'tiny.gguf'))).path
  })

  test('the kernel OOM-kills the worker: exit kind oom, `oom` event, no crash', async () => {
    // node-llama-cpp alone needs ~110 MB: 32 MiB cannot hold the worker
    const sup = new InferenceSupervisor(
      { logger: silentLogger(), oom: createOomDetector({}, { parent: cgroup }) },
      { threads: 1, spawnOnStart: false, workerMemoryLimitBytes: 32 * MiB },
    )
    const exits: Array<SupervisorEvents['worker-exit'][0]> = []
    const ooms: unknown[] = []
    const crashes: unknown[] = []
    sup.on('worker-exit', (e) => exits.push(e))
    sup.on('oom', (e) => ooms.push(e))
    sup.on('crash', (e) => crashes.push(e))
    try {
      await sup.start()
      await assert.rejects(sup.loadModel(model, { name: 'tiny', version: '1.0.0' }))
      assert.equal(exits.length, 1)
      assert.equal(exits[0].kind, 'oom')
      assert.equal(exits[0].signal, 'SIGKILL')
      assert.deepEqual(ooms, [{ at: (ooms[0] as { at: number }).at, during: 'load' }])
      assert.equal(crashes.length, 0)
    } finally {
      await sup.stop()
    }
    assert.deepEqual(
      src.list(cgroup).filter((n) => n.startsWith('llmesh-worker-')),
      [],
      'worker cgroups are removed',
    )
  })

  test('/metrics tells how the live worker’s OOM kills are detected', async () => {
    assert.ok(roomy, 'a cgroup with room for the worker')
    const sup = new InferenceSupervisor(
      { logger: silentLogger(), oom: createOomDetector({}, { parent: roomy }) },
      // a worker with no model: spawned by start() only when asked to
      { threads: 1, spawnOnStart: true },
    )
    const metrics = createInferenceMetrics()
    const unbind = metrics.bindSupervisor(sup)
    const line = async () =>
      (await metrics.registry.metrics()).split('\n').filter((l) => l.startsWith('llmesh_inference_oom_detection'))
    try {
      assert.deepEqual(await line(), [], 'no worker, no sample')
      await sup.start()
      assert.equal(sup.status().oomDetection, 'cgroup')
      assert.deepEqual(await line(), ['llmesh_inference_oom_detection{method="cgroup"} 1'])
    } finally {
      unbind()
      await sup.stop()
    }
    assert.deepEqual(await line(), [])
  })
})

/**
 * The daemon's and worker's cgroup. The daemon holds ~380 MB (a 320 MiB ballast): more than half,
 * so the worker, killed at the latest when it reaches the rest, is always the smaller process.
 * The small model's worker (~70 MB) fits beside it; the big model's (~340 MB, its 32k context's
 * KV cache) does not.
 */
const UNIT_LIMIT = 640 * MiB
const BALLAST_MIB = 320

describe('a daemon and its worker under one memory limit (systemd MemoryMax=)', {
  skip,
  timeout: scaled(180_000),
}, () => {
  const dir = suiteTmpDir('llmesh-oom-daemon-')
  let limited = ''
  let daemon: ChildProcess | undefined
  before(() => {
    const made = makeTestCgroup(UNIT_LIMIT, 'unit')
    assert.ok('dir' in made, 'why' in made ? made.why : '')
    limited = made.dir
  })
  after(async () => {
    if (daemon !== undefined && daemon.exitCode === null && daemon.signalCode === null) {
      const gone = exitOf(daemon)
      daemon.kill('SIGKILL')
      await gone
    }
    if (limited) {
      // the killed worker leaves the cgroup a moment after the daemon reaped it
      const t0 = Date.now()
      while (!src.rmdir(limited) && Date.now() - t0 < scaled(10_000)) await new Promise((r) => setTimeout(r, 100))
      assert.equal(src.read(`${limited}/cgroup.procs`), undefined, `test cgroup ${limited} left behind`)
    }
  })

  test('a version too big: the kernel kills the worker, not the larger daemon, which counts an OOM and serves the previous one on a new worker', async () => {
    const small = (await writeTinyGguf(join(dir, 'small.gguf'))).path
    const big = (await writeTinyGguf(join(dir, 'big.gguf'), { embd: 256, layers: 4, ctx: 32_768 })).path
    const script = join(import.meta.dirname, '../fixtures/oom-daemon.ts')
    // the shell joins the cgroup, then becomes the daemon: everything it allocates is charged there
    daemon = spawn(
      'sh',
      [
        '-c',
        'echo $$ > "$1" && exec "$2" "$3" "$4" "$5" "$6"',
        'sh',
        `${limited}/cgroup.procs`,
        process.execPath,
        script,
        small,
        big,
        String(BALLAST_MIB),
      ],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    )
    const exited = exitOf(daemon)
    const messages: Array<Record<string, unknown>> = []
    daemon.on('message', (m: Record<string, unknown>) => messages.push(m))
    const next = async (type: string) => {
      const t0 = Date.now()
      for (;;) {
        const m = messages.find((x) => x.type === type || x.type === 'error')
        if (m !== undefined) {
          assert.notEqual(m.type, 'error', String(m.message))
          return m
        }
        const gone = await Promise.race([exited, new Promise((r) => setTimeout(() => r(undefined), 50))])
        if (gone !== undefined) assert.fail(`the daemon exited before '${type}': ${JSON.stringify(gone)}`)
        if (Date.now() - t0 > scaled(90_000)) assert.fail(`no '${type}' from the daemon`)
      }
    }
    const loaded = await next('loaded')
    const workerPid = loaded.workerPid as number
    assert.equal(readFileSync(`/proc/${workerPid}/oom_score_adj`, 'utf8').trim(), String(WORKER_OOM_SCORE_ADJ))
    assert.equal(loaded.oomDetection, 'shared-cgroup', 'no child cgroup here: the cgroup’s own counter')
    assert.equal(loaded.cgroupOomKills, 0)

    // the worker's memory, sampled from here: outside the cgroup, so that this costs the daemon nothing
    let workerAnon = 0
    const sample = setInterval(() => {
      workerAnon = Math.max(workerAnon, anonOf(workerPid))
    }, 10)
    daemon.send({ type: 'load-big' })
    const oom = await next('oom').finally(() => clearInterval(sample))
    const daemonAnon = oom.daemonAnon as number
    process.stderr.write(
      `OOM kill: daemon ${(daemonAnon / MiB).toFixed(0)} MiB anonymous, worker at least ${(workerAnon / MiB).toFixed(0)} MiB (limit ${UNIT_LIMIT / MiB} MiB)\n`,
    )
    assert.match(String(oom.error), /died while loading/, 'the load failed by the kill')
    assert.deepEqual(
      (oom.exits as Array<{ kind: string; signal: string }>).map((e) => [e.kind, e.signal]),
      [['oom', 'SIGKILL']],
    )
    assert.deepEqual(
      (oom.ooms as Array<{ during: string }>).map((e) => e.during),
      ['load'],
    )
    // without the worker's oom_score_adj the kernel would have picked the larger process: the daemon
    assert.ok(daemonAnon > UNIT_LIMIT / 2, `the daemon holds ${daemonAnon} bytes: more than any other process could`)
    assert.ok(workerAnon > 0 && workerAnon < daemonAnon, `worker ${workerAnon}, ${JSON.stringify(oom)}`)

    const back = await next('recovered')
    assert.notEqual(back.workerPid, workerPid, 'a new worker')
    assert.equal(back.version, '1.0.0', 'serving the previous version')
    assert.equal(back.tokensOut, 3, 'the new worker answers')
    assert.equal(back.cgroupOomKills, 1, 'exactly one OOM kill in the cgroup: the worker')
    const oomTotal = back.oomTotal as string[]
    assert.equal(oomTotal.length, 1, oomTotal.join('\n'))
    assert.match(oomTotal[0], /^llmesh_inference_oom_total\{.*\} 1$/, 'counted once')
    daemon.send({ type: 'stop' })
    assert.deepEqual(await exited, { code: 0, signal: null }, 'the daemon survived and stopped cleanly')
  })
})
