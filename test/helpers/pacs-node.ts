import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pino } from 'pino'
import { onTestFinished } from 'vitest'
import { parseDocument } from 'yaml'
import { BeeldnetNode } from '../../node/beeldnet-node.ts'
import { initNode } from '../../node/init.ts'
import { nodePaths } from '../../node/paths.ts'
import { freePort } from '../../simulations/bench/processes.ts'
import { generateStudy, type GeneratedStudy } from '../../simulations/generator/index.ts'
import { ensureDemoAccounts } from '../../simulations/scenarios/demo-accounts.ts'

/*
 * A node for the tests of the export queue to the PACS (the CLI's and the web app's), set up one
 * way: its PACS is named and has a port, but nothing listens there yet, so the first export fails
 * as it would with the PACS down; the test brings the PACS up later with
 * startStorescp(PACS_AE, <dir>, pacsPort).
 */

export const PACS_AE = 'ISALA_PACS'

export interface PacsNodeInit {
  /** the node's `pacs` settings beside its destination, e.g. `{ exportBackoffSeconds: 3600 }` */
  pacs: Record<string, number>
  /** the demo accounts (arts, beheer, ...) for logging in from a browser */
  demoAccounts?: boolean
}

/** Initialises a node in `dataDir` whose PACS is PACS_AE at `pacsPort`, not yet listening. */
export async function initPacsNode (dataDir: string, init: PacsNodeInit): Promise<{ pacsPort: number }> {
  await initNode(dataDir, { name: 'Isala' })
  if (init.demoAccounts === true) await ensureDemoAccounts(dataDir, 0)
  const pacsPort = await freePort()
  const configPath = nodePaths(dataDir).config
  const config = parseDocument(await readFile(configPath, 'utf8'))
  config.setIn(['dimse', 'destinations'], [{ aeTitle: PACS_AE, host: '127.0.0.1', port: pacsPort }])
  config.setIn(['pacs', 'destination'], PACS_AE)
  for (const [setting, value] of Object.entries(init.pacs)) config.setIn(['pacs', setting], value)
  await writeFile(configPath, config.toString())
  return { pacsPort }
}

/** Starts the node in `dataDir`, silent, stopped when the test ends; `httpPort` '0' takes any free one. */
export async function startPacsNode (dataDir: string, httpPort = '0'): Promise<BeeldnetNode> {
  const node = new BeeldnetNode({ dataDir, env: { BEELDNET_HTTP_PORT: httpPort, BEELDNET_LOG_LEVEL: 'silent' }, logger: pino({ level: 'silent' }) })
  onTestFinished(async () => { await node.stop() })
  await node.start()
  return node
}

/** Generates a study of `instances` small CR images of AMC's patient `patientId` and imports it into the running node. */
export async function importStudy (node: BeeldnetNode, dataDir: string, study: { seed: number, patientId: string, instances: number }): Promise<GeneratedStudy> {
  const generated = await generateStudy(join(dataDir, 'study-in'), { seed: study.seed, patient: { id: study.patientId, issuer: 'AMC' }, series: [{ modality: 'CR', instances: study.instances, rows: 16, columns: 16 }] })
  const session = node.store.beginImport()
  for (const i of generated.instances) await session.add(i.path)
  await session.commit()
  return generated
}
