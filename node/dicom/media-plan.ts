import { isDicomdirName, mediaName } from './dicomdir.ts'
import { fileKey, mergePatients, type DicomdirListing, type MediaPatient } from './media-overview.ts'

/*
 * What an upload of a folder imports (the web app sends a DVD's or USB stick's files by their
 * names relative to the folder chosen): the same as `node import` walking that folder on disk. A
 * folder with a readable DICOMDIR stands for the files the DICOMDIR lists, the rest of it (viewer
 * software, autorun) is left out, and the files it names that are not among the names are missing.
 * The DICOMDIRs' records also say what is on the medium (patients, studies), and which study each
 * listed file belongs to, so the studies to import can be picked.
 */

/** Names that are never DICOM on a medium: not worth a warning when a DICOMDIR does not list them. */
export const NOT_DICOM_NAMES = /\.(exe|dll|inf|ini|txt|htm|html|xml|js|css|png|jpg|ico|pdf|cfg|dat)$/i

export interface UploadPlan {
  /** the names to send, in the order a walk of the folder would import them */
  files: string[]
  /** files a DICOMDIR names that are not among the names */
  missing: string[]
  warnings: string[]
  /** what the DICOMDIRs say is on the medium */
  overview: MediaOverview
}

export interface MediaOverview {
  patients: MediaPatient[]
  /** planned files no DICOMDIR lists (a folder without one): not in the overview, imported whatever is picked */
  unlisted: number
}

/** The plan, with the study each listed name (planned or missing) belongs to by its DICOMDIR. */
export interface PlannedMedia extends UploadPlan {
  studyOf: Map<string, string>
}

/** A DICOMDIR's Referenced File IDs (components) and what its records list, or why it could not be read. */
export type DicomdirContents = { ids: string[][], refused: string[], listing?: DicomdirListing } | { error: string }

/**
 * `names`: relative paths with `/` between components; `dicomdirs`: what each DICOMDIR among them
 * references, by its name. A DICOMDIR inside a folder another DICOMDIR already stands for is not
 * read, as the walk on disk stops at the first.
 */
export function planUpload (names: string[], dicomdirs: Map<string, DicomdirContents>): PlannedMedia {
  const plan: PlannedMedia = { files: [], missing: [], warnings: [], overview: { patients: [], unlisted: 0 }, studyOf: new Map() }
  const listings: MediaPatient[][] = []
  const sorted = [...new Set(names)].sort(byComponents)
  const covering = new Map<string, string[]>()
  for (const dicomdir of [...dicomdirs.keys()].sort((a, b) => depth(a) - depth(b) || byComponents(a, b))) {
    const folder = folderOf(dicomdir)
    if ([...covering.keys()].some((f) => within(folder, f))) continue
    const contents = dicomdirs.get(dicomdir)!
    if ('error' in contents) {
      plan.warnings.push(`${dicomdir} could not be read (${contents.error}); importing the folder's files instead`)
      continue
    }
    covering.set(folder, listed(folder, contents, sorted, dicomdir, plan))
    if (contents.listing !== undefined) listings.push(contents.listing.patients)
  }
  const emitted = new Set<string>()
  for (const name of sorted) {
    const folder = [...covering.keys()].find((f) => within(folderOf(name), f))
    if (folder === undefined) { plan.files.push(name); plan.overview.unlisted++; continue }
    if (emitted.has(folder)) continue
    emitted.add(folder)
    plan.files.push(...covering.get(folder)!)
  }
  plan.overview.patients = mergePatients(listings)
  const studies = new Map(plan.overview.patients.flatMap((p) => p.studies.map((s) => [s.studyInstanceUID, s])))
  for (const name of plan.files) {
    const study = studies.get(plan.studyOf.get(name) ?? '')
    if (study !== undefined) study.files++
  }
  return plan
}

/** The names a DICOMDIR lists, found case-insensitively; what it names and is not there goes to `missing`. */
function listed (folder: string, contents: { ids: string[][], refused: string[], listing?: DicomdirListing }, sorted: string[], dicomdir: string, plan: PlannedMedia): string[] {
  const under = sorted.filter((n) => within(folderOf(n), folder))
  const byMediaName = new Map(under.map((n) => [relative(n, folder).split('/').map(mediaName).join('/'), n]))
  const files: string[] = []
  const missing: string[] = [...contents.refused]
  for (const id of contents.ids) {
    const name = byMediaName.get(id.map(mediaName).join('/'))
    const study = contents.listing?.studyOfFile.get(fileKey(id))
    if (study !== undefined) plan.studyOf.set(name ?? join(folder, id.join('/')), study)
    if (name === undefined) missing.push(id.join('\\'))
    else if (!files.includes(name)) files.push(name)
  }
  if (missing.length > 0) plan.warnings.push(`${dicomdir} lists ${missing.length} file(s) that are not on the medium: ${missing.slice(0, 5).join(', ')}`)
  plan.missing.push(...missing.map((m) => join(folder, m.split('\\').join('/'))))
  const taken = new Set(files)
  const unlisted = under.filter((n) => !taken.has(n) && !isDicomdirName(n) && !NOT_DICOM_NAMES.test(n))
  if (unlisted.length > 0) plan.warnings.push(`${folder === '' ? 'the folder' : folder}: ${unlisted.length} file(s) on the medium are not in its DICOMDIR and were not imported (import them by path if they belong): ${unlisted.slice(0, 3).join(', ')}`)
  return files
}

/** A name that can be planned: relative, `/` between components, nothing that climbs out. */
export function isUploadName (name: string): boolean {
  const parts = name.split('/')
  return name.length > 0 && name.length <= 1024 && !name.includes('\\') && !name.includes('\0') && parts.every((p) => p !== '' && p !== '.' && p !== '..')
}

function folderOf (name: string): string {
  const at = name.lastIndexOf('/')
  return at < 0 ? '' : name.slice(0, at)
}

function within (folder: string, ancestor: string): boolean {
  return ancestor === '' || folder === ancestor || folder.startsWith(`${ancestor}/`)
}

function relative (name: string, folder: string): string {
  return folder === '' ? name : name.slice(folder.length + 1)
}

function join (folder: string, name: string): string {
  return folder === '' ? name : `${folder}/${name}`
}

function depth (name: string): number {
  return name.split('/').length
}

/** As the walk on disk goes: folder by folder, names in each compared as the walk compares them. */
function byComponents (a: string, b: string): number {
  const x = a.split('/')
  const y = b.split('/')
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const order = x[i]!.localeCompare(y[i]!)
    if (order !== 0) return order
  }
  return x.length - y.length
}
