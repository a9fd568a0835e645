import { execFile } from 'node:child_process'
import { access, constants, readdir } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'
import { chromium } from 'playwright-core'

/*
 * What the suites need from outside npm, found once before they run (vitest global setup):
 * dcmtk's command-line tools (the reference DICOM peer), GDCM's gdcmconv (JPEG 2000, which dcmtk
 * cannot write), a headless Chromium (the web app's tests) and Orthanc with its DICOMweb plugin (a real PACS for the interoperability tests). A browser comes from npm when it can (@sparticuz/chromium ships one); Debian's packages
 * are the fallback, installed here when this user may run apt-get. Otherwise the run stops with
 * one sentence naming what to install, before any suite fails in a confusing way.
 */

const run = promisify(execFile)

/** The dcmtk tools the suites call; each comes with Debian's `dcmtk` package. */
export const DCMTK_TOOLS = ['dcmdump', 'dcmconv', 'dcmdrle', 'dcm2pdf', 'dcmmkdir', 'echoscu', 'storescu', 'storescp', 'findscu', 'movescu', 'getscu']

/** The flags every browser the tests start gets: headless, and no calls home on a closed network. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync']

export class MissingToolError extends Error {
  constructor (sentence: string) {
    super(sentence)
    this.name = 'MissingToolError'
  }
}

export interface OutsideToolsInit {
  /** the environment to read PATH and BEELDNET_CHROMIUM from (default process.env) */
  env?: NodeJS.ProcessEnv
  /** whether apt-get may be run to install what is missing (default: when running as root) */
  mayInstall?: boolean
  /** whether to try the browser npm brings before any other (default true) */
  tryNpmBrowser?: boolean
  log?: (line: string) => void
}

async function isExecutable (path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(() => true, () => false)
}

/** The full path of `name` in PATH, or undefined (no dependency on `which`). */
export async function onPath (name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && await isExecutable(join(dir, name))) return join(dir, name)
  }
  return undefined
}

function rootMayInstall (): boolean {
  return process.getuid?.() === 0
}

