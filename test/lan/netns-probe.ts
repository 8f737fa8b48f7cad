/**
 * HTTP GETs from inside a namespace of a LAN test bed without a fork per request: one long-lived
 * test/lan/http-probe.ts per namespace, started on first use (again if it died), asked over its
 * stdin, answering on its stdout. Fails as `curl -sf` fails: no answer in time, a refused or
 * broken connection, or a status ≥ 400, each a thrown Error naming the URL.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

const PROBE = join(import.meta.dirname, 'http-probe.ts')
/** How much longer than the request's own deadline the client waits for the probe's answer. */
const GRACE_MS = 5_000

interface Pending {
  url: string
  resolve: (body: string) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

interface Answer {
  id: number
  status?: number
  body?: string
  error?: string
}

/** The probe of one namespace. */
export class NamespaceProbe {
  private child?: ChildProcess
  private nextId = 1
  private readonly pending = new Map<number, Pending>()

  private readonly ns: string

  constructor(ns: string) {
    this.ns = ns
  }

  /** GETs `url` from the namespace: the body of a 2xx-3xx answer, else a throw. */
  get(url: string, timeoutMs: number): Promise<string> {
    const child = this.running()
    const id = this.nextId++
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`GET ${url}: no answer from the probe in ${timeoutMs + GRACE_MS} ms`))
      }, timeoutMs + GRACE_MS)
      this.pending.set(id, { url, resolve, reject, timer })
      child.stdin?.write(`${JSON.stringify({ id, url, timeoutMs })}\n`)
    })
  }

  /** Ends the probe (its stdin closes, it exits); SIGKILL if it has not after 5 s. */
  async stop(): Promise<void> {
    const child = this.child
    if (child === undefined || !alive(child)) return
    const exited = new Promise((r) => child.once('exit', r))
    child.stdin?.end()
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }

  /** For exit handlers. */
  kill(): void {
    if (this.child !== undefined && alive(this.child)) this.child.kill('SIGKILL')
  }

  private running(): ChildProcess {
    if (this.child !== undefined && alive(this.child)) return this.child
    const child = spawn('ip', ['netns', 'exec', this.ns, process.execPath, PROBE], {
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      stderr = (stderr + s).slice(-2_000)
    })
    child.stdin?.on('error', () => {
      // the probe died: its exit rejects what was pending
    })
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => this.answer(line))
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer)
        p.reject(new Error(`GET ${p.url}: the probe in ${this.ns} exited (${code ?? signal}) ${stderr.trim()}`))
        this.pending.delete(id)
      }
    })
    this.child = child
    return child
  }

  private answer(line: string): void {
    const a = JSON.parse(line) as Answer
    const p = this.pending.get(a.id)
    if (p === undefined) return // timed out here already
    this.pending.delete(a.id)
    clearTimeout(p.timer)
    if (a.error !== undefined) p.reject(new Error(`GET ${p.url}: ${a.error}`))
    else if ((a.status ?? 0) >= 400)
      p.reject(new Error(`GET ${p.url}: HTTP ${a.status} ${(a.body ?? '').slice(0, 300)}`))
    else p.resolve(a.body ?? '')
  }
}

const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null
