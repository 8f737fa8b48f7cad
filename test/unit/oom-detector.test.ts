/**
 * The OOM detector's logic over fake cgroup trees and kernel logs (the real kernel is exercised in
 * inference-oom.test.ts): which method it picks, and that only an OOM-kill record of the worker
 * itself, made after the worker started, counts.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  createOomDetector,
  kmsgNamesOomKill,
  locateOwnCgroup,
  type OomSources,
  parseOomKill,
} from '../../node/inference/oom-detector.ts'
import { waitFor } from '../helpers/index.ts'

/** An in-memory file tree; `writable: false` refuses every mkdir and write. */
function fakeTree(files: Record<string, string>, opts: { writable?: boolean; kmsg?: string[] } = {}) {
  const dirs = new Set<string>()
  const writes: Array<[string, string]> = []
  const src: OomSources = {
    read: (p) => files[p],
    write(p, d) {
      if (opts.writable === false) return false
      writes.push([p, d])
      files[p] = d
      return true
    },
    mkdir(p) {
      if (opts.writable === false || dirs.has(p)) return false
      dirs.add(p)
      files[`${p}/memory.events`] = 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n'
      files[`${p}/memory.oom_control`] = 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n'
      return true
    },
    rmdir: (p) => dirs.delete(p),
    list: (p) => [...dirs].filter((d) => d.startsWith(`${p}/`)).map((d) => d.slice(p.length + 1)),
    kmsg: () => opts.kmsg,
  }
  return { src, dirs, writes, files }
}

const V2_SELF = { '/proc/self/cgroup': '0::/system.slice/llmesh.service\n' }
const V2_DIR = '/sys/fs/cgroup/system.slice/llmesh.service'

describe('parsing', () => {
  test('oom_kill of v2 memory.events and v1 memory.oom_control', () => {
    assert.equal(parseOomKill('low 0\nhigh 3\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n'), 2)
    assert.equal(parseOomKill('oom_kill_disable 0\nunder_oom 0\noom_kill 7\n'), 7)
    assert.equal(parseOomKill('oom_kill_disable 0\nunder_oom 0\n'), undefined)
    assert.equal(parseOomKill(undefined), undefined)
  })
  test('kernel OOM records name the pid exactly', () => {
    assert.ok(kmsgNamesOomKill('Out of memory: Killed process 4242 (node) total-vm:1078232kB', 4242))
    assert.ok(kmsgNamesOomKill('Memory cgroup out of memory: Killed process 4242 (node) total-vm:1kB', 4242))
    assert.ok(kmsgNamesOomKill('oom-kill:constraint=CONSTRAINT_MEMCG,task=node,pid=4242,uid=0', 4242))
    assert.ok(!kmsgNamesOomKill('Out of memory: Killed process 42420 (node)', 4242))
    assert.ok(!kmsgNamesOomKill('oom-kill:constraint=CONSTRAINT_NONE,task=node,pid=14242,uid=0', 4242))
    assert.ok(!kmsgNamesOomKill('node[4242]: segfault at 0 ip 0000 sp 0000 error 4', 4242))
  })
  test('locates the own cgroup: v1 memory controller first, else cgroup2 with memory', () => {
    const v1 = fakeTree({
      '/proc/self/cgroup': '4:memory:/process_api/abc\n0::/\n',
      '/sys/fs/cgroup/memory/process_api/abc/memory.oom_control': 'oom_kill 0\n',
    })
    assert.deepEqual(locateOwnCgroup(v1.src), { dir: '/sys/fs/cgroup/memory/process_api/abc', version: 1 })
    const v2 = fakeTree({ ...V2_SELF, [`${V2_DIR}/cgroup.controllers`]: 'cpu io memory pids' })
    assert.deepEqual(locateOwnCgroup(v2.src), { dir: V2_DIR, version: 2 })
    const noMem = fakeTree({ ...V2_SELF, [`${V2_DIR}/cgroup.controllers`]: 'cpu io pids' })
    assert.equal(locateOwnCgroup(noMem.src), undefined)
  })
})

