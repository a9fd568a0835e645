import { stat } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import { pino, type Logger } from 'pino'
import { loadConfig, type RegistryConfig, type RegistryConfigInput } from './config.ts'
import { NotInitialisedError } from './errors.ts'
import { createRegistryHttpServer } from './http/server.ts'
import { registryPaths } from './paths.ts'
import { RegistryService } from './service.ts'
import { RegistryStore } from './store/registry-store.ts'
import { loadTimestampKeyFile } from './timestamp-key.ts'

/*
 * The long-running registry: config, store, workflow service and HTTP server, with start/stop.
 * Everything the HTTP API does is also a method here, so tests and simulations can drive it directly.
 */

export interface RegistryComponents {
  /** where logs go (default: pino JSON on stdout at the configured logLevel) */
  logger?: Logger
  /** the time (default: the system clock) */
  clock?: () => Date
}

export interface RegistryInit extends Partial<RegistryConfigInput> {
  /** the data directory made by `registry init` */
  dir: string
  /** environment for BEELDNET_REGISTRY_* overrides (default process.env) */
  env?: NodeJS.ProcessEnv
  /** a store that does not verify: 'refuse' to start (default) or 'serve' it read-only, flagged */
  onTamper?: 'refuse' | 'serve'
}

export class Registry {
  readonly dir: string
  config!: RegistryConfig
  logger!: Logger
  service!: RegistryService
  private readonly components: RegistryComponents
  private readonly init: RegistryInit
  private store: RegistryStore | undefined
  private http: FastifyInstance | undefined

  constructor (components: RegistryComponents, init: RegistryInit) {
    this.components = components
    this.init = init
    this.dir = init.dir
  }

  async start (): Promise<void> {
    const paths = registryPaths(this.dir)
    if (!await stat(paths.config).then(() => true, () => false)) throw new NotInitialisedError(this.dir, 'registry')
    const { dir: _dir, env, onTamper, ...overrides } = this.init
    this.config = await loadConfig(paths.config, { env, overrides })
    this.logger = this.components.logger ?? pino({ level: this.config.logLevel, base: { registry: this.config.network } })
    const timestampKey = await loadTimestampKeyFile(paths.timestampKey)
    this.store = new RegistryStore({ location: paths.db })
    await this.store.start()
    try {
      this.service = new RegistryService({ store: this.store, logger: this.logger, timestampKey, clock: this.components.clock }, {
        network: this.config.network,
        directoryValidityDays: this.config.directoryValidityDays,
        rootValidityDays: this.config.rootValidityDays,
        timestampValidityMinutes: this.config.timestampValidityMinutes,
        onTamper
      })
      await this.service.start()
      this.http = await createRegistryHttpServer({ service: this.service, logger: this.logger }, {
        bodyLimitBytes: this.config.bodyLimitBytes,
        rateLimitPerMinute: this.config.rateLimitPerMinute
      })
      await this.http.listen({ host: this.config.host, port: this.config.port })
    } catch (err) {
      await this.http?.close()
      await this.store.stop()
      this.http = undefined
      this.store = undefined
      throw err
    }
    this.logger.info({ url: this.url, network: this.config.network }, 'registry started')
  }

  /** http://host:port the server listens on (port 0 picks a free one). */
  get url (): string {
    const address = this.http?.server.address()
    if (address === null || address === undefined || typeof address === 'string') throw new Error('the registry is not listening')
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    return `http://${host}:${address.port}`
  }

  async stop (): Promise<void> {
    await this.http?.close()
    await this.service?.stop()
    await this.store?.stop()
    this.http = undefined
    this.store = undefined
    this.logger?.info('registry stopped')
  }

  /* The workflow, for in-process use; the HTTP API calls the same methods. */
  submitEnrolment (value: unknown): ReturnType<RegistryService['submitEnrolment']> { return this.service.submitEnrolment(value) }
  submitProposal (value: unknown): ReturnType<RegistryService['submitProposal']> { return this.service.submitProposal(value) }
  candidate (): ReturnType<RegistryService['candidate']> { return this.service.candidate() }
  addSignature (value: unknown): ReturnType<RegistryService['addSignature']> { return this.service.addSignature(value) }
  discardCandidate (value: unknown): ReturnType<RegistryService['discardCandidate']> { return this.service.discardCandidate(value) }
  timestamp (): ReturnType<RegistryService['timestamp']> { return this.service.timestamp() }
  status (): ReturnType<RegistryService['status']> { return this.service.status() }
}

export function createRegistry (components: RegistryComponents, init: RegistryInit): Registry {
  return new Registry(components, init)
}
