/**
 * How the operator sees failed devices: the `llmesh rollout status` lines and the dashboard's
 * section (rendered with a minimal DOM: elements, attributes, text nodes), from the `failures`
 * a node's rollout status carries.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { failedDeviceLines } from '../../cli/commands/rollout.ts'
import { peer } from './rollout-fixtures.ts'

/** Just enough of the DOM for dom.js's `h`: elements with attributes, children and text. */
class FakeNode {
  children: FakeNode[] = []
  attrs: Record<string, string> = {}
  className = ''
  readonly tag: string
  readonly text: string
  constructor(tag: string, text = '') {
    this.tag = tag
    this.text = text
  }
  setAttribute(k: string, v: string) {
    this.attrs[k] = v
  }
  addEventListener() {}
  append(c: FakeNode) {
    this.children.push(c)
  }
  get textContent(): string {
    return this.text + this.children.map((c) => c.textContent).join('')
  }
}
const g = globalThis as unknown as Record<string, unknown>
g.Node = FakeNode
g.document = {
  createElement: (tag: string) => new FakeNode(tag),
  createTextNode: (t: string) => new FakeNode('#text', t),
}
type FailedDevicesView = (r: unknown, devices: Map<string, unknown>) => FakeNode | null
const dashboard = new URL('../../node/api/dashboard/render-releases.js', import.meta.url).href
const { failedDevices } = (await import(dashboard)) as { failedDevices: FailedDevicesView }

const failures = {
  cohort: 6,
  budget: 1,
  failed: [
    { device: peer(1), reasons: ['load failure', 'local rollback'] },
    { device: peer(4), reasons: ['2 OOM kills (max 0)'] },
  ],
}

describe('failed devices for the operator', () => {
  test('rollout status lists each failed device with its reasons and the budget', () => {
    assert.deepEqual(failedDeviceLines({ failures }), [
      '  failed devices: 2 of 6 (budget 1, exceeded)',
      `    ${peer(1)}: load failure, local rollback`,
      `    ${peer(4)}: 2 OOM kills (max 0)`,
    ])
    assert.deepEqual(
      failedDeviceLines({ failures: { ...failures, budget: 2 } })[0],
      '  failed devices: 2 of 6 (budget 2)',
    )
    assert.deepEqual(failedDeviceLines({ failures: { ...failures, failed: [] } }), [])
    assert.deepEqual(failedDeviceLines({ failures: null }), [])
    assert.deepEqual(failedDeviceLines({}), [])
  })

  test('the dashboard section names each device (hover: full id) and its reasons', () => {
    const el = failedDevices({ failures }, new Map([[peer(4), { id: peer(4), tags: ['shop-7'] }]]))!
    assert.equal(el.attrs['data-role'], 'failed-devices')
    assert.match(el.textContent, /^Failed devices: 2 of 6 \(budget 1, exceeded\)/)
    const items = el.children[1].children
    assert.deepEqual(
      items.map((li) => li.attrs['data-device']),
      [peer(1), peer(4)],
    )
    assert.equal(items[0].textContent, `…${peer(1).slice(-8)}: load failure, local rollback`)
    assert.equal(items[1].textContent, `…${peer(4).slice(-8)} [shop-7]: 2 OOM kills (max 0)`)
    assert.equal(items[1].children[0].attrs.title, peer(4))
    assert.equal(failedDevices({ failures: null }, new Map()), null)
    assert.equal(failedDevices({ failures: { ...failures, failed: [] } }, new Map()), null)
  })
})