async function aptInstall (packages: string[], log: (line: string) => void): Promise<void> {
  log(`installing Debian package(s) ${packages.join(', ')} with apt-get (once; they were missing)`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  await run('apt-get', ['update', '-qq'], { env, maxBuffer: 64 * 1024 * 1024 })
  await run('apt-get', ['install', '-y', '-qq', ...packages], { env, maxBuffer: 64 * 1024 * 1024 })
}

/** dcmtk's tools on PATH: there already, installed with apt-get when allowed, or a sentence saying what to install. */
export async function ensureDcmtk (init: OutsideToolsInit = {}): Promise<void> {
  await ensureDebianTools({ name: 'dcmtk\'s tools', tools: DCMTK_TOOLS, debianPackage: 'dcmtk' }, init)
}

/** GDCM's converter: the one JPEG 2000 encoder here (dcmtk has none), for compressed instances the tests make. */
export const GDCM_TOOLS = ['gdcmconv']

/** GDCM's tools (Debian's `libgdcm-tools`) on PATH: there already, installed with apt-get when allowed, or a sentence saying what to install. */
export async function ensureGdcm (init: OutsideToolsInit = {}): Promise<void> {
  await ensureDebianTools({ name: 'GDCM\'s tools', tools: GDCM_TOOLS, debianPackage: 'libgdcm-tools' }, init)
}

/** Command-line tools from one Debian package: on PATH, installed with apt-get when allowed, or a MissingToolError naming the package. */
async function ensureDebianTools (wanted: { name: string, tools: string[], debianPackage: string }, init: OutsideToolsInit): Promise<void> {
  const env = init.env ?? process.env
  const log = init.log ?? (() => {})
  const missing = async (): Promise<string[]> => (await Promise.all(wanted.tools.map(async (t) => (await onPath(t, env)) === undefined ? t : undefined))).filter((t) => t !== undefined)
  let absent = await missing()
  if (absent.length === 0) return
  if (init.mayInstall ?? rootMayInstall()) {
    await aptInstall([wanted.debianPackage], log).catch((err: Error) => { log(`apt-get failed: ${err.message.split('\n')[0]}`) })
    absent = await missing()
    if (absent.length === 0) return
  }
  throw new MissingToolError(`The tests need ${wanted.name} (${absent.join(', ')} not found): install them with \`sudo apt-get install ${wanted.debianPackage}\` and run npm test again.`)
}

/** Where Debian's `orthanc` and `orthanc-dicomweb` put the server (outside a user's PATH) and the plugin. */
export const ORTHANC_PLACES = { binaries: ['/usr/sbin'], pluginDirs: ['/usr/share/orthanc/plugins', '/usr/lib/orthanc'] }

export interface OrthancTools {
  /** the Orthanc server binary */
  binary: string
  /** its DICOMweb plugin (a shared library the server loads) */
  dicomWebPlugin: string
  version: string
}

async function orthancBinary (env: NodeJS.ProcessEnv, places: typeof ORTHANC_PLACES): Promise<string | undefined> {
  const onThePath = await onPath('Orthanc', env)
  if (onThePath !== undefined) return onThePath
  for (const dir of places.binaries) if (await isExecutable(join(dir, 'Orthanc'))) return join(dir, 'Orthanc')
  return undefined
}

async function dicomWebPlugin (places: typeof ORTHANC_PLACES): Promise<string | undefined> {
  for (const dir of places.pluginDirs) {
    const names = await readdir(dir).catch(() => [])
    // libOrthancDicomWeb.so, or only the versioned libOrthancDicomWeb.so.1.7
    const name = names.filter((n) => n.startsWith('libOrthancDicomWeb.so')).sort()[0]
    if (name !== undefined) return join(dir, name)
  }
  return undefined
}

/** Orthanc and its DICOMweb plugin, both there and `Orthanc --version` answering, or undefined and why not. */
async function orthancHere (env: NodeJS.ProcessEnv, places: typeof ORTHANC_PLACES): Promise<OrthancTools | string> {
  const binary = await orthancBinary(env, places)
  if (binary === undefined) return 'Orthanc not found'
  const plugin = await dicomWebPlugin(places)
  if (plugin === undefined) return 'its DICOMweb plugin (libOrthancDicomWeb.so) not found'
  const answer = await run(binary, ['--version'], { timeout: 30_000 }).catch((err: Error) => ({ stdout: '', error: err.message.split('\n')[0] }))
  const version = /Orthanc\s+([0-9][^\s]*)/.exec(answer.stdout)?.[1]
  if (version === undefined) return `${binary} --version did not say its version${'error' in answer ? ` (${answer.error})` : ''}`
  return { binary, dicomWebPlugin: plugin, version }
}

/**
 * Orthanc (Debian's `orthanc`) and its DICOMweb plugin (`orthanc-dicomweb`): there already, installed
 * with apt-get when allowed, or a sentence saying what to install.
 */
export async function ensureOrthanc (init: OutsideToolsInit & { places?: typeof ORTHANC_PLACES } = {}): Promise<OrthancTools> {
  const env = init.env ?? process.env
  const log = init.log ?? (() => {})
  const places = init.places ?? ORTHANC_PLACES
  let found = await orthancHere(env, places)
  if (typeof found !== 'string') return found
  if (init.mayInstall ?? rootMayInstall()) {
    await aptInstall(['orthanc', 'orthanc-dicomweb'], log).catch((err: Error) => { log(`apt-get failed: ${err.message.split('\n')[0]}`) })
    found = await orthancHere(env, places)
    if (typeof found !== 'string') return found
  }
  throw new MissingToolError(`The tests need Orthanc with its DICOMweb plugin (${found}): install them with \`sudo apt-get install orthanc orthanc-dicomweb\` and run npm test again.`)
}

/** Starts the browser once and asks its version: a binary that cannot run headless here is no browser. */
async function runsHeadless (executablePath: string): Promise<string> {
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: 60_000 })
  try {
    return browser.version()
  } finally {
    await browser.close()
  }
}

async function npmBrowser (): Promise<string> {
  const { default: sparticuz } = await import('@sparticuz/chromium')
  return sparticuz.executablePath()
}

/**
 * A Chromium that runs headless here, by preference: BEELDNET_CHROMIUM, the one npm brought,
 * Debian's `chromium` on PATH, Debian's installed now (when allowed). Returns its path.
 */
export async function findChromium (init: OutsideToolsInit = {}): Promise<{ path: string, version: string, source: string }> {
  const env = init.env ?? process.env
  const log = init.log ?? (() => {})
  const candidates: Array<{ source: string, path: () => Promise<string | undefined> }> = []
  if (env.BEELDNET_CHROMIUM !== undefined && env.BEELDNET_CHROMIUM !== '') candidates.push({ source: 'BEELDNET_CHROMIUM', path: async () => env.BEELDNET_CHROMIUM })
  if (init.tryNpmBrowser ?? true) candidates.push({ source: '@sparticuz/chromium (npm)', path: npmBrowser })
  candidates.push({ source: 'chromium on PATH', path: async () => onPath('chromium', env) })
  if (init.mayInstall ?? rootMayInstall()) {
    candidates.push({
      source: 'Debian chromium (installed now)',
      path: async () => { await aptInstall(['chromium'], log); return onPath('chromium', env) }
    })
  }
  const tried: string[] = []
  for (const candidate of candidates) {
    try {
      const path = await candidate.path()
      if (path === undefined) { tried.push(`${candidate.source}: none`); continue }
      const version = await runsHeadless(path)
      return { path, version, source: candidate.source }
    } catch (err) {
      tried.push(`${candidate.source}: ${(err as Error).message.split('\n')[0]}`)
    }
  }
  log(`no browser ran headless (${tried.join('; ')})`)
  throw new MissingToolError('The web app\'s tests need a headless Chromium and none runs here: install one with `sudo apt-get install chromium` (or set BEELDNET_CHROMIUM to a Chromium binary) and run npm test again.')
}
