/**
 * The files the OOM detector (oom-detector.ts) reads and writes: cgroupfs, procfs and the kernel
 * log. An interface, so unit tests run the detector on fake trees; `realSources()` is the machine's.
 */
import * as fs from 'node:fs'

/** The file operations the detector needs (sync: cgroupfs and procfs answer at once). */
export interface OomSources {
  /** File text, or undefined when missing or unreadable. */
  read(path: string): string | undefined
  /** false when the write failed. */
  write(path: string, data: string): boolean
  mkdir(path: string): boolean
  rmdir(path: string): boolean
  list(path: string): string[]
  /** Records of the kernel log (`prio,seq,usec,flags;message`), or undefined when unreadable. */
  kmsg(): string[] | undefined
}

/** The real files. */
export function realSources(): OomSources {
  const attempt = (fn: () => void): boolean => {
    try {
      fn()
      return true
    } catch {
      return false
    }
  }
  return {
    read(path) {
      try {
        return fs.readFileSync(path, 'utf8')
      } catch {
        return undefined
      }
    },
    write: (path, data) => attempt(() => fs.writeFileSync(path, data)),
    mkdir: (path) => attempt(() => fs.mkdirSync(path)),
    rmdir: (path) => attempt(() => fs.rmdirSync(path)),
    list(path) {
      try {
        return fs.readdirSync(path)
      } catch {
        return []
      }
    },
    kmsg: readKmsg,
  }
}

/** Every record /dev/kmsg holds now (one per read; EAGAIN at the end), or undefined when unreadable. */
function readKmsg(): string[] | undefined {
  let fd: number
  try {
    fd = fs.openSync('/dev/kmsg', fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  } catch {
    return undefined
  }
  const out: string[] = []
  const buf = Buffer.alloc(8192)
  try {
    for (;;) {
      let n: number
      try {
        n = fs.readSync(fd, buf, 0, buf.length, null)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EPIPE') continue // records overwritten while reading: go on with the next
        if (code === 'EAGAIN') break
        return out.length > 0 ? out : undefined
      }
      if (n <= 0) break
      out.push(buf.toString('utf8', 0, n).split('\n', 1)[0])
    }
  } finally {
    fs.closeSync(fd)
  }
  return out
}
