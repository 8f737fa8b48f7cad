/**
 * Run by the packaged arm64 Node under qemu (test/package/arm64.test.ts), never by the test's own
 * Node: loads a GGUF with the package's own InferenceSupervisor, whose worker is a child process
 * running the package's aarch64 node-llama-cpp build, answers one completion and prints it as JSON.
 * The timeouts are long because every instruction is emulated.
 *
 *   <package>/runtime/bin/node arm64-complete.ts <package dir> <model.gguf>
 */
import { join } from 'node:path'

type Supervisor = typeof import('../../node/inference/inference-supervisor.ts')
type Logger = typeof import('../../node/logger.ts')

const [pkg, gguf] = process.argv.slice(2)
if (pkg === undefined || gguf === undefined) throw new Error('usage: arm64-complete.ts <package dir> <model.gguf>')
const { InferenceSupervisor } = (await import(join(pkg, 'app/node/inference/inference-supervisor.js'))) as Supervisor
const { silentLogger } = (await import(join(pkg, 'app/node/logger.js'))) as Logger
const EMULATED_MS = 10 * 60_000
const sup = new InferenceSupervisor(
  { logger: silentLogger() },
  {
    threads: 1,
    startTimeoutMs: EMULATED_MS,
    loadTimeoutMs: EMULATED_MS,
    requestTimeoutMs: EMULATED_MS,
    healthIntervalMs: 60_000,
    healthTimeoutMs: EMULATED_MS,
  },
)
const t0 = performance.now()
await sup.start()
const started = performance.now()
const model = await sup.loadModel(gguf, { name: 'tiny', version: '1.0.0' })
const loaded = performance.now()
const r = await sup.generate({ mode: 'completion', prompt: 'the mesh', maxTokens: 4 })
const done = performance.now()
await sup.stop()
process.stdout.write(
  `${JSON.stringify({
    arch: process.arch,
    model: model.name,
    text: r.text,
    tokensOut: r.tokensOut,
    finishReason: r.finishReason,
    seconds: { start: (started - t0) / 1000, load: (loaded - started) / 1000, generate: (done - loaded) / 1000 },
  })}\n`,
)
