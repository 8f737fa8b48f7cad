/**
 * The fleet dashboard in a real browser (Debian's Chromium through playwright-core): a seed and two
 * devices with real inference workers on loopback (mDNS off), v1 everywhere, then v2 under a
 * multi-stage policy whose pilot window is long enough that it stays in `pilot` while the operator
 * pauses, resumes and aborts it from the seed's page. A device's page has no operator controls, and
 * a node with an API token shows the refusal and no data until the page is given the token.
 */

import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Locator, Page } from 'playwright-core'
import { Daemon } from '../../node/daemon.ts'
import { deviceServices } from '../../node/device-services.ts'
import { silentLogger } from '../../node/logger.ts'
import type { ReleaseRolloutStatus } from '../../node/rollout/plan.ts'
import { POLICIES, scaled, watched } from '../helpers/index.ts'
import { publish, type RolloutFleet, startRolloutFleet, waitAllServing, waitFor } from '../mesh/rollout-helpers.ts'
import { canRunBrowser, launchBrowser, type TestBrowser } from './chromium.ts'

// the pilot window outlasts the test: v2 stays in `pilot` until the operator acts
const MULTI = `
stages:
  - { name: pilot, tags: [pilot], window: 30m }
  - { name: canary, percent: 50, window: 30m }
  - { name: full, percent: 100 }
gates:
  restarts: { max: 3, per: 5m }
  ooms: { max: 0 }
  error_rate: { max: 0.2 }
  min_reports: 1
exclude_tags: [seed]
`
const V2 = 'tiny@2.0.0'
const TOKEN = 'dashboard-test-token-5521'

/** Every node's own GET /rollout state of v2. */
async function statesOfV2(f: RolloutFleet): Promise<string[]> {
  const nodes = [f.seed, ...f.devices.map((d) => d.daemon)]
  return Promise.all(
    nodes.map(async (n) => {
      const body = (await (await fetch(`${n.apiUrl}/rollout`)).json()) as { releases: ReleaseRolloutStatus[] }
      return body.releases.find((r) => `${r.model}@${r.version}` === V2)?.state ?? 'unknown'
    }),
  )
}

async function waitAllStates(f: RolloutFleet, ok: (s: string) => boolean, what: string): Promise<void> {
  let last: string[] = []
  await waitFor(
    async () => {
      last = await statesOfV2(f)
      return last.every(ok)
    },
    30_000,
    `${what} on every node (last: ${last.join(', ')})`,
  ).catch((err) => {
    throw new Error(`${(err as Error).message}; last states ${last.join(', ')}`)
  })
}

/** The text of an element (textContent: what the DOM holds). */
const text = async (l: Locator): Promise<string> => (await l.textContent()) ?? ''
const card = (page: Page) => page.locator(`[data-release="${V2}"]`)

