/**
 * Runs inside one namespace of a LAN test bed (started by test/lan/netns-probe.ts) and does the
 * bed's HTTP GETs there: one JSON request per stdin line `{id, url, timeoutMs}`, one JSON answer
 * per stdout line `{id, status, body}` or `{id, error}`. It replaces `ip netns exec <ns> curl` for
 * the tests' polling: a fork of `ip` and `curl` per poll costs ≈ 35 ms of CPU on the test's two
 * cores, a request here ≈ 1 ms. Imports nothing of the repo (it must start fast). Exits when its
 * stdin closes (the test process is gone).
 */
import { createInterface } from 'node:readline'

interface ProbeRequest {
  id: number
  url: string
  timeoutMs: number
}

/** A connection reused after its server went away fails once; a GET is safe to send again. */
const RETRYABLE = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])

async function get(req: ProbeRequest): Promise<{ status: number; body: string }> {
  const signal = AbortSignal.timeout(req.timeoutMs)
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(req.url, { signal })
      return { status: res.status, body: await res.text() }
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code
      if (attempt === 1 && code !== undefined && RETRYABLE.has(code)) continue
      throw err
    }
  }
}

function describe(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } }
  const cause = e.cause?.code ?? e.cause?.message
  return `${e.name}: ${e.message}${cause === undefined ? '' : ` (${cause})`}`
}

const write = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`)
}

createInterface({ input: process.stdin })
  .on('line', (line) => {
    const req = JSON.parse(line) as ProbeRequest
    get(req).then(
      (r) => write({ id: req.id, ...r }),
      (err: unknown) => write({ id: req.id, error: describe(err) }),
    )
  })
  .on('close', () => process.exit(0))
