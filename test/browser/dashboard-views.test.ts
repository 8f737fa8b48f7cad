/**
 * The dashboard's persona views and timeline in a real browser (Debian's Chromium through
 * playwright-core), drawn from the fleet's history of real daemons: a seed and two devices with
 * real inference workers on loopback (mDNS off). v1 everywhere with chat completions served on
 * each device; v2 rolls through pilot to full by the devices' verdicts; v3 holds in a 30 min pilot
 * with latency and error-rate gates, then is aborted. The values are read back from the DOM (each
 * plotted point carries its value) and checked against the API; screenshots of every view are taken.
 * The devices are on two sites (`site:north`, `site:south`): the site selector narrows the device
 * rows and the per-device plots to one.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Locator, Page } from 'playwright-core'
import type { ReleaseRolloutStatus } from '../../node/rollout/plan.ts'
import type { HistoryRange, ReleasePoint } from '../../node/telemetry/fleet-history.ts'
import { POLICIES, scaled, watched } from '../helpers/index.ts'
import {
  command,
  publish,
  type RolloutFleet,
  startRolloutFleet,
  waitAllServing,
  waitFor,
} from '../mesh/rollout-helpers.ts'
import { canRunBrowser, launchBrowser, type TestBrowser } from './chromium.ts'

const ONE_STAGE = `${POLICIES.ONE_STAGE}exclude_tags: [seed]\n`
// v3 holds in pilot (the window outlasts the test) with gates whose thresholds the Dev plots draw
const HELD = `
stages:
  - { name: pilot, tags: [pilot], window: 30m }
  - { name: full, percent: 100 }
gates:
  error_rate: { max: 0.5 }
  latency_p95_ms: { max: 30000 }
  min_reports: 1
exclude_tags: [seed]
`

const text = async (l: Locator): Promise<string> => (await l.textContent()) ?? ''

/** The values of a plot's points for one series, read from the DOM. */
async function plotted(page: Page, plot: string, series: string): Promise<number[]> {
  const vs = await page
    .locator(`[data-plot="${plot}"] g[data-series="${series}"] circle`)
    .evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-v'))))
  return vs
}

async function chat(api: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${api}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: `hello ${i}` }], max_tokens: 4 }),
    })
    assert.equal(res.status, 200)
    await res.arrayBuffer()
  }
}

async function rolloutOf(api: string, version: string): Promise<ReleaseRolloutStatus> {
  return (await (await fetch(`${api}/rollout/tiny/${version}`)).json()) as ReleaseRolloutStatus
}

/** Opens a persona view and waits until it has drawn it. */
async function openView(page: Page, url: string, view: string): Promise<void> {
  await page.goto(`${url}/dashboard#${view}`)
  await page.locator(`#view-${view}[data-loaded]`).waitFor({ timeout: scaled(30_000) })
}

