/**
 * Tracing which modules a child process loads: `writeLoadTrace(dir)` writes an `--import` hook that
 * prints `LOAD <url>` on stderr for every module resolved outside Node's built-ins, so a test can
 * assert what an entry point does (not) load.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** The resolve hook registered by the `--import` module. */
const RESOLVE_HOOK = `export async function resolve(s, c, next) {
    const r = await next(s, c)
    if (!r.url.startsWith('node:')) process.stderr.write('LOAD ' + r.url + '\\n')
    return r
  }`

/** Writes the hook module into `dir` and returns its path (pass it as `--import <path>`). */
export async function writeLoadTrace(dir: string): Promise<string> {
  const hook = join(dir, 'hook.mjs')
  await writeFile(
    hook,
    `import { register } from 'node:module'\nregister('data:text/javascript,' + encodeURIComponent(${JSON.stringify(RESOLVE_HOOK)}))\n`,
  )
  return hook
}
