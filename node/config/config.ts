import { readFile, stat } from 'node:fs/promises'
import { replaceFile } from '../directory/atomic-file.ts'
import { parse, parseDocument } from 'yaml'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import { ConfigError } from '../errors.ts'
import { DEFAULT_MAX_STREAM_WINDOW } from '../../protocol/p2p/ids.ts'
import { DUPLICATE_POLICIES } from '../store/duplicates.ts'
import { DEFAULT_MIN_FREE_BYTES } from '../store/disk-space.ts'

/*
 * One YAML file (written with comments by `beeldnet node init`) plus environment overrides named
 * BEELDNET_<SECTION>_<KEY>, e.g. BEELDNET_HTTP_PORT=8471. Validated at start; unknown keys are
 * errors, because a misspelt setting silently ignored is worse than a node that refuses to start.
 */

const HttpUrl = z.url({ protocol: /^https?$/, error: 'an http:// or https:// URL' })
const Multiaddr = z.string().refine((s) => { try { multiaddr(s); return s.startsWith('/') } catch { return false } }, 'a multiaddr such as /ip4/0.0.0.0/tcp/4001')

// PS3.5: up to 16 characters of the default repertoire, no backslash, not all spaces.
const AeTitle = z.string().regex(/^[\x20-\x5B\x5D-\x7E]{1,16}$/, 'an AE title: 1 to 16 printable ASCII characters, no backslash')
  .refine((s) => s.trim() !== '', 'an AE title cannot be only spaces')

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4 }

/** A size in bytes: a number, or a number with a unit as people write it ("1 GiB", "500MB"). */
const Bytes = z.preprocess((value) => {
  if (typeof value !== 'string') return value
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(value)
  const unit = m === null ? undefined : SIZE_UNITS[m[2]!.toLowerCase()]
  return m === null || unit === undefined ? value : Math.round(Number(m[1]) * unit)
}, z.number({ error: 'a size in bytes, or with a unit: 1GiB, 500MB, 2TiB' }).int().min(0))

function splitList (value: unknown): unknown {
  return typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter((s) => s !== '') : value
}

