import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { importFiles } from '../../node/dicom/file-import.ts'
import { StudyStore } from '../../node/store/study-store.ts'
import { generateStudy, samplePatients, writeMediaLayout, type SeriesSpec, type StudySpec } from '../generator/index.ts'
import { SampleImportError } from './errors.ts'
import type { SampleSizeName } from './manifest.ts'

/*
 * Sample studies for one hospital of a local network: its own patients (its own issuer, its own
 * seeds, so no two nodes hold the same study) and a share of the modalities, transfer syntaxes
 * and character sets. 'demo' looks like a week of referrals (about a second to generate per
 * node); 'test' is two tiny studies per node, for suites that start the network.
 */

const DEMO_SERIES: SeriesSpec[][] = [
  [{ modality: 'CT', instances: 40, rows: 256, columns: 256, description: 'CT thorax' }],
  [{ modality: 'MR', instances: 20, rows: 256, columns: 256, transferSyntax: 'implicit-le', description: 'MR knie' }],
  [{ modality: 'CR', instances: 2, rows: 512, columns: 512, transferSyntax: 'rle', description: 'X-thorax' }],
  [{ modality: 'US', instances: 3, frames: 4, transferSyntax: 'jpeg-baseline', description: 'Echo abdomen' }],
  [{ modality: 'CT', instances: 1, rows: 256, columns: 256, frames: 60, description: 'CT hersenen (multi-frame)' }],
  [{ modality: 'DX', instances: 2, rows: 512, columns: 512, transferSyntax: 'explicit-be', description: 'X-hand' }]
]

const TEST_SERIES: SeriesSpec[][] = [
  [{ modality: 'CR', instances: 1, rows: 64, columns: 64, description: 'X-thorax' }],
  [{ modality: 'MR', instances: 2, rows: 64, columns: 64, transferSyntax: 'implicit-le', description: 'MR knie' }]
]

export interface SamplePlan {
  studies: StudySpec[]
  /** studies written as one patient's DVD (DICOMDIR and all), if any */
  dvd: StudySpec[]
}

/** What node `nodeIndex` (0-based) of the network holds. Deterministic: same inputs, same UIDs. */
export function samplePlan (size: SampleSizeName, nodeIndex: number, issuer: string): SamplePlan {
  const patients = samplePatients()
  const pick = (j: number): StudySpec['patient'] => ({ ...patients[(2 * nodeIndex + j) % patients.length]!, issuer })
  const seed = (j: number): number => 1000 * (nodeIndex + 1) + j
  if (size === 'test') {
    return {
      studies: TEST_SERIES.map((series, j) => ({ seed: seed(j), patient: pick(j), series, reports: { sr: j === 0 } })),
      dvd: []
    }
  }
  const studies: StudySpec[] = [0, 1].map((j) => ({
    seed: seed(j),
    patient: pick(j),
    series: DEMO_SERIES[(2 * nodeIndex + j) % DEMO_SERIES.length]!,
    reports: { sr: j === 0, pdf: (nodeIndex + j) % 3 !== 2 }
  }))
  // and one patient of this hospital with a Dutch name from the seed, seen in the emergency room
  studies.push({ seed: seed(2), patient: { issuer }, series: [{ modality: 'CT', instances: 12, rows: 128, columns: 128, description: 'CT cerebrum' }], reports: { pdf: true } })
  // The first hospital also has a patient who brought a disc from elsewhere.
  const dvd: StudySpec[] = nodeIndex === 0 ? [{ seed: 900, series: [{ modality: 'CT', instances: 12, rows: 128, columns: 128 }], reports: { pdf: true } }] : []
  return { studies, dvd }
}

export interface SampleLoadInit {
  /** the node's data directory (its store must not be open elsewhere) */
  nodeDir: string
  /** where the generated files are written (emptied first; kept afterwards, for `node import` demos) */
  workDir: string
  plan: SamplePlan
  signal?: AbortSignal
}

export interface SampleLoadResult {
  /** StudyInstanceUIDs imported, in plan order; empty when the store already held studies */
  studies: string[]
  instances: number
}

/**
 * Generates and imports the plan, unless the store already holds studies: a network that is
 * started again keeps what it has (and only an emptied store, say after the retention sweep,
 * gets its samples back).
 */
export async function ensureSamples (init: SampleLoadInit): Promise<SampleLoadResult> {
  const store = new StudyStore({ dir: init.nodeDir })
  await store.start()
  try {
    if ((await store.findStudies({ limit: 1 })).length > 0) return { studies: [], instances: 0 }
    await rm(init.workDir, { recursive: true, force: true })
    const paths: string[] = []
    for (const [i, spec] of init.plan.studies.entries()) {
      const study = await generateStudy(join(init.workDir, `study-${i + 1}`), spec)
      paths.push(...study.instances.map((x) => x.path))
    }
    if (init.plan.dvd.length > 0) {
      const dvd = join(init.workDir, 'dvd')
      await writeMediaLayout(dvd, init.plan.dvd)
      paths.push(dvd)
    }
    const summary = await importFiles(paths, { store, signal: init.signal })
    if (summary.rejected.length > 0) {
      const first = summary.rejected[0]!
      throw new SampleImportError(`${summary.rejected.length} sample file(s) refused, e.g. ${first.path}: ${first.code} ${first.message}`)
    }
    return { studies: summary.studies.map((s) => s.studyInstanceUID), instances: summary.stored }
  } finally {
    await store.stop()
  }
}
