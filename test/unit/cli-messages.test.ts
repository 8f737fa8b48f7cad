/**
 * A CLI that explains itself (issue #16): zod issues become one line naming the field, a
 * seed-only command sent to a device says to use the seed, and gate figures not met while the
 * stage only waits print `holds` (FAIL only when the gate failed). The unreachable daemon's
 * cause is tested in cli-exit-codes.test.ts.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import Fastify from 'fastify'
import * as z from 'zod'
import { apiError } from '../../cli/api-client.ts'
import { humanRollout, type RolloutJson } from '../../cli/commands/rollout.ts'
import { describeError, oneLine } from '../../cli/output.ts'
import { installErrorHandlers } from '../../node/api/errors.ts'
import { silentLogger } from '../../node/logger.ts'
import { cli, tmpDir } from '../helpers/index.ts'

test('zod issues: one line naming the field, from a thrown ZodError or its JSON in a message', () => {
  const schema = z.object({ model: z.string().regex(/^[a-z]+$/, 'expected a model name'), n: z.number() })
  const r = schema.safeParse({ model: 'Tiny Model', n: 'x' })
  assert.equal(r.success, false)
  const err = r.error as z.ZodError
  assert.match(err.message, /\n/, 'zod prints its issues over several lines')
  assert.equal(describeError(err).message, 'model: expected a model name (and 1 more)')
  // a daemon (or older seed) that put zod's JSON in its message
  const refused = apiError(400, {
    error: { code: 'ERR_INVALID_INPUT', message: `release manifest is invalid: ${err.message}` },
  })
  assert.equal(refused.message, 'release manifest is invalid: model: expected a model name (and 1 more)')
  assert.equal(oneLine('first line\nsecond'), 'first line')
  assert.equal(oneLine('a list [1, 2]\nnot issues'), 'a list [1, 2]')
})

test('a seed-only command sent to a device says to use the seed', async (t) => {
  // a node without the seed's routes answers 404 ERR_NO_ROUTE, as a device does
  const app = Fastify()
  installErrorHandlers(app, silentLogger())
  app.get('/rollout', async () => ({ releases: [] }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => app.close())
  const addr = app.server.address()
  const api = `127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`
  const dir = await tmpDir(t)
  const gguf = join(dir, 'tiny.gguf')
  assert.equal((await cli(['model', 'make-tiny', gguf])).code, 0)

  const pub = await cli(['release', 'publish', gguf, '--model', 'tiny', '--version', '1.0.0', '--api', api])
  assert.equal(pub.code, 4, pub.stderr)
  assert.equal(
    pub.stderr,
    'llmesh: error: this is a device; releases are published on the seed (--api <seed>) [ERR_NO_ROUTE]\n',
  )
  const list = await cli(['release', 'list', '--api', api, '--json'])
  assert.equal(list.code, 4)
  assert.match(list.stdout, /releases are published on the seed/)
  const revoke = await cli(['device', 'revoke', `12D3KooW${'A'.repeat(44)}`, '--reason', 'x', '--api', api])
  assert.equal(revoke.code, 4, revoke.stderr)
  assert.match(revoke.stderr, /this is a device; devices are managed on the seed \(--api <seed>\)/)
})

test('rollout status: a gate not met holds while the stage waits, FAIL only when it failed', () => {
  const release = (outcome: string): RolloutJson['releases'][number] => ({
    model: 'tiny',
    version: '2.0.0',
    seq: 2,
    state: 'canary',
    phase: 'rolling',
    stage: 1,
    stageName: 'canary',
    stageStartedAt: 0,
    previous: '1.0.0',
    gate: {
      outcome,
      figures: [
        { gate: 'latency_p95_ms', value: 120, threshold: 500, pass: true },
        { gate: 'error_rate', value: 0.3, threshold: 0.2, pass: false },
      ],
      reasons: [],
      reporters: 1,
      required: 2,
    },
    verdicts: [],
    commands: [],
    cohorts: {},
    prestaged: { devices: 2, of: 2, missing: [] },
  })
  const waiting = humanRollout({ releases: [release('inconclusive')] })
  assert.match(waiting, /^ {4}holds error_rate: 0\.3 \(threshold 0\.2\)$/m)
  assert.match(waiting, /^ {4}ok {4}latency_p95_ms: 120/m)
  assert.doesNotMatch(waiting, /FAIL/)
  const failed = humanRollout({ releases: [release('fail')] })
  assert.match(failed, /^ {4}FAIL {2}error_rate: 0\.3 \(threshold 0\.2\)$/m)
})
