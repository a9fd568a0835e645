import { mkdir, open, stat } from 'node:fs/promises'
import { hashOfSigned } from '../protocol/canonical.ts'
import { keyidOf } from '../protocol/keys.ts'
import { parseDocument, Root as RootSchema, type Root } from '../protocol/registry/documents.ts'
import { defaultConfigText, RegistryConfigSchema, type RegistryConfigInput } from './config.ts'
import { AlreadyInitialisedError, ConfigError } from './errors.ts'
import { registryPaths } from './paths.ts'
import { RegistryStore } from './store/registry-store.ts'
import { createTimestampKeyFile } from './timestamp-key.ts'

/*
 * `beeldnet registry init`: a data directory with a commented config, the online timestamp key,
 * and the root v1 CANDIDATE. Nothing is published here: root v1 exists only once a threshold of
 * the governance keys it lists have signed it.
 */

export interface GovernanceKeyInput {
  /** base64 of the 32-byte Ed25519 public key */
  publicKey: string
  name?: string
}

export interface RegistryInitOptions extends Partial<Omit<RegistryConfigInput, 'network'>> {
  network: string
  /** signatures needed to publish (k of n) */
  threshold: number
  governanceKeys: GovernanceKeyInput[]
  /** when root v1 is issued (default: now) */
  now?: Date
}

export interface RegistryInitResult {
  dir: string
  config: string
  root: Root
  /** what governance members sign */
  rootHash: string
  keyids: string[]
  timestampKeyid: string
}

async function exists (path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false)
}

export async function initRegistry (dir: string, options: RegistryInitOptions): Promise<RegistryInitResult> {
  const paths = registryPaths(dir)
  if (await exists(paths.config) || await exists(paths.db)) throw new AlreadyInitialisedError(dir, 'registry')
  const { threshold, governanceKeys, now: givenNow, ...settings } = options
  const parsed = RegistryConfigSchema.safeParse(settings)
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '))
  const config = parsed.data
  const now = givenNow ?? new Date()
  // Validate the root before anything touches the disk: a bad key or threshold leaves no half-made registry.
  const draft = (timestampKey: { keyid: string, publicKey: string }): Root => parseDocument(RootSchema, {
    type: 'beeldnet/root',
    network: config.network,
    version: 1,
    issued: now.toISOString(),
    expires: new Date(now.getTime() + config.rootValidityDays * 86_400_000).toISOString(),
    threshold,
    governanceKeys: governanceKeys.map((k) => ({ keyid: keyidOf(k.publicKey), publicKey: k.publicKey, ...(k.name === undefined ? {} : { name: k.name }) })),
    timestampKey: { ...timestampKey, name: 'registry timestamp key' }
  }, 'root v1')
  draft({ keyid: '0'.repeat(64), publicKey: `${'A'.repeat(43)}=` })

  await mkdir(dir, { recursive: true, mode: 0o700 })
  const key = await createTimestampKeyFile(paths.timestampKey)
  const root = draft({ keyid: key.keyid, publicKey: key.publicKey })
  const rootHash = hashOfSigned(root)
  const handle = await open(paths.config, 'wx', 0o644)
  try {
    await handle.writeFile(defaultConfigText(config))
  } finally {
    await handle.close()
  }
  const store = new RegistryStore({ location: paths.db })
  await store.start()
  try {
    await store.putCandidate({ kind: 'root', signed: root, hash: rootHash, signatures: [], proposalIds: [], base: null, frozen: now.toISOString() })
  } finally {
    await store.stop()
  }
  return { dir, config: paths.config, root, rootHash, keyids: root.governanceKeys.map((k) => k.keyid), timestampKeyid: key.keyid }
}
