/**
 * LAN test: `avahi-browse -rtp _llmesh._tcp`, run in a namespace of the bed, lists every node
 * with its TXT records (id, fleet, role, model) and resolves its unique host name.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { avahiInstalled, browse, startAvahi } from './avahi.ts'
import { type LanNode, makeFleetDir, startLanNode } from './helpers.ts'
import { badLines, canRunBed, TestBed, until } from './netns.ts'

const skip = !canRunBed()
  ? 'needs root and ip netns'
  : !avahiInstalled()
    ? 'needs avahi-daemon, avahi-utils, dbus'
    : false

describe('bonjour advertisement seen by avahi', { skip }, () => {
  let bed: TestBed
  const nodes: LanNode[] = []

  before(async () => {
    bed = await TestBed.create({ hosts: 4 })
    const fleet = await makeFleetDir(bed.logDir)
    for (const i of [1, 2, 3]) {
      nodes.push(
        await startLanNode(bed, bed.hosts[i], {
          role: i === 1 ? 'seed' : 'node',
          fleetDir: fleet.dir,
          dataDir: join(bed.logDir, `data-${i}`),
          name: `node-${i}`,
        }),
      )
    }
    await startAvahi(bed, bed.hosts[0])
  })

  after(async () => {
    await bed?.destroy()
  })

  test('avahi-browse lists every node with its TXT records', async () => {
    let found: Awaited<ReturnType<typeof browse>> = []
    await until(
      async () => {
        found = await browse(bed, bed.hosts[0])
        return nodes.every((n) => found.some((s) => s.txt.id === n.info.peerId))
      },
      45_000,
      'every node to be resolved by avahi',
    )
    for (const n of nodes) {
      const s = found.find((f) => f.txt.id === n.info.peerId)
      assert.ok(s)
      assert.equal(s.txt.fleet, 'lan-fleet')
      assert.equal(s.txt.role, n === nodes[0] ? 'seed' : 'node')
      assert.ok('model' in s.txt)
      assert.equal(s.address, n.host.ip)
      assert.equal(s.port, 7420)
      assert.match(s.host, /^llmesh-[0-9a-z]{12}\.local$/)
    }
    assert.equal(new Set(found.map((s) => s.host)).size, found.length, 'host names are unique')
  })

  test('nodes exit cleanly on SIGTERM', async () => {
    for (const n of nodes) {
      assert.equal((await bed.terminate(n.proc)).code, 0)
      assert.deepEqual(badLines(n.proc), [])
    }
  })
})
