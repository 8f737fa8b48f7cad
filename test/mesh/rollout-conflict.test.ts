/**
 * Acceptance (issue 9): two validly signed manifests for one model@version, injected below the
 * seed (signed directly with the operator key, as a second seed or an old backup of the key
 * would), naming different files, next to a release of another model. That other release is
 * fetched, activated and promoted as if nothing happened; every node (the seed and each device)
 * agrees the version is conflicted and refuses it; the error counter (/metrics), /status and
 * GET /rollout show it. Real daemons on loopback, mDNS off.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { signOperatorMessage } from '../../protocols/signing/index.ts'
import { CHROMIUM, launchBrowser } from '../browser/chromium.ts'
import { cli, POLICIES } from '../helpers/index.ts'
import { publish, type RolloutFleet, rolloutOf, startRolloutFleet, waitAllServing, waitFor } from './rollout-helpers.ts'

describe('two valid manifests for one model@version', { timeout: 150_000 }, () => {
  let f: RolloutFleet
  before(async () => {
    f = await startRolloutFleet([[], []])
  })
  after(async () => {
    await f?.stop()
  })

  test('the other release rolls out untouched; every node refuses the conflicted version and shows it', async () => {
    await publish(f, '1.0.0', POLICIES.ONE_STAGE)
    await waitAllServing(f, '1.0.0', 60_000)
    const nodes = [{ name: 'seed', daemon: f.seed, parts: f.seedParts }, ...f.devices]

    // below the seed: two manifests for ghost@1.0.0, validly signed, naming different files
    const base = f.seed.context.store.releases().find((r) => r.message.version === '1.0.0')!.message
    const now = Date.now()
    const ghost = (seq: number, sha256: string): ReleaseManifest => ({
      ...base,
      model: 'ghost',
      version: '1.0.0',
      seq,
      created_at: now + seq,
      file: { ...base.file, sha256 },
      // no device in scope and nothing fetched: only the decision is at stake
      policy: {
        ...base.policy,
        stages: [{ name: 'hold', percent: 0, min_devices: 0, tags: ['nobody'], window_ms: 3_600_000 }],
        prestage: false,
      },
    })
    const a = await signOperatorMessage(ghost(1, base.file.sha256), f.fleet.signer)
    const b = await signOperatorMessage(ghost(2, 'c'.repeat(64)), f.fleet.signer)
    const ghosts = (n: (typeof nodes)[number]) =>
      n.daemon.context.store.releases().filter((r) => r.message.model === 'ghost').length
    // the higher seq first: the lower one must still reach every node (it is no rollback: that
    // version is already held), or nodes would disagree on the outcome
    assert.equal((await f.devices[0].daemon.context.publish(b)).status, 'accepted')
    await waitFor(() => nodes.every((n) => ghosts(n) === 1), 30_000, 'the first ghost manifest everywhere')
    assert.equal((await f.devices[1].daemon.context.publish(a)).status, 'accepted')
    await waitFor(() => nodes.every((n) => ghosts(n) === 2), 30_000, 'both ghost manifests everywhere')

    // another release, published afterwards, rolls out as if nothing happened
    await publish(f, '2.0.0', POLICIES.ONE_STAGE, { seed: 7 })
    await waitAllServing(f, '2.0.0', 60_000)
    await waitFor(
      () => nodes.every((n) => rolloutOf(n.parts, '2.0.0')?.state === 'promoted'),
      30_000,
      'tiny@2.0.0 promoted on every node',
    )
    for (const d of f.devices) {
      const st = await d.parts.distribution!.installer.status()
      assert.equal(st.tiny.active, '2.0.0', d.name)
      assert.equal(st.ghost, undefined, `${d.name} fetched nothing of ghost`)
    }

    // every node agrees: ghost@1.0.0 is conflicted, refused, shown
    for (const n of nodes) {
      const c = n.parts.controller!
      const st = c.statusJson()
      assert.deepEqual(
        st.conflicts.map((x) => [x.model, x.version, x.outcome, x.manifests.map((m) => m.seq)]),
        [['ghost', '1.0.0', 'conflicted', [1, 2]]],
        n.name,
      )
      assert.deepEqual(
        st.errors.map((e) => [e.model, e.version, e.code]),
        [['ghost', '1.0.0', 'ERR_RELEASE_CONFLICT']],
        n.name,
      )
      assert.equal(
        st.releases.find((r) => r.model === 'ghost'),
        undefined,
      )
      assert.equal(n.daemon.context.status.releaseState('ghost', '1.0.0'), 'conflicted', n.name)
      const status = (await (await fetch(`${n.daemon.apiUrl}/status`)).json()) as {
        releases: Array<{ model: string; state: string }>
        rollout: { errors: Array<{ model: string; code: string }> }
      }
      assert.deepEqual(
        status.releases.filter((r) => r.model === 'ghost').map((r) => r.state),
        ['conflicted', 'conflicted'],
      )
      assert.equal(status.rollout.errors[0]?.code, 'ERR_RELEASE_CONFLICT')
      const metrics = await (await fetch(`${n.daemon.apiUrl}/metrics`)).text()
      const m =
        /^llmesh_rollout_release_errors_total\{model="ghost",model_version="1\.0\.0",code="ERR_RELEASE_CONFLICT"\} (\d+)$/m.exec(
          metrics,
        )
      assert.ok(
        m !== null && Number(m[1]) > 0,
        `${n.name}: ${metrics
          .split('\n')
          .filter((l) => l.includes('errors_total'))
          .join('\n')}`,
      )
      assert.match(metrics, /^llmesh_loop_errors_total\{loop="rollout"\} 0$/m)
      // a command for it is still accepted (it is a known release); one for a release nobody knows is not
    }
    const unknown = await fetch(`${f.seed.apiUrl}/rollout/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'abort', model: 'ghost', version: '9.9.9' }),
    })
    assert.equal(unknown.status, 404)
  })

  test('the dashboard shows the conflicted release first', {
    skip: !existsSync(CHROMIUM) && 'no Chromium',
  }, async () => {
    const browser = await launchBrowser()
    try {
      const page = await browser.context.newPage()
      const pageErrors: string[] = []
      page.on('pageerror', (e) => pageErrors.push(e.message))
      await page.goto(`${f.devices[0].daemon.apiUrl}/dashboard`)
      const item = page.locator('#problems li[data-problem="conflicted"][data-release="ghost@1.0.0"]')
      await item.waitFor({ timeout: 30_000 })
      const text = (await item.textContent()) ?? ''
      assert.match(text, /2 valid manifests/)
      assert.match(text, /refused on every node/)
      // shown once (the conflict), not again as an error line
      assert.equal(await page.locator('#problems li[data-problem="release-error"]').count(), 0)
      assert.deepEqual(pageErrors, [])
    } finally {
      await browser.close()
    }
  })

  test('two versions signed with one seq (two operator nodes apart): every node holds both and refuses both', async () => {
    const nodes = [{ name: 'seed', daemon: f.seed, parts: f.seedParts }, ...f.devices]
    const base = f.seed.context.store.releases().find((r) => r.message.model === 'tiny')!.message
    const now = Date.now()
    const phantom = (version: string, sha256: string): ReleaseManifest => ({
      ...base,
      model: 'phantom',
      version,
      seq: 1,
      created_at: now,
      file: { ...base.file, sha256 },
      policy: {
        ...base.policy,
        stages: [{ name: 'hold', percent: 0, min_devices: 0, tags: ['nobody'], window_ms: 3_600_000 }],
        prestage: false,
      },
    })
    const a = await signOperatorMessage(phantom('1.0.0', base.file.sha256), f.fleet.signer)
    const b = await signOperatorMessage(phantom('1.1.0', 'd'.repeat(64)), f.fleet.signer)
    // each device receives one of the pair first: before the rule, each refused the other as an
    // equivocation (same seq, other digest) and the fleet split along arrival order
    const [ra, rb] = await Promise.all([f.devices[0].daemon.context.publish(a), f.devices[1].daemon.context.publish(b)])
    assert.equal(ra.status, 'accepted')
    assert.equal(rb.status, 'accepted')
    const phantoms = (n: (typeof nodes)[number]) =>
      n.daemon.context.store.releases().filter((r) => r.message.model === 'phantom').length
    await waitFor(() => nodes.every((n) => phantoms(n) === 2), 30_000, 'both phantom manifests on every node')
    await waitFor(
      () =>
        nodes.every((n) =>
          ['1.0.0', '1.1.0'].every((v) => n.daemon.context.status.releaseState('phantom', v) === 'conflicted'),
        ),
      30_000,
      'both phantom versions conflicted on every node',
    )
    for (const n of nodes) {
      const st = n.parts.controller!.statusJson()
      assert.deepEqual(
        st.conflicts
          .filter((x) => x.model === 'phantom')
          .map((x) => [x.version, x.outcome, x.reason, x.seq_shared_with]),
        [
          ['1.0.0', 'conflicted', 'seq', ['1.1.0']],
          ['1.1.0', 'conflicted', 'seq', ['1.0.0']],
        ],
        n.name,
      )
      assert.equal(
        st.releases.find((r) => r.model === 'phantom'),
        undefined,
        n.name,
      )
    }
    const out = await cli(['rollout', 'status', '--api', f.seed.apiUrl!])
    assert.equal(out.code, 0, out.stderr)
    assert.match(out.stdout, /phantom@1\.0\.0 {2}CONFLICTED: shares a seq with phantom@1\.1\.0/)
  })
})
