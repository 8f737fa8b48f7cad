/**
 * Paths of the project's own modules built at run time (a child process's entry file): the
 * package ships them compiled to `.js` (packaging/compile.ts), development runs the `.ts` sources,
 * so a sibling is named with the calling module's own extension.
 */
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The file path of `relative` (written without extension, e.g. `./worker`) next to the module at
 * `moduleUrl` (its `import.meta.url`), with that module's extension (`.ts` or `.js`).
 */
export function siblingModule(moduleUrl: string, relative: string): string {
  return fileURLToPath(new URL(`${relative}${extname(new URL(moduleUrl).pathname)}`, moduleUrl))
}
