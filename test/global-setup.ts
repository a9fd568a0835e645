import { build } from 'vite'
import type { TestProject } from 'vitest/node'
import { ensureDcmtk, ensureGdcm, ensureOrthanc, findChromium, type OrthancTools } from './setup/outside-tools.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    /** the Chromium binary the web app's tests drive (found once, here) */
    chromiumPath: string
    /** Orthanc and its DICOMweb plugin, the real PACS of the interoperability tests (found once, here) */
    orthanc: OrthancTools
  }
}

/*
 * Once before the suites: what they need from outside npm (dcmtk, a headless Chromium, Orthanc; see
 * setup/outside-tools.ts), and the web app the nodes serve from web/dist (built in about a second).
 */
export default async function setup (project: TestProject): Promise<void> {
  const log = (line: string): void => { console.log(`[setup] ${line}`) }
  await ensureDcmtk({ log })
  await ensureGdcm({ log })
  const browser = await findChromium({ log })
  log(`Chromium ${browser.version} from ${browser.source}`)
  project.provide('chromiumPath', browser.path)
  const orthanc = await ensureOrthanc({ log })
  log(`Orthanc ${orthanc.version} at ${orthanc.binary}, DICOMweb plugin ${orthanc.dicomWebPlugin}`)
  project.provide('orthanc', orthanc)
  await build({ configFile: new URL('../web/vite.config.ts', import.meta.url).pathname, logLevel: 'warn' })
}
