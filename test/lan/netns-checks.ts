/** Waiting on a LAN test bed's conditions. */
import { waitFor } from '../helpers/index.ts'

/** Waits until `check` holds (polling every 50 ms, a throw counting as not yet), with `timeoutMs` scaled for a loaded machine (test/helpers). */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  // a check that throws (a curl timing out while the machine is loaded) is "not yet": it is asked
  // again until the deadline, and the timeout names its last error
  let last: string | undefined
  const tolerant = async (): Promise<boolean> => {
    try {
      return await check()
    } catch (err) {
      last = String((err as Error)?.message ?? err).slice(0, 400)
      return false
    }
  }
  await waitFor(tolerant, { timeoutMs, what, intervalMs: 50, detail: () => ({ lastError: last }) })
}
