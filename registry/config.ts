import { readFile } from 'node:fs/promises'
import { parse } from 'yaml'
import { z } from 'zod'
import { NetworkName } from '../protocol/registry/documents.ts'
import { ConfigError } from './errors.ts'

/*
 * One YAML file (`registry.yaml`, written with comments by `beeldnet registry init`) plus
 * environment overrides BEELDNET_REGISTRY_<KEY>, e.g. BEELDNET_REGISTRY_PORT=8481 or
 * BEELDNET_REGISTRY_RATE_LIMIT_PER_MINUTE=600. Unknown keys are errors: a misspelt setting
 * silently ignored is worse than a registry that refuses to start.
 */

export const RegistryConfigSchema = z.strictObject({
  network: NetworkName,
  host: z.string().min(1).default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(8480),
  directoryValidityDays: z.coerce.number().int().min(1).max(366).default(30),
  rootValidityDays: z.coerce.number().int().min(1).max(3650).default(365),
  timestampValidityMinutes: z.coerce.number().int().min(1).max(1440).default(60),
  /** per client address; 0 turns the limit off (benchmarks, a registry behind a limiting proxy) */
  rateLimitPerMinute: z.coerce.number().int().min(0).default(120),
  bodyLimitBytes: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(65_536),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
})

export type RegistryConfig = z.infer<typeof RegistryConfigSchema>
export type RegistryConfigInput = z.input<typeof RegistryConfigSchema>

export function envName (key: string): string {
  return `BEELDNET_REGISTRY_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`
}

export function defaultConfigText (config: RegistryConfig): string {
  return `# Beeldnet registry configuration.
# Every setting can be overridden from the environment as BEELDNET_REGISTRY_<KEY>,
# for example BEELDNET_REGISTRY_PORT=8481 or BEELDNET_REGISTRY_LOG_LEVEL=debug.

# The network this registry serves; every signed document names it.
network: ${config.network}

# Where the HTTP API listens. Put a TLS-terminating reverse proxy in front of it.
host: ${config.host}
port: ${config.port}

# How long a published directory stays valid: governance must publish (or renew) within this.
directoryValidityDays: ${config.directoryValidityDays}
# How long a root version stays valid.
rootValidityDays: ${config.rootValidityDays}
# How long a timestamp (signed by the registry's online key) stays fresh. It is re-signed when
# half of this has passed, and on every publish.
timestampValidityMinutes: ${config.timestampValidityMinutes}

# Requests a minute per client address (0: no limit).
rateLimitPerMinute: ${config.rateLimitPerMinute}
# Largest request body accepted; registry messages are small.
bodyLimitBytes: ${config.bodyLimitBytes}

# fatal, error, warn, info, debug, trace or silent
logLevel: ${config.logLevel}
`
}

/** File values, then BEELDNET_REGISTRY_* variables, then `overrides` (for tests and embedding). */
export function parseConfig (text: string, options: { env?: NodeJS.ProcessEnv, overrides?: Partial<RegistryConfigInput>, source?: string } = {}): RegistryConfig {
  const source = options.source ?? 'registry config'
  const env = options.env ?? process.env
  let raw: unknown
  try {
    raw = parse(text) ?? {}
  } catch (err) {
    throw new ConfigError(`${source} is not valid YAML: ${(err as Error).message}`)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${source} must be a mapping of settings`)
  const merged: Record<string, unknown> = { ...raw }
  for (const key of Object.keys(RegistryConfigSchema.shape)) {
    const value = env[envName(key)]
    if (value !== undefined) merged[key] = value
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) if (value !== undefined) merged[key] = value
  const result = RegistryConfigSchema.safeParse(merged)
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}${i.path.length === 1 ? ` (or ${envName(String(i.path[0]))})` : ''}`)
    throw new ConfigError(`${source} is not valid:\n  ${problems.join('\n  ')}`)
  }
  return result.data
}

export async function loadConfig (path: string, options: { env?: NodeJS.ProcessEnv, overrides?: Partial<RegistryConfigInput> } = {}): Promise<RegistryConfig> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(`cannot read ${path}: ${err.message}`)
  })
  return parseConfig(text, { ...options, source: path })
}