export const ConfigSchema = z.strictObject({
  node: z.strictObject({
    name: z.string().min(1).default('Beeldnet node')
  }).default({ name: 'Beeldnet node' }),
  http: z.strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.coerce.number().int().min(0).max(65535).default(8470),
    /** the reverse proxy in front (addresses or CIDRs, comma-separated): its X-Forwarded-For/-Proto are believed */
    trustProxy: z.string().default(''),
    // Always required; the key is still read so a config from before says clearly what changed.
    auth: z.literal('required', { message: 'http.auth can only be required: every route but /health needs a login or an API token (remove the line)' }).optional()
  }).default({ host: '127.0.0.1', port: 8470, trustProxy: '' }),
  store: z.strictObject({
    retentionDays: z.coerce.number().positive().default(30),
    retentionIntervalMinutes: z.coerce.number().positive().max(10_080, 'at most a week').default(60),
    duplicates: z.enum(DUPLICATE_POLICIES).default('keep'),
    /** free bytes the store's disk keeps: what would leave less is refused (BEELDNET_ERR_DISK_FULL) */
    minFreeBytes: Bytes.default(DEFAULT_MIN_FREE_BYTES),
    /** at most this many bytes of studies, stored and arriving; unset: the disk is the limit */
    maxBytes: Bytes.optional()
  }).default({ retentionDays: 30, retentionIntervalMinutes: 60, duplicates: 'keep', minFreeBytes: DEFAULT_MIN_FREE_BYTES }),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
  }).default({ level: 'info' }),
  registry: z.strictObject({
    url: z.union([z.literal(''), HttpUrl]).default(''),
    pollIntervalSeconds: z.coerce.number().int().min(1).max(86_400).default(300),
    // From the environment a list comes comma-separated.
    mirrors: z.preprocess(splitList, z.array(HttpUrl).max(16)).default([])
  }).default({ url: '', pollIntervalSeconds: 300, mirrors: [] }),
  p2p: z.strictObject({
    listen: z.preprocess(splitList, z.array(Multiaddr).min(1).max(16)).default(['/ip4/127.0.0.1/tcp/0']),
    announce: z.preprocess(splitList, z.array(Multiaddr).max(16)).default([]),
    streamWindowBytes: z.coerce.number().int().min(256 * 1024).max(64 * 1024 * 1024).default(DEFAULT_MAX_STREAM_WINDOW),
    dataChannel: z.enum(['tls', 'off']).default('tls'),
    dataPort: z.coerce.number().int().min(0).max(65535).default(0),
    inboundConnectionsPerSecond: z.coerce.number().int().min(1).max(10_000).default(5)
  }).default({ listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], streamWindowBytes: DEFAULT_MAX_STREAM_WINDOW, dataChannel: 'tls', dataPort: 0, inboundConnectionsPerSecond: 5 }),
  transfers: z.strictObject({
    concurrency: z.coerce.number().int().min(1).max(64).default(4),
    perPeerConcurrency: z.coerce.number().int().min(1).max(16).default(2),
    // A time, not a count: a few restarts of the receiver would use up a count in minutes.
    retryForHours: z.coerce.number().positive().max(24 * 30, 'at most 30 days').default(24),
    /** deprecated, without effect (retryForHours replaced it): still accepted, as every config `node init` wrote before has it */
    maxAttempts: z.coerce.number().int().min(1).max(1000).optional(),
    stallTimeoutSeconds: z.coerce.number().int().min(1).max(3600).default(30),
    bulkPatientLimit: z.coerce.number().int().min(1).max(1000).default(3),
    compression: z.enum(['zstd', 'off']).default('off'),
    retryPauseMaxSeconds: z.coerce.number().positive().max(86_400).default(600)
  }).default({ concurrency: 4, perPeerConcurrency: 2, retryForHours: 24, stallTimeoutSeconds: 30, bulkPatientLimit: 3, compression: 'off', retryPauseMaxSeconds: 600 }),
  dimse: z.strictObject({
    enabled: z.preprocess((v) => v === 'true' ? true : v === 'false' ? false : v, z.boolean()).default(false),
    host: z.string().min(1).default('127.0.0.1'),
    port: z.coerce.number().int().min(0).max(65535).default(11112),
    aeTitle: AeTitle.default('BEELDNET'),
    acceptCalling: z.preprocess(splitList, z.array(AeTitle).max(1000)).default([]),
    destinations: z.array(z.strictObject({
      aeTitle: AeTitle,
      host: z.string().min(1),
      port: z.coerce.number().int().min(1).max(65535)
    })).max(1000).default([]),
    /** unset: 60 (DEFAULT_IDLE_SECONDS in node/dimse/dimse-service.ts) */
    idleSeconds: z.coerce.number().int().min(1).max(86_400).optional()
  }).default({ enabled: false, host: '127.0.0.1', port: 11112, aeTitle: 'BEELDNET', acceptCalling: [], destinations: [] }),
  routing: z.strictObject({
    rules: z.array(z.strictObject({
      calledAeTitle: AeTitle.optional(),
      callingAeTitle: AeTitle.optional(),
      modality: z.string().regex(/^[A-Z]{2,4}$/, 'a modality code such as CT').optional(),
      studyDescription: z.string().min(1).max(64).optional(),
      to: z.strictObject({ ura: z.string().regex(/^[0-9]{8}$/, 'a URA number has 8 digits'), department: z.string().regex(/^[A-Z0-9-]{1,16}$/, 'a department code such as RAD') }),
      reason: z.string().min(1).max(512).default('routing rule')
    })).max(1000).default([])
  }).default({ rules: [] }),
  audit: z.strictObject({
    syslog: z.union([z.literal(''), z.string().regex(/^[A-Za-z0-9.-]+:[0-9]{1,5}$|^\[[0-9a-fA-F:]+\]:[0-9]{1,5}$/, 'host:port of a TCP syslog collector')]).default('')
  }).default({ syslog: '' }),
  pacs: z.strictObject({
    destination: z.union([z.literal(''), AeTitle]).default(''),
    forward: z.enum(['none', 'confirm', 'auto']).default('confirm'),
    mappingFile: z.string().default(''),
    exportMaxAttempts: z.coerce.number().int().min(1).max(100_000).default(100),
    exportBackoffSeconds: z.coerce.number().int().min(1).max(86_400).default(30),
    exportBackoffMaxSeconds: z.coerce.number().int().min(1).max(604_800).default(1800)
  }).default({ destination: '', forward: 'confirm', mappingFile: '', exportMaxAttempts: 100, exportBackoffSeconds: 30, exportBackoffMaxSeconds: 1800 }),
  shares: z.strictObject({
    defaultDays: z.coerce.number().int().min(1).max(3650).default(14),
    maxDays: z.coerce.number().int().min(1).max(3650).default(90),
    defaultDownloads: z.coerce.number().int().min(1).max(20).default(5),
    publicUrl: z.union([z.literal(''), z.url({ protocol: /^https$/, error: 'an https:// URL (the address IT exposes /share/ under)' })]).default('')
  }).refine((s) => s.defaultDays <= s.maxDays, { message: 'defaultDays cannot be more than maxDays', path: ['defaultDays'] })
    .default({ defaultDays: 14, maxDays: 90, defaultDownloads: 5, publicUrl: '' }),
  policy: z.strictObject({
    pull: z.array(z.strictObject({
      ura: z.string().regex(/^[0-9]{8}$/, 'a URA number has 8 digits'),
      purposes: z.array(z.enum(['treatment', 'second-opinion', 'referral', 'emergency'])).min(1).optional(),
      departments: z.array(z.string().regex(/^[A-Z0-9-]{1,16}$/, 'a department code such as RAD')).min(1).optional(),
      requireConsent: z.boolean().optional(),
      decision: z.enum(['allow', 'queue', 'refuse'])
    })).max(10_000).default([])
  }).default({ pull: [] })
})

