import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { DuplicatePolicy } from '../../../node/store/duplicates.ts'
import { StudyStore, type DuplicateEvent } from '../../../node/store/study-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { useDimseStoreNodes } from '../../helpers/dimse-store-node.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * A PACS re-sends, and re-sends in another transfer syntax: storescu does both here, against each
 * store.duplicates policy, and must only ever see PS3.4 C-STORE statuses.
 */

const tempDir = useTempDirs()
const startDimseStoreNode = useDimseStoreNodes()
const IMPLICIT = '1.2.840.10008.1.2'
interface Node { store: StudyStore, events: DuplicateEvent[], send: (args: string[]) => Promise<{ code: number, out: string }> }

async function node (policy: DuplicatePolicy): Promise<Node> {
  const dir = await tempDir('node')
  const events: DuplicateEvent[] = []
  const { store, service } = await startDimseStoreNode(dir, { duplicates: policy, onDuplicate: (e) => events.push(e) })
  return {
    store,
    events,
    send: async (args) => {
      const r = await dcmtk('storescu', ['-v', '-aet', 'PACS', '-aec', 'BEELDNET', ...args.filter((a) => a.startsWith('-')), '127.0.0.1', String(service.port), ...args.filter((a) => !a.startsWith('-'))])
      return { code: r.code, out: r.stdout + r.stderr }
    }
  }
}

interface Study { study: GeneratedStudy, files: string[], implicit: string[] }

async function images (seed: number): Promise<Study> {
  const study = await generateStudy(await tempDir('src'), {
    seed,
    patient: { id: `D${seed}`, issuer: 'HOSP-A', name: 'Smit^Els' },
    series: [{ modality: 'CT', instances: 3, rows: 32, columns: 32 }]
  })
  const files = study.instances.map((i) => i.path)
  const dir = await tempDir('implicit')
  const implicit: string[] = []
  for (const [n, f] of files.entries()) {
    const target = join(dir, `i${n}.dcm`)
    const r = await dcmtk('dcmconv', ['+ti', f, target])
    expect(r.code, r.stderr).toBe(0)
    implicit.push(target)
  }
  return { study, files, implicit }
}

/** The statuses storescu reports, as it prints them ("Success", "Error: CannotUnderstand", "Unknown Status: 0x111"...). */
function statuses (out: string): string[] {
  return [...out.matchAll(/Received Store Response \(([^)]*)\)/g)].map((m) => m[1]!)
}

async function held (store: StudyStore, s: Study): Promise<Array<{ sopInstanceUID: string, transferSyntaxUID: string }>> {
  const blobs: string[] = []
  for await (const sha of store.blobs.list()) blobs.push(sha)
  const entries = await store.getStudy(s.study.studyInstanceUID)
  // One file per instance: nothing replaced or kept stays behind.
  expect(blobs.sort()).toEqual(entries.instances.map((i) => i.sha256).sort())
  return entries.instances.map((i) => ({ sopInstanceUID: i.sopInstanceUID, transferSyntaxUID: i.transferSyntaxUID })).sort((a, b) => a.sopInstanceUID.localeCompare(b.sopInstanceUID))
}

describe('C-STORE of instances the node holds (store.duplicates), driven by storescu', () => {
  it('keep: a re-send and a re-send in Implicit VR (dcmconv +ti, and storescu -xi converting by itself) are Success; one copy each stays', async () => {
    const n = await node('keep')
    const s = await images(91)
    expect(statuses((await n.send(s.files)).out)).toEqual(['Success', 'Success', 'Success'])
    const first = await held(n.store, s)
    const again = await n.send(s.files)
    expect(again.code).toBe(0)
    expect(statuses(again.out)).toEqual(['Success', 'Success', 'Success'])
    expect(statuses((await n.send(['-xi', ...s.implicit])).out)).toEqual(['Success', 'Success', 'Success'])
    expect(statuses((await n.send(['-xi', ...s.files])).out)).toEqual(['Success', 'Success', 'Success'])
    expect(await held(n.store, s)).toEqual(first)
    expect(n.events.map((e) => `${e.action} ${e.kind}`)).toEqual([...Array(3).fill('kept identical'), ...Array(6).fill('kept same-instance')])
    expect(n.events.every((e) => e.origin?.startsWith('DIMSE C-STORE from ') === true)).toBe(true)
  })

  it('keep: another patient under a held SOP Instance UID is refused with 0xC000 (Cannot understand), never an unknown status', async () => {
    const n = await node('keep')
    const s = await images(92)
    await n.send(s.files)
    const bytes = await readFile(s.files[0]!)
    const at = bytes.indexOf(Buffer.from([0x10, 0x00, 0x20, 0x00, 0x4c, 0x4f]))
    expect(bytes.subarray(at + 8, at + 11).toString('latin1')).toBe('D92')
    bytes.write('E92', at + 8, 'latin1')
    const other = join(await tempDir('other'), 'other.dcm')
    await writeFile(other, bytes)
    const refused = await n.send([other])
    expect(statuses(refused.out)).toEqual(['Error: CannotUnderstand'])
    expect(refused.out).not.toContain('Unknown Status')
    expect(n.events.map((e) => [e.action, e.kind, e.why])).toEqual([['refused', 'conflict', 'another patient; store.duplicates is keep']])
    expect((await n.store.getStudy(s.study.studyInstanceUID)).study.patient.id).toBe('D92')
  })

  it('replace-if-changed: the Implicit VR re-send replaces each stored file; a byte-identical re-send changes nothing', async () => {
    const n = await node('replace-if-changed')
    const s = await images(93)
    await n.send(s.files)
    expect(statuses((await n.send(s.files)).out)).toEqual(['Success', 'Success', 'Success'])
    expect(statuses((await n.send(['-xi', ...s.implicit])).out)).toEqual(['Success', 'Success', 'Success'])
    const after = await held(n.store, s)
    expect(after.map((i) => i.transferSyntaxUID)).toEqual([IMPLICIT, IMPLICIT, IMPLICIT])
    expect((await n.store.getStudy(s.study.studyInstanceUID)).study.numberOfInstances).toBe(3)
    expect(n.events.map((e) => e.action)).toEqual(['kept', 'kept', 'kept', 'replaced', 'replaced', 'replaced'])
    expect(await n.store.fsck()).toMatchObject({ missing: [], corrupt: [], orphans: [] })
  })

  it('refuse: a byte-identical re-send is Success, the Implicit VR re-send is refused with 0xC000', async () => {
    const n = await node('refuse')
    const s = await images(94)
    await n.send(s.files)
    const first = await held(n.store, s)
    expect(statuses((await n.send(s.files)).out)).toEqual(['Success', 'Success', 'Success'])
    const refused = await n.send(['-xi', '--no-halt', ...s.implicit])
    expect(statuses(refused.out)).toEqual(Array(3).fill('Error: CannotUnderstand'))
    expect(await held(n.store, s)).toEqual(first)
  })
})