describe('fleet dashboard in Chromium', { skip: !canRunBrowser(), timeout: scaled(240_000) }, () => {
  let f: RolloutFleet
  let browser: TestBrowser
  let guarded: Daemon | undefined
  let shots: string

  before(async () => {
    f = await startRolloutFleet([['pilot'], ['shop-7']])
    browser = await launchBrowser()
    // screenshots: kept in $LLMESH_DASHBOARD_SHOTS when set (to look at them), else a temp dir removed after
    shots = process.env.LLMESH_DASHBOARD_SHOTS ?? (await mkdtemp(join(tmpdir(), 'llmesh-dashboard-shots-')))
    await mkdir(shots, { recursive: true })
    await publish(f, '1.0.0', POLICIES.ONE_STAGE)
    await waitAllServing(f, '1.0.0')
    await publish(f, '2.0.0', MULTI)
    await waitAllStates(f, (s) => s === 'pilot', 'v2 in pilot')
  })
  after(
    async () => {
      await watched('closing Chromium', browser?.close())
      await watched('stopping the guarded node', guarded?.stop())
      await watched('stopping the fleet', f?.stop())
      assert.deepEqual(guarded?.stuck ?? [], [], 'services of the guarded node that did not stop')
      if (shots !== undefined && process.env.LLMESH_DASHBOARD_SHOTS === undefined)
        await rm(shots, { recursive: true, force: true })
    },
    { timeout: scaled(120_000) },
  )

  test("the seed's page shows the devices and v2's rollout; pause, resume and abort reach every node", async () => {
    const page = await browser.context.newPage()
    const pageErrors: string[] = []
    page.on('pageerror', (e) => pageErrors.push(e.message))
    await page.goto(`${f.seed.apiUrl}/dashboard`)
    for (const d of f.devices) await page.locator(`tr[data-device="${d.id}"]`).waitFor()
    // the devices with their tags, online, on v1 (v2 on the pilot once it has reported it)
    const pilotRow = page.locator(`tr[data-device="${f.devices[0].id}"]`)
    const shopRow = page.locator(`tr[data-device="${f.devices[1].id}"]`)
    assert.match(await text(pilotRow), /pilot/)
    assert.match(await text(shopRow), /shop-7/)
    assert.equal(await shopRow.getAttribute('data-status'), 'online')
    await waitFor(async () => /tiny@1\.0\.0/.test(await text(shopRow)), 15_000, 'shop device on v1 in the page')
    // v2's card: its state, stage, gate figures against thresholds and cohorts
    await card(page).waitFor()
    assert.equal(await card(page).getAttribute('data-state'), 'pilot')
    const body = await text(card(page))
    assert.match(body, /Stage 0 \(pilot\)/)
    assert.match(body, /replaces tiny@1\.0\.0/)
    assert.match(body, /Cohorts/)
    assert.match(body, /pilot: …/)
    assert.match(body, new RegExp(`…${f.devices[0].id.slice(-8)} \\[pilot\\]`))
    await card(page).locator('tr[data-gate]').first().waitFor()
    assert.match(await text(card(page).locator('table.gates')), /threshold/)
    // the 30 min window is not over: the stage holds (inconclusive), nothing has failed
    assert.match(await text(card(page).locator('tr[data-gate="window_ms"]')), /30 min.*holds/)
    assert.doesNotMatch(await text(card(page).locator('table.gates')), /FAIL/)
    // v2 reaches both devices (prestaged): the card says the seed may go offline, and the shop
    // device's row lists v2 as staged, from its signed report
    await waitFor(
      async () => /Prestaged on 2 of 2 devices.*the seed may go offline/.test(await text(card(page))),
      30_000,
      'v2 prestaged on both devices in the page',
    )
    await waitFor(async () => /tiny@2\.0\.0/.test(await text(shopRow)), 15_000, 'v2 staged on the shop device')
    // the seed published it: size and chunks from GET /releases
    assert.match(body, /chunks/)
    await page.screenshot({ path: join(shots, 'seed-pilot.png'), fullPage: true })

    await card(page).locator('button[data-action="pause"]').click()
    await page.locator('#notice[data-kind="ok"]').waitFor()
    assert.match(await text(page.locator('#notice')), /pause tiny@2\.0\.0 sent/)
    await waitAllStates(f, (s) => s === 'paused', 'v2 paused')
    await page.locator(`[data-release="${V2}"][data-state="paused"]`).waitFor()
    assert.equal(await card(page).locator('button[data-action="pause"]').count(), 0)
    await page.screenshot({ path: join(shots, 'seed-paused.png'), fullPage: true })

    await card(page).locator('button[data-action="resume"]').click()
    await waitAllStates(f, (s) => s === 'pilot', 'v2 resumed')
    await page.locator(`[data-release="${V2}"][data-state="pilot"]`).waitFor()

    // abort asks first: cancel sends nothing, an empty reason is refused
    const commandsBefore = (await (await fetch(`${f.seed.apiUrl}/rollout/tiny/2.0.0`)).json()) as ReleaseRolloutStatus
    await card(page).locator('button[data-action="abort"]').click()
    const dialog = page.locator('#abort-dialog')
    await dialog.waitFor()
    await page.screenshot({ path: join(shots, 'seed-abort-dialog.png') })
    await page.locator('#abort-confirm').click()
    assert.ok(await page.locator('#abort-error').isVisible(), 'an abort without a reason is refused')
    await page.locator('#abort-cancel').click()
    assert.equal(await dialog.isVisible(), false)
    await new Promise((r) => setTimeout(r, 500))
    const commandsAfter = (await (await fetch(`${f.seed.apiUrl}/rollout/tiny/2.0.0`)).json()) as ReleaseRolloutStatus
    assert.equal(commandsAfter.commands.length, commandsBefore.commands.length, 'cancel sent no command')
    assert.deepEqual(await statesOfV2(f), ['pilot', 'pilot', 'pilot'])

    await card(page).locator('button[data-action="abort"]').click()
    await page.locator('#abort-reason').fill('dashboard test: <b>bad</b> batch')
    await page.locator('#abort-confirm').click()
    await waitAllStates(f, (s) => s === 'aborted', 'v2 aborted')
    await page.locator(`[data-release="${V2}"][data-state="aborted"]`).waitFor()
    assert.equal(await card(page).locator('button[data-action]').count(), 0, 'no command applies to an aborted release')
    assert.deepEqual(pageErrors, [])
    await page.close()
  })

  test("a device's page (no operator key) shows the fleet read-only", async () => {
    const page = await browser.context.newPage()
    await page.goto(`${f.devices[1].daemon.apiUrl}/dashboard`)
    await card(page).waitFor()
    await page.locator(`tr[data-device="${f.devices[0].id}"]`).waitFor()
    assert.equal(await page.locator('button[data-action]').count(), 0)
    assert.match(await text(page.locator('#mode-line')), /Read-only: this node holds no operator key/)
    assert.match(await text(page.locator('#node-line')), /read-only/)
    // and the API behind it refuses a command from this page anyway
    const status = await page.evaluate(async () => {
      const res = await fetch('/rollout/commands', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'resume', model: 'tiny', version: '2.0.0' }),
      })
      return res.status
    })
    assert.equal(status, 403)
    await page.screenshot({ path: join(shots, 'device-read-only.png'), fullPage: true })
    await page.close()
  })

  test('the page renders network text as text, downloads with their progress, and a stuck agent', async () => {
    const page = await browser.context.newPage()
    await page.goto(`${f.devices[1].daemon.apiUrl}/dashboard`)
    // runs in the page: the modules as the page loads them (paths in variables: no TS types for them)
    const out = await page.evaluate(
      async (paths) => {
        const dom = await import(paths[0])
        const render = await import(paths[1])
        const hostile = '<img src=x onerror="window.pwned=1"><b>x</b>'
        const cell = dom.h('td', {}, hostile)
        const [dl] = render.renderDownloads({
          tiny: { downloading: { version: '3.0.0', blocks_have: 3, blocks_total: 6 } },
        })
        const none = render.renderDownloads({ tiny: { downloading: null } })
        // this fleet's device rows, one of them with a stuck agent (its report's agent.stuck)
        type Fleet = { node: { id: string }; now: number; devices: Array<{ id: string }> }
        const fleet = (await (await fetch('/dashboard/fleet')).json()) as Fleet
        const rows = fleet.devices.map((d, i) =>
          i === fleet.devices.length - 1
            ? { ...d, agent_version: '0.9.1', agent_stuck: `nothing to go back to ${hostile}` }
            : d,
        )
        const [table] = render.renderDevices({
          devices: rows,
          self: fleet.node.id,
          selfModels: {},
          now: fleet.now,
          interval: 1000,
        })
        const stuck = table.querySelectorAll('[data-agent-stuck]')
        return {
          agent: {
            pills: stuck.length,
            text: stuck[0]?.textContent,
            title: stuck[0]?.getAttribute('title'),
            row: stuck[0]?.closest('tr')?.getAttribute('data-device'),
            cell: stuck[0]?.closest('td')?.textContent,
            others: [...table.querySelectorAll('td[data-agent]')].map(
              (td: { textContent: string | null }) => td.textContent ?? '',
            ),
            last: fleet.devices.at(-1)?.id,
          },
          html: cell.innerHTML,
          text: cell.textContent,
          children: cell.children.length,
          dl: dl.textContent,
          key: dl.getAttribute('data-download'),
          progress: [dl.querySelector('progress')?.value, dl.querySelector('progress')?.max],
          none: none[0].textContent,
          pwned: (globalThis as { pwned?: number }).pwned,
        }
      },
      ['/dashboard/dom.js', '/dashboard/render.js'],
    )
    assert.equal(out.children, 0)
    assert.equal(out.text, '<img src=x onerror="window.pwned=1"><b>x</b>')
    assert.match(out.html, /^&lt;img/)
    assert.equal(out.pwned, undefined)
    assert.equal(out.key, 'tiny@3.0.0')
    assert.match(out.dl ?? '', /3 of 6 blocks/)
    assert.deepEqual(out.progress, [3, 6])
    assert.match(out.none ?? '', /None on this node/)
    // a stuck agent: a `stuck` pill after its version in its row only, the reason as text in its title
    assert.equal(out.agent.pills, 1)
    assert.equal(out.agent.row, out.agent.last)
    assert.equal(out.agent.text, 'stuck')
    assert.equal(out.agent.cell, '0.9.1stuck')
    assert.equal(out.agent.title, 'nothing to go back to <img src=x onerror="window.pwned=1"><b>x</b>')
    assert.equal(out.agent.others.filter((c) => c.includes('stuck')).length, 1, out.agent.others.join(' | '))
    await page.close()
  })

  test('with an API token, the page shows the refusal and no data until given the token', async () => {
    const dc = deviceServices({ inference: false, rollout: { startupCatchUpMs: 1000 } })
    guarded = new Daemon({
      fleet: { id: f.fleet.id, psk: f.fleet.psk, trust: f.fleet.trust },
      dataDir: join(f.dir, 'guarded'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      api: '127.0.0.1:0',
      apiToken: TOKEN,
      mdns: false,
      tags: ['guarded'],
      bootstrap: [f.seed.context.mesh.multiaddrs()[0]],
      logger: silentLogger(),
      services: dc.services,
      routes: [
        ...dc.routes,
        // The browser runs on loopback, which never needs the token: this daemon sees its
        // connections as coming from a LAN address (TEST-NET-1: nothing is ever sent there).
        () => async (app) => {
          app.server.on('connection', (socket) =>
            Object.defineProperty(socket, 'remoteAddress', { value: '192.0.2.10', configurable: true }),
          )
        },
      ],
    })
    await guarded.start()
    const url = guarded.apiUrl as string
    await waitFor(() => guarded!.context.store.releases().length >= 2, 20_000, 'releases at the guarded node')
    const page = await browser.context.newPage()
    await page.goto(`${url}/dashboard`)
    const banner = page.locator('#banner[data-kind="refused"]')
    await banner.waitFor()
    assert.match(await text(banner), /refused the request \(HTTP 401 ERR_UNAUTHORIZED/)
    assert.match(await text(banner), /Enter its API token/)
    // no data anywhere: neither in the DOM nor in the HTML the server sent
    assert.equal(await page.locator('[data-device], [data-release]').count(), 0)
    const html = await page.content()
    for (const id of [f.seed.context.identity.peerId, ...f.devices.map((d) => d.id)]) assert.ok(!html.includes(id))
    assert.ok(!html.includes('tiny@'))
    await page.screenshot({ path: join(shots, 'token-refused.png'), fullPage: true })

    // a wrong token: still refused
    await page.locator('#token').fill('not-the-token')
    await page.locator('#token-save').click()
    await waitFor(async () => /token given is wrong/.test(await text(banner)), 10_000, 'wrong-token banner')
    assert.equal(await page.locator('[data-device]').count(), 0)

    // the right token: the data shows, and it stays for this tab only (sessionStorage)
    await page.locator('#token').fill(TOKEN)
    await page.locator('#token-save').click()
    await page.locator(`tr[data-device="${f.devices[0].id}"]`).waitFor()
    await card(page).waitFor()
    assert.equal(await page.locator('#banner').isVisible(), false)
    assert.equal(await page.evaluate(() => sessionStorage.getItem('llmesh.apiToken')), TOKEN)
    await page.close()
  })
})
