/**
 * Minimal typings of the parts of hypercore 11 and corestore 7 llmesh uses (neither ships types).
 */
declare module 'hypercore' {
  import type { EventEmitter } from 'node:events'
  import type { Duplex } from 'node:stream'

  export interface HypercoreGetOptions {
    wait?: boolean
    timeout?: number
    valueEncoding?: string
  }
  export interface HypercoreDownloadRange {
    start?: number
    end?: number
    blocks?: number[]
    linear?: boolean
  }
  export interface HypercoreDownload {
    done(): Promise<void>
    destroy(): void
  }
  export default class Hypercore extends EventEmitter {
    readonly key: Buffer
    readonly discoveryKey: Buffer
    readonly length: number
    readonly contiguousLength: number
    readonly byteLength: number
    readonly writable: boolean
    readonly closed: boolean
    readonly peers: unknown[]
    ready(): Promise<void>
    close(): Promise<void>
    append(blocks: Buffer | Buffer[]): Promise<{ length: number; byteLength: number }>
    get(index: number, opts?: HypercoreGetOptions): Promise<Buffer | null>
    has(start: number, end?: number): Promise<boolean>
    update(opts?: { wait?: boolean }): Promise<boolean>
    download(range?: HypercoreDownloadRange): HypercoreDownload
    clear(start: number, end?: number): Promise<unknown>
    /** Compacts the core's storage range in RocksDB (returns space of deleted keys). */
    compact(): Promise<unknown>
    findingPeers(): () => void
    /** Local, unreplicated key/value data of the core (kept in its storage). */
    getUserData(key: string): Promise<Buffer | null>
    setUserData(key: string, value: Buffer | string): Promise<void>
    /** A Merkle proof for a block/upgrade request (hypercore's replication `data` message, unencoded). */
    proof(opts: {
      block?: { index: number; nodes: number }
      upgrade?: { start: number; length: number }
    }): Promise<Record<string, unknown>>
    /** Verifies a proof against the feed's key and stores what it proves; false when not applicable. */
    applyProof(proof: unknown): Promise<boolean>
    replicate(isInitiator: boolean | Duplex, opts?: Record<string, unknown>): Duplex
    /** hypercore-storage (RocksDB) at `directory`; opts reach RocksDB (e.g. `writeBufferSize`). */
    static defaultStorage(directory: string, opts?: Record<string, unknown>): object
    static createProtocolStream(isInitiator: boolean | Duplex, opts?: Record<string, unknown>): Duplex
  }
}

declare module 'corestore' {
  import type { Duplex } from 'node:stream'
  import type Hypercore from 'hypercore'

  export interface CorestoreGetOptions {
    name?: string
    key?: Buffer | string
    valueEncoding?: string
    writable?: boolean
    exclusive?: boolean
  }
  export default class Corestore {
    constructor(storage: string | object, opts?: Record<string, unknown>)
    ready(): Promise<void>
    close(): Promise<void>
    get(opts: CorestoreGetOptions | Buffer | string): Hypercore
    replicate(isInitiator: boolean | Duplex, opts?: Record<string, unknown>): Duplex
    namespace(name: string): Corestore
  }
}