describe('dashboard persona views and timeline in Chromium', {
  skip: !canRunBrowser(),
  timeout: scaled(300_000),
}, () => {
  let f: RolloutFleet
  let browser: TestBrowser
  let shots: string
  let seedApi: string

  before(async () => {
    f = await startRolloutFleet([
      ['pilot', 'site:north'],
      ['shop', 'site:south'],
    ])
    seedApi = f.seed.apiUrl as string
    browser = await launchBrowser()
    shots = process.env.LLMESH_DASHBOARD_SHOTS ?? (await mkdtemp(join(tmpdir(), 'llmesh-dashboard-shots-')))
    await mkdir(shots, { recursive: true })
    await publish(f, '1.0.0', ONE_STAGE)
    await waitAllServing(f, '1.0.0')
    for (const d of f.devices) await chat(d.daemon.apiUrl as string, 3)
    await publish(f, '2.0.0', POLICIES.PILOT_THEN_ALL('2s', 1))
    await waitAllServing(f, '2.0.0', scaled(60_000))
    await waitFor(
      async () => (await rolloutOf(seedApi, '2.0.0')).state === 'promoted',
      scaled(30_000),
      'v2 promoted at the seed',
    )
    for (const d of f.devices) await chat(d.daemon.apiUrl as string, 2)
    await publish(f, '3.0.0', HELD)
    await waitFor(
      async () => {
        const r = await rolloutOf(seedApi, '3.0.0')
        return r.state === 'pilot' && (r.gate?.figures ?? []).some((g) => g.gate === 'latency_p95_ms.max')
      },
      scaled(30_000),
      'v3 held in pilot with its latency gate at the seed',
    )
    // the seed's history has v1's 6 requests and v2's 4 (the page reads it from there)
    await waitFor(
      async () => {
        const sum = async (v: string) => {
          const r = await fetch(`${seedApi}/history/releases/tiny/${v}`)
          if (r.status !== 200) return 0
          return ((await r.json()) as HistoryRange<ReleasePoint>).points.reduce((n, p) => n + p.requests, 0)
        }
        return (await sum('1.0.0')) >= 6 && (await sum('2.0.0')) >= 4
      },
      scaled(30_000),
      'the requests in the seed history',
    )
  })
  after(
    async () => {
      await watched('closing Chromium', browser?.close())
      await watched('stopping the fleet', f?.stop())
      if (shots !== undefined && process.env.LLMESH_DASHBOARD_SHOTS === undefined)
        await rm(shots, { recursive: true, force: true })
    },
    { timeout: scaled(120_000) },
  )

  test('Dev: p95 and error rate per version with the held gate thresholds drawn in', async () => {
    const page = await browser.context.newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    await openView(page, seedApi, 'dev')
    assert.equal(await page.locator('#view-rollouts').isVisible(), false)
    // what needs the operator (conflicts, loop errors) sits above every view, not inside one
    assert.equal(await page.locator('#problems').count(), 1)
    assert.equal(await page.locator('[data-view-panel] #problems').count(), 0)
    for (const v of ['1.0.0', '2.0.0']) {
      const p95 = await plotted(page, 'p95', `tiny@${v}`)
      assert.ok(p95.length > 0 && p95.every((x) => x > 0), `p95 of ${v}: ${p95}`)
      const rate = await plotted(page, 'error-rate', `tiny@${v}`)
      assert.ok(rate.length > 0 && rate.every((x) => x === 0), `error rate of ${v}: ${rate}`)
    }
    const lat = page.locator('[data-plot="p95"] [data-threshold="tiny@3.0.0 max"]')
    assert.equal(await lat.getAttribute('data-v'), '30000')
    // far above the tiny model's latencies: drawn at the top edge, the points keep the scale
    assert.equal(await lat.getAttribute('data-above'), 'true')
    const err = page.locator('[data-plot="error-rate"] [data-threshold="tiny@3.0.0 max"]')
    assert.equal(await err.getAttribute('data-v'), '0.5')
    assert.equal(await err.getAttribute('data-above'), 'false')
    // the totals agree with the seed's history
    const v1 = (await (await fetch(`${seedApi}/history/releases/tiny/1.0.0`)).json()) as HistoryRange<ReleasePoint>
    const row = page.locator('[data-table="version-errors"] tr[data-row="tiny@1.0.0"]')
    const cells = await row.locator('td').allTextContents()
    assert.equal(
      Number(cells[1]),
      v1.points.reduce((n, p) => n + p.requests, 0),
    )
    assert.equal(cells[2], '0')
    await page.screenshot({ path: join(shots, 'view-dev.png'), fullPage: true })
    assert.deepEqual(errors, [])
    await page.close()
  })

  test('Ops: memory, CPU and offline share per device, downloads across the fleet', async () => {
    const page = await browser.context.newPage()
    await openView(page, seedApi, 'ops')
    for (const d of f.devices) {
      const ram = await plotted(page, 'ram', await seriesNameOf(page, 'ram', d.id))
      assert.ok(ram.length > 0 && ram.every((x) => x > 0 && x <= 100), `ram of ${d.id}: ${ram}`)
    }
    // each device served 3 requests on v1 and 2 on v2: counted over every report, not the latest window
    for (const d of f.devices) {
      const cells = await page.locator(`[data-table="device-totals"] tr[data-row="${d.id}"] td`).allTextContents()
      assert.equal(cells[2], '5', `requests of ${d.id}: ${cells.join(' | ')}`)
      assert.equal(cells[3], '0')
      assert.ok(Number(cells[1]) > 0)
    }
    const offline = await plotted(page, 'offline', 'offline %')
    assert.ok(offline.length > 0 && offline.every((x) => x >= 0 && x <= 100), `offline: ${offline}`)
    // the seed and the two devices, all reporting
    assert.match(await text(page.locator('[data-role="ops-summary"]')), /^3 enrolled devices, 0 offline \(0 %\)$/)
    await waitFor(
      async () => {
        await openView(page, seedApi, 'ops')
        return /2 of 2/.test(await text(page.locator('[data-table="fleet-downloads"] tr[data-row="tiny@3.0.0"]')))
      },
      scaled(30_000),
      'v3 held by both devices in the fleet downloads table',
    )
    await page.screenshot({ path: join(shots, 'view-ops.png'), fullPage: true })
    await page.close()
  })

  test('Product: devices per version (the rollout) and tokens per model today', async () => {
    const page = await browser.context.newPage()
    // from another view through the tabs: the view follows the link (hash), the other hides
    await openView(page, seedApi, 'dev')
    await page.locator('#views a[data-view="product"]').click()
    await page.locator('#view-product[data-loaded]').waitFor({ timeout: scaled(15_000) })
    assert.equal(await page.locator('#view-dev').isVisible(), false)
    assert.equal(await page.locator('#views a[data-view="product"]').getAttribute('aria-current'), 'page')
    const v2 = await plotted(page, 'devices-per-version', 'tiny@2.0.0')
    assert.equal(Math.max(...v2), 2, `devices on v2: ${v2}`)
    const today = await page
      .locator('[data-plot="tokens-per-day"] rect[data-series="tiny"]')
      .evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-v'))))
    assert.equal(today.length, 7)
    assert.ok(today[6] > 0, `tokens today: ${today}`)
    assert.match(await text(page.locator('[data-role="product-summary"]')), /models served/)
    await page.screenshot({ path: join(shots, 'view-product.png'), fullPage: true })
    await page.close()
  })

  test('the timeline shows publications, verdicts with their evidence, and the abort', async () => {
    await command(seedApi, 'abort', '3.0.0', { reason: 'dashboard views test' })
    await waitFor(
      async () => (await rolloutOf(seedApi, '3.0.0')).state === 'aborted',
      scaled(30_000),
      'v3 aborted at the seed',
    )
    const page = await browser.context.newPage()
    await page.goto(`${seedApi}/dashboard`)
    const tl = page.locator('#timeline')
    await tl.locator('li[data-event="command-abort"][data-event-release="tiny@3.0.0"]').waitFor()
    for (const v of ['1.0.0', '2.0.0', '3.0.0'])
      assert.equal(await tl.locator(`li[data-event="published"][data-event-release="tiny@${v}"]`).count(), 1, v)
    // newest first
    const ts = await tl.locator('li').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-t'))))
    assert.deepEqual(
      ts,
      [...ts].sort((a, b) => b - a),
    )
    const v2 = await rolloutOf(seedApi, '2.0.0')
    const verdict = v2.verdicts.find((x) => x.outcome === 'promote' && x.evidence > 0)
    assert.ok(verdict, 'v2 was promoted by a verdict with evidence')
    await tl.locator(`button[data-verdict="${verdict.digest}"]`).click()
    const body = page.locator(`#evidence-body[data-digest="${verdict.digest}"]`)
    await body.locator('table[data-role="evidence"]').waitFor()
    assert.equal(await body.locator('tr[data-evidence]').count(), Math.min(verdict.evidence, 256))
    assert.ok((await body.locator('tr[data-held="true"]').count()) > 0)
    assert.match(await text(body), /tiny@2\.0\.0: promote on stage 0/)
    await page.screenshot({ path: join(shots, 'timeline-evidence.png'), fullPage: true })
    await page.locator('#evidence-close').click()
    // and the Product view's adoption follows the abort: both devices back on v2
    await waitFor(
      async () => {
        await openView(page, seedApi, 'product')
        return /2 of 2/.test(await text(page.locator('[data-table="adoption"] tr[data-row="tiny"]')))
      },
      scaled(30_000),
      'both devices on v2, the newest release not aborted',
    )
    await page.close()
  })

  test('the site selector narrows the device rows and the per-device plots to one site', async () => {
    const [north, south] = f.devices.map((d) => d.id)
    const page = await browser.context.newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(`${seedApi}/dashboard`)
    const select = page.locator('[data-role="site-select"]')
    await select.waitFor({ timeout: scaled(15_000) })
    const options = await select.locator('option').evaluateAll((els) => els.map((e) => e.getAttribute('value')))
    assert.deepEqual(options, ['', 'north', 'south'], 'every site seen, and all of them')
    const rows = () =>
      page.locator('#devices tr[data-device]').evaluateAll((els) => els.map((e) => e.getAttribute('data-device')))
    await page.locator(`#devices tr[data-device="${south}"]`).waitFor()
    assert.ok(
      (await rows()).includes(north) && (await rows()).includes(f.seed.context.identity.peerId),
      'all sites: every row',
    )
    await select.selectOption('north')
    await waitFor(async () => !(await rows()).includes(south), scaled(15_000), 'the south device filtered out')
    assert.deepEqual(await rows(), [north], 'only the north device (the seed declares no site)')
    // the choice holds across refreshes and views: the Ops plots show the north device alone
    await page.locator('#views a[data-view="ops"]').click()
    await page.locator('#view-ops[data-loaded]').waitFor({ timeout: scaled(30_000) })
    const series = await page
      .locator('[data-plot="ram"] g[data-series]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-series') ?? ''))
    assert.equal(series.length, 1, series.join(', '))
    assert.ok(series[0].endsWith(north.slice(-8)), series[0])
    await page.screenshot({ path: join(shots, 'view-ops-site-north.png'), fullPage: true })
    // back to every site
    await page.locator('[data-role="site-select"]').selectOption('')
    await page.locator('#views a[data-view="rollouts"]').click()
    await waitFor(async () => (await rows()).includes(south), scaled(15_000), 'every site again')
    assert.deepEqual(errors, [])
    await page.close()
  })

  test('plots render network text as text', async () => {
    const page = await browser.context.newPage()
    await page.goto(`${seedApi}/dashboard`)
    const out = await page.evaluate(async (path) => {
      const plot = await import(path)
      const hostile = '<img src=x onerror="window.pwned=1">'
      const fig = plot.linePlot({
        id: 'x',
        title: hostile,
        series: [{ name: hostile, points: [[1, 2]] }],
        thresholds: [{ label: hostile, value: 1 }],
        from: 0,
        to: 2,
      })
      ;(globalThis as unknown as { document: { body: { append(n: unknown): void } } }).document.body.append(fig)
      return {
        imgs: fig.querySelectorAll('img').length,
        legend: fig.querySelector('.legend li')?.textContent,
        series: fig.querySelector('g[data-series]')?.getAttribute('data-series'),
        pwned: (globalThis as { pwned?: number }).pwned,
      }
    }, '/dashboard/plot.js')
    assert.equal(out.imgs, 0)
    assert.equal(out.legend, '<img src=x onerror="window.pwned=1">')
    assert.equal(out.series, '<img src=x onerror="window.pwned=1">')
    assert.equal(out.pwned, undefined)
    await page.close()
  })
})

/** The series name the page gives a device (its name, or the end of its peer id). */
async function seriesNameOf(page: Page, plot: string, id: string): Promise<string> {
  const names = await page
    .locator(`[data-plot="${plot}"] g[data-series]`)
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-series') ?? ''))
  const name = names.find((n) => n.endsWith(id.slice(-8)))
  assert.ok(name, `a ${plot} series for ${id} among ${names.join(', ')}`)
  return name
}