describe('methods', () => {
  test('v2: the worker gets its own cgroup with a limit; only its own oom_kill counts; removed after', async () => {
    const t = fakeTree({
      ...V2_SELF,
      [`${V2_DIR}/cgroup.controllers`]: 'memory pids',
      [`${V2_DIR}/cgroup.subtree_control`]: 'memory',
      [`${V2_DIR}/memory.events`]: 'oom_kill 5\n',
    })
    const det = createOomDetector({ sources: t.src })
    const w = det.watch(101, { memoryLimitBytes: 1 << 26 })
    assert.equal(w.method, 'cgroup')
    assert.equal(w.cgroup, `${V2_DIR}/llmesh-worker-101`)
    assert.deepEqual(t.writes, [
      [`${V2_DIR}/llmesh-worker-101/memory.max`, String(1 << 26)],
      [`${V2_DIR}/llmesh-worker-101/cgroup.procs`, '101'],
    ])
    // another process of the service killed: not the worker
    t.files[`${V2_DIR}/memory.events`] = 'oom_kill 6\n'
    assert.equal(await w.oomKilled(), false)
    t.files[`${V2_DIR}/llmesh-worker-101/memory.events`] = 'oom 1\noom_kill 1\n'
    assert.equal(await w.oomKilled(), true)
    w.dispose()
    assert.equal(t.dirs.size, 0)
  })

  test('a worker cgroup the kernel still holds for a moment after the kill is removed on a retry', async () => {
    const t = fakeTree({
      ...V2_SELF,
      [`${V2_DIR}/cgroup.controllers`]: 'memory pids',
      [`${V2_DIR}/cgroup.subtree_control`]: 'memory',
      [`${V2_DIR}/memory.events`]: 'oom_kill 0\n',
    })
    let busy = 3 // the first three rmdir calls fail, as EBUSY does
    const rmdir = t.src.rmdir
    const w = createOomDetector({
      sources: { ...t.src, rmdir: (p: string) => (busy-- > 0 ? false : rmdir(p)) },
    }).watch(102, {})
    assert.equal(t.dirs.has(`${V2_DIR}/llmesh-worker-102`), true)
    w.dispose()
    w.dispose() // idempotent
    await waitFor(() => !t.dirs.has(`${V2_DIR}/llmesh-worker-102`), { what: 'the worker cgroup removed' })
    assert.ok(busy < 0)
  })

  test('v2 with the daemon inside its cgroup (controller not delegated): the shared counter', async () => {
    const t = fakeTree({
      ...V2_SELF,
      [`${V2_DIR}/cgroup.controllers`]: 'memory pids',
      [`${V2_DIR}/cgroup.subtree_control`]: '',
      [`${V2_DIR}/memory.events`]: 'oom_kill 5\n',
    })
    t.src.write = () => false // EBUSY: a cgroup with processes cannot enable controllers for children
    const w = createOomDetector({ sources: t.src }).watch(7)
    assert.equal(w.method, 'shared-cgroup')
    assert.equal(await w.oomKilled(), false)
    t.files[`${V2_DIR}/memory.events`] = 'oom_kill 6\n'
    assert.equal(await w.oomKilled(), true)
    // an OOM kill of another process of the service while the worker still answered health checks
    w.rebase()
    assert.equal(await w.oomKilled(), false, 'not the worker: it answered after that kill')
    t.files[`${V2_DIR}/memory.events`] = 'oom_kill 7\n'
    assert.equal(await w.oomKilled(), true)
  })

  test('v1: own child memcg, counter in memory.oom_control; a failed move leaves nothing behind', async () => {
    const base = {
      '/proc/self/cgroup': '4:memory:/lab\n',
      '/sys/fs/cgroup/memory/lab/memory.oom_control': 'oom_kill 0\n',
    }
    const t = fakeTree({ ...base })
    const w = createOomDetector({ sources: t.src }).watch(55, { memoryLimitBytes: 1000 })
    assert.equal(w.method, 'cgroup')
    assert.deepEqual(t.writes[0], ['/sys/fs/cgroup/memory/lab/llmesh-worker-55/memory.limit_in_bytes', '1000'])
    t.files['/sys/fs/cgroup/memory/lab/llmesh-worker-55/memory.oom_control'] = 'under_oom 0\noom_kill 1\n'
    assert.equal(await w.oomKilled(), true)

    const refusing = fakeTree({ ...base })
    const write = refusing.src.write
    refusing.src.write = (p, d) => !p.endsWith('cgroup.procs') && write(p, d)
    const w2 = createOomDetector({ sources: refusing.src }).watch(56)
    assert.equal(w2.method, 'shared-cgroup')
    assert.equal(refusing.dirs.size, 0)
  })

  test('no cgroup: the kernel log, only records after the worker started and naming its pid', async () => {
    const kmsg = ['6,100,1000,-;eth0: link up', '3,101,2000,-;Out of memory: Killed process 77 (node) total-vm:1kB']
    const t = fakeTree({ '/proc/self/cgroup': '0::/\n' }, { writable: false, kmsg })
    const w = createOomDetector({ sources: t.src }).watch(77)
    assert.equal(w.method, 'kernel-log')
    assert.equal(await w.oomKilled(), false, 'a record from before the worker started (pid reuse)')
    kmsg.push('3,102,3000,-;Out of memory: Killed process 78 (node) total-vm:1kB')
    assert.equal(await w.oomKilled(), false)
    kmsg.push('3,103,3001,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),task=node,pid=77,uid=1000')
    assert.equal(await w.oomKilled(), true)
  })

  test('nothing readable: never an OOM', async () => {
    const t = fakeTree({}, { writable: false })
    const w = createOomDetector({ sources: t.src }).watch(9)
    assert.equal(w.method, 'none')
    assert.equal(await w.oomKilled(), false)
  })

  test('stale empty worker cgroups of a crashed daemon are swept at start', () => {
    const t = fakeTree({
      '/proc/self/cgroup': '4:memory:/lab\n',
      '/sys/fs/cgroup/memory/lab/memory.oom_control': 'oom_kill 0\n',
    })
    t.src.mkdir('/sys/fs/cgroup/memory/lab/llmesh-worker-1')
    t.src.mkdir('/sys/fs/cgroup/memory/lab/other')
    createOomDetector({ sources: t.src })
    assert.deepEqual([...t.dirs], ['/sys/fs/cgroup/memory/lab/other'])
  })
})
