/**
 * One model load on a worker: picks threads and context size, sends `load`, and turns every
 * way it can end (loaded, refused, out of memory, worker died, no answer in time) into a result.
 * No supervisor state here: the supervisor decides what each outcome means.
 */
import { availableParallelism, freemem } from 'node:os'
import { type GgufInfo, metaNumber } from '../model/gguf.ts'
import { defaultContextSize, defaultThreads } from './defaults.ts'
import { ModelLoadError } from './errors.ts'
import type { LoadSpec } from './ipc.ts'
import type { WorkerExit, WorkerProcess } from './worker-process.ts'

/** How a load ended. `stopped`: the worker was shut down on purpose meanwhile. */
export type LoadOutcome =
  | { ok: true; spec: LoadSpec; contextSize: number; trainContextSize: number; loadMs: number }
  | { ok: false; error: ModelLoadError; timedOut: boolean; stopped: boolean }

/** Threads and context size for this model on this device (explicit values win). */
export function loadSpecFor(
  path: string,
  info: GgufInfo,
  o: { threads?: number; contextSize?: number; sequences: number },
): LoadSpec {
  const a = info.architecture ?? ''
  const contextSize =
    o.contextSize ??
    defaultContextSize({
      trainContextLength: info.contextLength,
      nLayer: metaNumber(info, `${a}.block_count`) ?? 1,
      nEmbd: metaNumber(info, `${a}.embedding_length`) ?? 1,
      nHead: metaNumber(info, `${a}.attention.head_count`) ?? 1,
      nHeadKv: metaNumber(info, `${a}.attention.head_count_kv`),
      freeBytes: freemem(),
      modelBytes: info.fileSize,
      sequences: o.sequences,
    })
  const threads = o.threads ?? defaultThreads({ cores: availableParallelism(), modelBytes: info.fileSize })
  return { modelPath: path, threads, sequences: o.sequences, contextSize }
}

/** Asks `w` to load `spec`; on timeout the worker is killed (kind 'timeout'). */
export async function loadOnWorker(w: WorkerProcess, spec: LoadSpec, timeoutMs: number): Promise<LoadOutcome> {
  const id = Math.floor(Math.random() * 2 ** 31)
  w.send({ type: 'load', id, spec })
  const fail = (msg: string, reason: ModelLoadError['reason'], code: string, timedOut = false, stopped = false) => ({
    ok: false as const,
    error: new ModelLoadError(msg, reason, code),
    timedOut,
    stopped,
  })
  let reply: Awaited<ReturnType<WorkerProcess['waitFor']>>
  try {
    reply = await w.waitFor((m) => (m.type === 'loaded' || m.type === 'load-error') && m.id === id, timeoutMs, 'load')
  } catch (err) {
    const exit = (err as { exit?: WorkerExit }).exit
    if (exit?.kind === 'stopped') return fail('worker stopped during load', 'crash', 'ERR_STOPPED', false, true)
    if (exit === undefined) {
      w.kill('timeout')
      return fail((err as Error).message, 'timeout', 'ERR_LOAD_TIMEOUT', true)
    }
    const oom = exit.kind === 'oom'
    const detail = exit.signal ?? `exit ${exit.code}`
    return fail(`worker died while loading (${detail})`, oom ? 'oom' : 'crash', oom ? 'ERR_OOM' : 'ERR_WORKER_CRASHED')
  }
  if (reply.type === 'load-error') {
    const msg = `runtime refused the model: ${reply.message}`
    return fail(msg, reply.oom ? 'oom' : 'refused', reply.oom ? 'ERR_OOM' : 'ERR_RUNTIME_REFUSED')
  }
  if (reply.type !== 'loaded') throw new Error('unreachable')
  const { contextSize, trainContextSize, loadMs } = reply
  return { ok: true, spec, contextSize, trainContextSize, loadMs }
}
