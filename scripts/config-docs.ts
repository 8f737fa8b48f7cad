/** Writes docs/config.md from the option table (node/config/options.ts). */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { configMarkdown } from '../node/config/docs.ts'

await writeFile(join(import.meta.dirname, '../docs/config.md'), configMarkdown())
