import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { Department, NetworkName, Ura } from '../../protocol/registry/documents.ts'
import { NotALocalNetworkError } from './errors.ts'

/*
 * `<dataDir>/network.json`: what a local network was made of, written last by the setup. Its
 * presence means "set up completely, reuse me"; paths in it are relative to the data directory
 * so the directory can be moved. The libp2p addresses are recorded here because the directory
 * lists them: every later start must listen on exactly these.
 */

export const MANIFEST_FILE = 'network.json'

const SampleSize = z.enum(['demo', 'test'])

/**
 * The directory format its registry and nodes were set up with. Absent: made before the signed
 * header and entries root (issue 18), which this version's registry does not take.
 */
export const DIRECTORY_FORMAT = 2

const Manifest = z.strictObject({
  type: z.literal('beeldnet/local-network'),
  directoryFormat: z.literal(DIRECTORY_FORMAT).optional(),
  network: NetworkName,
  created: z.string(),
  registry: z.strictObject({ dir: z.string(), rootHash: z.string().regex(/^[0-9a-f]{64}$/) }),
  governance: z.strictObject({
    threshold: z.number().int().min(1),
    members: z.array(z.strictObject({ name: z.string(), keyid: z.string(), file: z.string() })).min(1)
  }),
  sampleSize: SampleSize,
  nodes: z.array(z.strictObject({
    slug: z.string(),
    name: z.string(),
    ura: Ura,
    /** IssuerOfPatientID of its sample patients */
    issuer: z.string(),
    departments: z.array(Department),
    dir: z.string(),
    peerId: z.string(),
    addresses: z.array(z.string()).min(1),
    samples: z.array(z.string())
  })).min(1)
})

export type LocalNetworkManifest = z.infer<typeof Manifest>
export type ManifestNode = LocalNetworkManifest['nodes'][number]
export type SampleSizeName = z.infer<typeof SampleSize>

export async function readManifest (dataDir: string): Promise<LocalNetworkManifest | undefined> {
  let text: string
  try {
    text = await readFile(join(dataDir, MANIFEST_FILE), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new NotALocalNetworkError(dataDir, `has a ${MANIFEST_FILE} that is not JSON`)
  }
  const parsed = Manifest.safeParse(value)
  if (!parsed.success) throw new NotALocalNetworkError(dataDir, `has a ${MANIFEST_FILE} this version does not understand (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`)
  return parsed.data
}

export async function writeManifest (dataDir: string, manifest: LocalNetworkManifest): Promise<void> {
  const path = join(dataDir, MANIFEST_FILE)
  await writeFile(`${path}.tmp`, JSON.stringify(Manifest.parse(manifest), null, 2) + '\n')
  await rename(`${path}.tmp`, path)
}
