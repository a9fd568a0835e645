import { readdir } from 'node:fs/promises'
import type { Dirent } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { readHeader, type Dataset } from './dataset-reader.ts'
import { tag } from './tags.ts'
import { DicomMalformedError } from '../errors.ts'

/*
 * A DVD or USB stick from another hospital has a DICOMDIR listing its files. Only the files it
 * references are DICOM; the rest (viewer programs, autorun) is not ours to import.
 */

const DirectoryRecordSequence = tag(0x0004, 0x1220)
const ReferencedFileID = tag(0x0004, 0x1500)

export function isDicomdirName (path: string): boolean {
  return basename(path).toUpperCase() === 'DICOMDIR'
}

/** The directory records of a DICOMDIR, in the order the file holds them. */
export function readDirectoryRecords (dicomdirPath: string): Dataset[] {
  const header = readHeader(dicomdirPath, { maxValueBytes: 1024 })
  const records = header.dataset.get(DirectoryRecordSequence)?.items
  if (records === undefined) throw new DicomMalformedError('the DICOMDIR has no Directory Record Sequence')
  return records
}

/** The Referenced File IDs of a DICOMDIR as path components; an ID that could climb out of the medium is refused. */
export function readReferencedFileIds (dicomdirPath: string): { ids: string[][], refused: string[] } {
  return referencedFileIds(readDirectoryRecords(dicomdirPath))
}

export function referencedFileIds (records: Dataset[]): { ids: string[][], refused: string[] } {
  const ids: string[][] = []
  const refused: string[] = []
  for (const record of records) {
    const parts = fileIdOf(record)
    if (parts === undefined) continue
    // Components are relative names; anything that could climb out of the medium is refused.
    if (parts.length === 0 || parts.some((p) => p === '..' || p === '.' || p.includes('/'))) refused.push(parts.join('\\'))
    else ids.push(parts)
  }
  return { ids, refused }
}

/** A record's Referenced File ID as its components, or undefined when it references no file. */
export function fileIdOf (record: Dataset): string[] | undefined {
  const value = record.get(ReferencedFileID)?.value
  return value?.toString('latin1').split('\\').map((p) => p.trim()).filter((p) => p !== '')
}

/** How a medium may show a component: ISO 9660 mounts change case or add ';1'. */
export function mediaName (component: string): string {
  return component.toUpperCase().replace(/;1$/, '')
}

/** The files a DICOMDIR references, resolved on disk (ISO 9660 media may change case or add ';1'). */
export async function readDicomdir (dicomdirPath: string): Promise<{ files: string[], unresolved: string[] }> {
  const { ids, refused } = readReferencedFileIds(dicomdirPath)
  const root = dirname(dicomdirPath)
  const resolver = new CaseInsensitivePaths()
  const files: string[] = []
  const unresolved: string[] = [...refused]
  for (const parts of ids) {
    const resolved = await resolver.resolve(root, parts)
    if (resolved === undefined) unresolved.push(parts.join('\\'))
    else files.push(resolved)
  }
  return { files, unresolved }
}

/** Resolves path components case-insensitively, never through a symlink: the medium must not lead elsewhere. */
class CaseInsensitivePaths {
  private readonly listings = new Map<string, Dirent[]>()

  async resolve (root: string, parts: string[]): Promise<string | undefined> {
    let current = root
    for (const [i, part] of parts.entries()) {
      const wanted = part.toUpperCase()
      const match = (await this.list(current)).find((e) => mediaName(e.name) === wanted)
      const last = i === parts.length - 1
      if (match === undefined || (last ? !match.isFile() : !match.isDirectory())) return undefined
      current = join(current, match.name)
    }
    return current
  }

  private async list (dir: string): Promise<Dirent[]> {
    let entries = this.listings.get(dir)
    if (entries === undefined) {
      entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
      this.listings.set(dir, entries)
    }
    return entries
  }
}