export type NodeConfig = z.infer<typeof ConfigSchema>
export type DimseDestination = NodeConfig['dimse']['destinations'][number]
export type RoutingRule = NodeConfig['routing']['rules'][number]

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
  # Every route but /health needs a login (beeldnet node user add) or an API token (beeldnet node
  # token add); the CLI on this machine uses the token the node keeps in <data-dir>/cli-token.
  # Behind a reverse proxy that terminates TLS, name it here (addresses or CIDRs, comma-separated):
  # its X-Forwarded-For and X-Forwarded-Proto are then believed (session cookies become Secure, the
  # login rate limit counts per client). Empty: nobody's forwarded headers are believed.
  trustProxy: ''

store:
  # The node is an exchange point, not the archive: studies not updated for this many days
  # are purged, except studies an unfinished transfer still needs.
  retentionDays: 30
  # How often the retention sweep runs.
  retentionIntervalMinutes: 60
  # What a copy of an instance the node already holds (same SOP Instance UID) becomes, by any
  # route (C-STORE, STOW-RS, import, a peer's push). PACSes re-send, and re-send in other transfer
  # syntaxes. "The same instance" is the same bytes, or the same SOP class, study, series, patient
  # (ID and issuer), rows, columns and number of frames; anything else is a conflict.
  # - keep: the stored copy stays and the sender is told success (C-STORE 0000); a conflict is
  #   refused (C-STORE C000, STOW-RS failure C000) and logged: it needs a person.
  # - replace-if-changed: other bytes replace the stored copy (within its study and patient); the
  #   same bytes are success; a conflict with another study or patient is refused.
  # - refuse: any other bytes are refused (C000); the same bytes again are success.
  # Every copy kept, replaced or refused is in the log and the audit trail.
  duplicates: keep
  # Free space the store's disk keeps. A study offered by a peer (counting the bytes promised to
  # transfers under way), a STOW-RS or C-STORE instance or an import that would leave less is
  # refused with BEELDNET_ERR_DISK_FULL (peers retry later, C-STORE gets A700, STOW-RS 507) until
  # retention or a deletion frees space; the node goes on serving studies meanwhile. A number of
  # bytes or with a unit: 1GiB, 500MB.
  minFreeBytes: 1GiB
  # A quota, for a node given a share of a volume: at most this much of studies, stored and
  # arriving. Unset (the default): the disk is the limit.
  # maxBytes: 500GiB

log:
  # fatal, error, warn, info, debug, trace or silent
  level: info

