/** `host:port` addresses of the node API. */
import { InvalidInputError } from '../../protocols/errors.ts'

/** Splits `host:port` (IPv6 as `[::1]:port`; an empty host is 127.0.0.1). */
export function parseHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address.trim())
  if (m === null) throw new InvalidInputError(`expected host:port, got ${address}`)
  const port = Number(m[3])
  if (port > 65535) throw new InvalidInputError(`port out of range in ${address}`)
  return { host: m[1] ?? (m[2] === '' ? '127.0.0.1' : m[2]), port }
}
