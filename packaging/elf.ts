/**
 * Finds the native binaries of a tree by their ELF header (no `file` needed) and tells their
 * machine: the package build refuses a tree holding another architecture's binary.
 */
import { closeSync, openSync, readdirSync, readSync } from 'node:fs'
import { join, relative } from 'node:path'

/** An ELF file of the tree. */
export interface ElfFile {
  /** Path relative to the tree's root. */
  path: string
  /** e_machine (62 x86-64, 183 aarch64, 40 arm, 243 riscv). */
  machine: number
}

/** The e_machine of an ELF file, or undefined when the file is not ELF. */
export function elfMachine(path: string): number | undefined {
  const fd = openSync(path, 'r')
  try {
    const head = Buffer.alloc(20)
    if (readSync(fd, head, 0, 20, 0) < 20) return undefined
    if (head.readUInt32BE(0) !== 0x7f454c46) return undefined
    // EI_DATA: 1 little endian, 2 big endian
    return head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18)
  } finally {
    closeSync(fd)
  }
}

/** Every ELF file under `root` (symlinks are not followed). */
export function elfFiles(root: string): ElfFile[] {
  const out: ElfFile[] = []
  for (const e of readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    const full = join(e.parentPath, e.name)
    const machine = elfMachine(full)
    if (machine !== undefined) out.push({ path: relative(root, full), machine })
  }
  return out.sort((a, b) => a.path.localeCompare(b.path))
}
