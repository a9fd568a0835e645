import { readFile } from 'node:fs/promises'
import { parse } from 'yaml'
import { z } from 'zod'
import { ConfigError } from '../errors.ts'

/*
 * One YAML file (written with comments by `beeldnet node init`) plus environment overrides named
 * BEELDNET_<SECTION>_<KEY>, e.g. BEELDNET_HTTP_PORT=8471. Validated at start; unknown keys are
 * errors, because a misspelt setting silently ignored is worse than a node that refuses to start.
 */

export const ConfigSchema = z.strictObject({
  node: z.strictObject({
    name: z.string().min(1).default('Beeldnet node')
  }).default({ name: 'Beeldnet node' }),
  http: z.strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.coerce.number().int().min(0).max(65535).default(8470)
  }).default({ host: '127.0.0.1', port: 8470 }),
  store: z.strictObject({
    retentionDays: z.coerce.number().positive().default(30),
    retentionIntervalMinutes: z.coerce.number().positive().default(60)
  }).default({ retentionDays: 30, retentionIntervalMinutes: 60 }),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
  }).default({ level: 'info' })
})

export type NodeConfig = z.infer<typeof ConfigSchema>

export function defaultConfigText (name: string): string {
  return `# Beeldnet node configuration.
# Every setting can be overridden from the environment as BEELDNET_<SECTION>_<KEY>,
# for example BEELDNET_HTTP_PORT=8471 or BEELDNET_STORE_RETENTION_DAYS=14.

node:
  # Name shown in logs and to the people using this node.
  name: ${JSON.stringify(name)}

http:
  # Where the HTTP server (health, study listing, later the API and web app) listens.
  # Keep it on loopback or behind the hospital's reverse proxy.
  host: 127.0.0.1
  port: 8470

store:
  # The node is an exchange point, not the archive: studies not updated for this many days
  # are purged, except studies an unfinished transfer still needs.
  retentionDays: 30
  # How often the retention sweep runs.
  retentionIntervalMinutes: 60

log:
  # fatal, error, warn, info, debug, trace or silent
  level: info
`
}

function envName (section: string, key: string): string {
  return `BEELDNET_${section.toUpperCase()}_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`
}

/** Applies BEELDNET_<SECTION>_<KEY> variables for every key the schema knows. */
function applyEnv (raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw }
  for (const [section, sectionSchema] of Object.entries(ConfigSchema.shape)) {
    const inner = sectionSchema.unwrap() as z.ZodObject
    for (const key of Object.keys(inner.shape)) {
      const value = env[envName(section, key)]
      if (value === undefined) continue
      const current = out[section]
      out[section] = { ...(typeof current === 'object' && current !== null ? current : {}), [key]: value }
    }
  }
  return out
}

export function parseConfig (text: string, env: NodeJS.ProcessEnv = process.env, source = 'config'): NodeConfig {
  let raw: unknown
  try {
    raw = parse(text) ?? {}
  } catch (err) {
    throw new ConfigError(`${source} is not valid YAML: ${(err as Error).message}`)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${source} must be a mapping of sections`)
  const result = ConfigSchema.safeParse(applyEnv(raw as Record<string, unknown>, env))
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`)
    throw new ConfigError(`${source} is not valid:\n  ${problems.join('\n  ')}`)
  }
  return result.data
}

export async function loadConfig (path: string, env: NodeJS.ProcessEnv = process.env): Promise<NodeConfig> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(`cannot read ${path}: ${err.message}`)
  })
  return parseConfig(text, env, path)
}
