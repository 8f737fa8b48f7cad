/**
 * The dashboard's per-site filter (node/api/dashboard/site-filter.js), its pure part: the sites
 * seen (each once, sorted, devices without a site left out), the devices of the chosen site (all
 * of them for "every site" or for a site no device declares any more), and no selector with fewer
 * than two sites. The selector itself is exercised in Chromium (test/browser/dashboard-views.test.ts).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'

type Dev = { id: string; site: string | null }
const mod = new URL('../../node/api/dashboard/site-filter.js', import.meta.url).href
const { sitesOf, filterBySite, renderSiteSelect, ALL_SITES } = (await import(mod)) as {
  sitesOf: (d: Dev[]) => string[]
  filterBySite: (d: Dev[], site: string) => Dev[]
  renderSiteSelect: (sites: string[], chosen: string, onChange: () => void) => unknown
  ALL_SITES: string
}

const devices: Dev[] = [
  { id: 'seed', site: null },
  { id: 'a1', site: 'south' },
  { id: 'b1', site: 'north' },
  { id: 'a2', site: 'south' },
]

test('the sites seen, once each and sorted; devices without a site are in none', () => {
  assert.deepEqual(sitesOf(devices), ['north', 'south'])
  assert.deepEqual(sitesOf([{ id: 'x', site: null }]), [])
})

test('the chosen site narrows the devices; every site or an unknown one shows all', () => {
  assert.deepEqual(
    filterBySite(devices, 'south').map((d) => d.id),
    ['a1', 'a2'],
  )
  assert.equal(filterBySite(devices, ALL_SITES).length, 4)
  assert.equal(filterBySite(devices, 'gone').length, 4)
})

test('no selector with fewer than two sites', () => {
  assert.equal(
    renderSiteSelect(['north'], ALL_SITES, () => {}),
    null,
  )
  assert.equal(
    renderSiteSelect([], ALL_SITES, () => {}),
    null,
  )
})
