/**
 * Model loading on a worker, without state: the GGUF header check (a bad file never reaches the
 * worker), the load with its bound, and the LoadedModel it yields. Failures are ModelLoadError
 * with a reason, reported once through `load-failure` (and `timeout`/`oom` when they apply).
 */

import type { Logger } from '../logger.ts'
import { checkGgufForLlama, type GgufInfo } from '../model/gguf.ts'
import type { ResolvedSupervisorInit } from './defaults.ts'
import { ModelLoadError } from './errors.ts'
import { loadOnWorker, loadSpecFor } from './load-on-worker.ts'
import type * as T from './types.ts'
import type { WorkerProcess } from './worker-process.ts'

/** A model to load. */
export interface LoadTarget {
  path: string
  meta: T.ModelMeta
}

/** Where load incidents go. */
export interface LoaderHooks {
  now(): number
  logger: Logger
  emit<K extends 'load-failure' | 'timeout' | 'oom'>(event: K, e: T.SupervisorEvents[K][0]): void
  /** Error to throw when the supervisor stops during the load. */
  stopping(): Error
  isRunning(): boolean
}

/** Reports a load failure (log + `load-failure` event) and returns it to throw. */
export function loadFailure(hooks: LoaderHooks, path: string, err: ModelLoadError): ModelLoadError {
  hooks.logger.warn({ path, reason: err.reason, code: err.detailCode, err: err.message }, 'model load failed')
  hooks.emit('load-failure', {
    at: hooks.now(),
    path,
    reason: err.reason,
    code: err.detailCode ?? err.code,
    message: err.message,
  })
  return err
}

/** Checks a GGUF header for llama.cpp; throws (and reports) ModelLoadError `invalid-file`. */
export async function checkHeader(hooks: LoaderHooks, path: string): Promise<GgufInfo> {
  try {
    return await checkGgufForLlama(path)
  } catch (err) {
    const e = err as { code?: string; message: string }
    throw loadFailure(hooks, path, new ModelLoadError(e.message, 'invalid-file', e.code, { cause: err }))
  }
}

/** Loads `target` (header already checked as `info`) on `w`; resolves with the loaded model (not probed yet). */
export async function loadOn(
  w: WorkerProcess,
  target: LoadTarget,
  info: GgufInfo,
  cfg: ResolvedSupervisorInit,
  hooks: LoaderHooks,
): Promise<T.LoadedModel> {
  const sequences = cfg.maxConcurrent + 1 // one more, reserved for probes
  const spec = loadSpecFor(target.path, info, { threads: cfg.threads, contextSize: cfg.contextSize, sequences })
  const r = await loadOnWorker(w, spec, cfg.loadTimeoutMs)
  if (!r.ok) {
    if (r.stopped || !hooks.isRunning()) throw hooks.stopping()
    if (r.timedOut) hooks.emit('timeout', { at: hooks.now(), what: 'load' })
    // a worker OOM-killed during load already raised 'oom' from its exit
    if (r.error.reason === 'oom' && w.alive) hooks.emit('oom', { at: hooks.now(), during: 'load' })
    throw loadFailure(hooks, target.path, r.error)
  }
  return {
    path: target.path,
    name: target.meta.name ?? target.path.replace(/^.*[\\/]/, '').replace(/\.gguf$/i, ''),
    version: target.meta.version,
    architecture: info.architecture,
    quantization: info.quantization,
    contextSize: r.contextSize,
    trainContextSize: r.trainContextSize,
    threads: spec.threads,
    loadMs: r.loadMs,
    loadedAt: hooks.now(),
  }
}
