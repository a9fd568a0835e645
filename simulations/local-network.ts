// `npm start`: a local Beeldnet node with generated sample studies, its addresses printed.
// (Later issues grow this into a registry plus several hospital nodes.)
// Data lives in ./data/local (BEELDNET_LOCAL_DIR overrides); delete it to start afresh.
import { rm, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { BeeldnetNode } from '../node/beeldnet-node.ts'
import { importFiles } from '../node/dicom/file-import.ts'
import { initNode } from '../node/init.ts'
import { nodePaths } from '../node/paths.ts'
import { StudyStore } from '../node/store/study-store.ts'
import { generateStudy, samplePatients, writeMediaLayout, type SeriesSpec, type StudySpec } from './generator/index.ts'

const root = resolve(process.env.BEELDNET_LOCAL_DIR ?? join(import.meta.dirname, '..', 'data', 'local'))
const nodeDir = join(root, 'ziekenhuis-zuid')

/** A mix that looks like a week of referrals: modalities, transfer syntaxes, character sets, reports. */
function sampleStudies (): StudySpec[] {
  const series: SeriesSpec[][] = [
    [{ modality: 'CT', instances: 40, rows: 256, columns: 256, description: 'CT thorax' }],
    [{ modality: 'MR', instances: 20, rows: 256, columns: 256, transferSyntax: 'implicit-le', description: 'MR knie' }],
    [{ modality: 'CR', instances: 2, rows: 512, columns: 512, transferSyntax: 'rle', description: 'X-thorax' }],
    [{ modality: 'US', instances: 3, frames: 4, transferSyntax: 'jpeg-baseline', description: 'Echo abdomen' }],
    [{ modality: 'CT', instances: 1, rows: 256, columns: 256, frames: 60, description: 'CT hersenen (multi-frame)' }],
    [{ modality: 'DX', instances: 2, rows: 512, columns: 512, transferSyntax: 'explicit-be', description: 'X-hand' }]
  ]
  return samplePatients().map((patient, i) => ({
    seed: 100 + i,
    patient,
    series: series[i % series.length]!,
    reports: { sr: i % 2 === 0, pdf: i % 3 !== 2 }
  }))
}

async function loadSamples (): Promise<void> {
  const store = new StudyStore({ dir: nodeDir })
  await store.start()
  try {
    if ((await store.findStudies({ limit: 1 })).length > 0) return
    const samples = join(root, 'samples')
    await rm(samples, { recursive: true, force: true })
    console.log('generating sample studies ...')
    const paths: string[] = []
    for (const [i, spec] of sampleStudies().entries()) {
      const study = await generateStudy(join(samples, `study-${i + 1}`), spec)
      paths.push(...study.instances.map((x) => x.path))
    }
    // and one patient's DVD, DICOMDIR and all
    const dvd = join(samples, 'dvd')
    await writeMediaLayout(dvd, [{ seed: 900, series: [{ modality: 'CT', instances: 12, rows: 128, columns: 128 }], reports: { pdf: true } }])
    const summary = await importFiles([...paths, dvd], { store })
    console.log(`imported ${summary.stored} instances in ${summary.studies.length} studies (${summary.rejected.length} rejected)`)
  } finally {
    await store.stop()
  }
}

const initialised = await stat(nodePaths(nodeDir).config).then(() => true, () => false)
if (!initialised) {
  const identity = await initNode(nodeDir, { name: 'Ziekenhuis Zuid (local)' })
  console.log(`initialised node in ${nodeDir} (peer id ${identity.peerId})`)
}
await loadSamples()

const node = new BeeldnetNode({ dataDir: nodeDir })
await node.start()
console.log(`
Beeldnet local network is running.
  node "${node.config.node.name}"  peer id ${node.identity.peerId}
    health   ${node.url}/health
    studies  ${node.url}/api/studies
  data in ${root}
Press Ctrl-C to stop.`)

const stop = (): void => { void node.stop().then(() => process.exit(0)) }
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
