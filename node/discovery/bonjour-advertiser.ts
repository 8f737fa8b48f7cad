/**
 * DNS-SD advertisement for people and tools: the node's HTTP API as `_llmesh._tcp` with TXT
 * records (id, fleet, role, model=model@version,…). Each node publishes a unique host name
 * (`llmesh-<id suffix>.local`): avahi cannot resolve a service whose host name is shared by
 * several nodes (every namespace of a test bed has the machine's hostname).
 * `refresh()` re-publishes when the TXT content (the models) changes.
 */
import { Bonjour, type Service } from 'bonjour-service'
import { BONJOUR_SERVICE_TYPE } from '../constants.ts'
import type { Logger } from '../logger.ts'

/** Options of the advertiser. */
export interface BonjourAdvertiserInit {
  id: string
  fleet: string
  role: string
  /** API port to advertise. */
  port: () => number
  /** `model@version` of the active models. */
  models: () => string[] | Promise<string[]>
}

/** What the advertiser uses. */
export interface BonjourAdvertiserComponents {
  logger: Logger
}

/** Unique DNS-SD host name of a node. */
export function hostNameOf(id: string): string {
  return `llmesh-${id.slice(-12).toLowerCase()}.local`
}

/** Publishes and withdraws the `_llmesh._tcp` service. */
export class BonjourAdvertiser {
  private bonjour: Bonjour | undefined
  private service: Service | undefined
  private readonly init: BonjourAdvertiserInit
  private readonly log: Logger
  private txtKey = ''

  constructor(components: BonjourAdvertiserComponents, init: BonjourAdvertiserInit) {
    this.init = init
    this.log = components.logger
  }

  async start(): Promise<void> {
    if (this.bonjour !== undefined) return
    this.bonjour = new Bonjour({}, (err: Error) => this.log.warn({ err }, 'mdns responder error'))
    await this.publish()
  }

  /** Re-publishes if the TXT content changed. */
  async refresh(): Promise<void> {
    if (this.bonjour === undefined) return
    const txt = await this.txt()
    if (JSON.stringify(txt) !== this.txtKey) await this.publish()
  }

  async stop(): Promise<void> {
    const b = this.bonjour
    if (b === undefined) return
    this.bonjour = undefined
    await this.unpublish(b)
    await new Promise<void>((resolve) => b.destroy(() => resolve()))
  }

  private async txt(): Promise<Record<string, string>> {
    const models = await this.init.models()
    return { id: this.init.id, fleet: this.init.fleet, role: this.init.role, model: models.join(',') }
  }

  private async unpublish(b: Bonjour): Promise<void> {
    const s = this.service
    this.service = undefined
    if (s === undefined) return
    await new Promise<void>((resolve) => {
      s.stop?.(() => resolve())
      setTimeout(resolve, 1000).unref()
    })
    void b
  }

  private async publish(): Promise<void> {
    const b = this.bonjour
    if (b === undefined) return
    await this.unpublish(b)
    const txt = await this.txt()
    this.txtKey = JSON.stringify(txt)
    const name = `llmesh-${this.init.role}-${this.init.id.slice(-8)}`
    this.service = b.publish({
      name,
      type: BONJOUR_SERVICE_TYPE,
      protocol: 'tcp',
      port: this.init.port(),
      host: hostNameOf(this.init.id),
      txt,
      disableIPv6: true,
    })
    this.service.on('error', (err: Error) => this.log.warn({ err }, 'bonjour publish error'))
    this.log.info({ name, host: hostNameOf(this.init.id), txt }, 'advertising _llmesh._tcp')
  }
}