registry:
  # The registry this node enrolled with; '' means none yet (\`beeldnet node enrol\` sets it).
  # Whatever it serves is verified against the pinned root: it is trusted for nothing.
  url: ''
  # How often to ask the registry for a newer directory.
  pollIntervalSeconds: 300
  # Other URLs serving the same files (/v1/directory, /v1/directories/N, ...), tried when the
  # registry does not answer. Files prove themselves, so a mirror needs no trust.
  # From the environment: BEELDNET_REGISTRY_MIRRORS=https://a.example,https://b.example
  mirrors: []

p2p:
  # Where this node accepts connections from peer nodes (libp2p multiaddrs, TCP). Peers dial the
  # addresses the directory lists for this node (given at enrolment with --address), so listen
  # where those lead, e.g. [/ip4/0.0.0.0/tcp/4001]. Only nodes the verified directory admits get
  # past the handshake. The default, loopback on a free port, reaches nothing outside this machine.
  # From the environment: BEELDNET_P2P_LISTEN=/ip4/0.0.0.0/tcp/4001
  listen: [/ip4/127.0.0.1/tcp/0]
  # Addresses to announce instead of the listen addresses, behind NAT or a port forward;
  # [] announces the listen addresses.
  announce: []
  # How far ahead a peer may send on one transfer stream (yamux window). One transfer moves at most
  # about window / round-trip time: 1 MiB is 100 MB/s at 10 ms. Raise it for long, fast links;
  # each byte is memory a receiving node may hold per transfer (1 MiB keeps a node moving a study
  # under 200 MB). A sender is bound by the receiver's window. 256 KiB to 64 MiB.
  # From the environment: BEELDNET_P2P_STREAM_WINDOW_BYTES=4194304
  streamWindowBytes: 1048576
  # Instance bytes of a push go over a TLS 1.3 connection to the receiver's data port (about a third
  # of the CPU of the libp2p stream; TCP's own windows follow the link). Both ends authenticate with
  # their node keys and a one-time token agreed on the libp2p stream; only admitted peers get in.
  # 'off' keeps them on the libp2p stream. A sender that cannot reach the data port falls back to it.
  dataChannel: tls
  # The data port, on the host of the first listen address; 0 picks a free one. Fix it (and open it
  # in the firewall next to the libp2p port) when peers reach this node through one.
  # From the environment: BEELDNET_P2P_DATA_PORT=4002
  dataPort: 0
  # New connections a second accepted from one IP address (libp2p's inbound threshold); more are
  # dropped. Raise it when many peers share one address (a proxy, or a simulation on loopback).
  # From the environment: BEELDNET_P2P_INBOUND_CONNECTIONS_PER_SECOND=100
  inboundConnectionsPerSecond: 5

transfers:
  # Outgoing studies sent at once, to all peers together and to one peer.
  concurrency: 4
  perPeerConcurrency: 2
  # How long a transfer that fails is tried again (with growing pauses, started over whenever
  # the receiving node connects again) before it is marked failed, counted from its first
  # failure. From the environment: BEELDNET_TRANSFERS_RETRY_FOR_HOURS=48
  retryForHours: 24
  # A peer that sends nothing (or takes nothing) for this long has its stream reset.
  stallTimeoutSeconds: 30
  # A push needs no consent, but sending more than this many studies of one patient to one
  # institution within a day needs a person to confirm it (confirmBulk): no whole-patient bulk
  # sends by mistake. Routing rules and approved pulls are not counted against it.
  bulkPatientLimit: 3
  # zstd on the wire for uncompressed pixel data (about 2.9x on CT), used when both nodes allow it:
  # worth it on links slower than ~1 Gbit/s, costly in CPU on faster ones. From the environment:
  # BEELDNET_TRANSFERS_COMPRESSION=zstd
  compression: off
  # The longest pause between two tries of a failing transfer (the pauses double from 5 s up to it).
  # From the environment: BEELDNET_TRANSFERS_RETRY_PAUSE_MAX_SECONDS=120
  retryPauseMaxSeconds: 600

