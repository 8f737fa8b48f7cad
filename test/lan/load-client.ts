/**
 * Steady inference load for LAN tests, run inside a namespace of the bed:
 *   node test/lan/load-client.ts --max-tokens 8 <baseURL>…
 * One sequential loop per base URL (an OpenAI-compatible `/v1`), each asking for a short
 * completion, one request at a time, until SIGTERM; a failed request (e.g. while a device switches
 * versions) waits 100 ms. Prints a JSON line per URL every 5 s and at exit: requests ok, failed.
 */
import { parseArgs } from 'node:util'

const { values, positionals } = parseArgs({
  options: { 'max-tokens': { type: 'string', default: '8' } },
  allowPositionals: true,
})
const maxTokens = Number(values['max-tokens'])
const counts = new Map(positionals.map((u) => [u, { ok: 0, failed: 0 }]))
let running = true
const stopping = new AbortController()

const print = (event: string): void => {
  for (const [url, c] of counts) process.stdout.write(`${JSON.stringify({ event, url, ...c, time: Date.now() })}\n`)
}

async function loop(url: string): Promise<void> {
  const c = counts.get(url)!
  while (running) {
    try {
      const res = await fetch(`${url}/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', prompt: 'once upon a time', max_tokens: maxTokens }),
        signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(30_000)]),
      })
      await res.arrayBuffer()
      if (res.ok) c.ok++
      else throw new Error(String(res.status))
    } catch {
      c.failed++
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

const loops = positionals.map(loop)
const timer = setInterval(() => print('progress'), 5000)
const stop = (): void => {
  running = false
  stopping.abort()
  clearInterval(timer)
  void Promise.allSettled(loops).then(() => {
    print('done')
    process.exit(0)
  })
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