dimse:
  # The node's DICOM (DIMSE) service for the hospital's PACS and modalities: C-ECHO, C-STORE
  # (the PACS routes studies to the node), C-FIND, C-MOVE and C-GET (the PACS pulls received ones).
  enabled: false
  host: 127.0.0.1
  port: 11112
  aeTitle: BEELDNET
  # Calling AE titles allowed to associate (the destinations below are allowed too); any other
  # caller is refused with a logged reason. From the environment: BEELDNET_DIMSE_ACCEPT_CALLING=PACS,CT1
  acceptCalling: []
  # Where the node sends studies with C-STORE: C-MOVE destinations and the local PACS.
  # - { aeTitle: PACS, host: 10.0.0.5, port: 104 }
  destinations: []
  # An association on which the caller sends nothing for this long, while the node owes it no
  # answer, is aborted (A-ABORT) and its connection closed. A caller's A-ABORT or close ends an
  # association at once, and an instance it was sending is discarded.
  idleSeconds: 60

routing:
  # Studies the PACS or a modality sends to this node (DIMSE C-STORE) that go on to another hospital
  # by themselves, once the association is released. The first rule that matches decides; every
  # condition given must hold. A calledAeTitle here is accepted as a called AE title too, so the PACS
  # can have one destination per hospital. studyDescription takes * and ? wildcards.
  # - { calledAeTitle: TO_ISALA, to: { ura: '01002154', department: RAD }, reason: verwijzing }
  # - { callingAeTitle: CT1, modality: CT, studyDescription: '*trauma*', to: { ura: '01000471', department: SEH } }
  rules: []

audit:
  # The hospital's audit repository: every audit record also goes there as a DICOM audit message
  # (PS3.15 A.5) over TCP syslog (RFC 5424, octet-counted frames), host:port. While it is down the
  # records wait in the trail and follow when it is back. '' = the trail only.
  syslog: ''

pacs:
  # The local PACS received studies go to (an AE title in dimse.destinations), reconciled first:
  # patient id, issuer and accession become this hospital's, found by BSN; the originals stay in
  # the dataset. A study whose patient is not found is held for a person, never guessed.
  destination: ''
  # none: only on request; confirm: a person sends each (API, web app); auto: as soon as it arrives.
  forward: confirm
  # CSV bsn,patientId,issuer[,accessionNumber] (relative to the data directory); '' = no lookup,
  # every study waits for a person to enter the local patient id.
  mappingFile: ''
  # Exports to the PACS are a queue (beeldnet node exports): a failed one is tried again after
  # exportBackoffSeconds, doubling up to exportBackoffMaxSeconds, up to exportMaxAttempts attempts
  # in all (100: about two days), across restarts; a failure no retry fixes ends it at once.
  exportMaxAttempts: 100
  exportBackoffSeconds: 30
  exportBackoffMaxSeconds: 1800

shares:
  # A patient's share link to one study (made by a clinician on the study page): a URL and a code
  # given apart, for defaultDays unless the clinician picks otherwise (at most maxDays), good for
  # defaultDownloads downloads of the study (at most 20). publicUrl: the https:// address IT
  # exposes /share/ under through its reverse proxy ('' = the address the clinician reached the node at).
  defaultDays: 14
  maxDays: 90
  defaultDownloads: 5
  publicUrl: ''

policy:
  # Who may pull studies from this node. A push needs no rule (implied consent); a pull needs the
  # source to agree. Rules are tried in order; the first whose ura, purposes and (requesting)
  # departments fit decides; none matching refuses the pull. decision: allow sends the study at
  # once, queue waits for staff of this hospital to approve (API /api/approvals), refuse refuses.
  # requireConsent: the patient must have a consent record for it (API /api/consents).
  # - { ura: '12345678', purposes: [treatment, referral], decision: allow }
  # - { ura: '12345678', purposes: [second-opinion], requireConsent: true, decision: queue }
  pull: []
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

/**
 * Sets one value in the YAML file, keeping its comments and layout (the yaml Document API), after
 * checking the result still validates. Written to a temp file and renamed, with the file's mode.
 */
export async function updateConfigFile (path: string, keyPath: string[], value: unknown): Promise<void> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(`cannot read ${path}: ${err.message}`)
  })
  const doc = parseDocument(text)
  if (doc.errors.length > 0) throw new ConfigError(`${path} is not valid YAML: ${doc.errors[0]!.message}`)
  doc.setIn(keyPath, value)
  const next = doc.toString()
  parseConfig(next, {}, path)
  await replaceFile(path, next, (await stat(path)).mode & 0o777)
}
