import { copyFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { AuditLog, recordHash, type AuditRecord } from '../../../node/audit/audit-log.ts'
import { patientReport, patientReportHtml } from '../../../node/audit/patient-report.ts'
import { verifyTrail } from '../../../node/audit/verify.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

const tempDir = useTempDirs()

const clinician = { name: 'dr. A. Jansen', uzi: '123456789', role: '01.015' }

async function trailOf (dir: string, count: number): Promise<string> {
  const log = new AuditLog(join(dir, 'audit', 'trail.jsonl'))
  await log.start()
  for (let i = 0; i < count; i++) {
    await log.record({ event: i % 2 === 0 ? 'query' : 'view', outcome: `${i} studies`, patient: { bsn: i % 3 === 0 ? '111222333' : '999888777' }, user: clinician, institution: { ura: '01000471', name: 'Amsterdam UMC' } })
  }
  await log.stop()
  return log.path
}

/** A copy of the trail with its lines changed by `edit`, as someone with file access could. */
async function tampered (path: string, dir: string, edit: (lines: string[]) => string[]): Promise<string> {
  const copy = join(dir, 'copy.jsonl')
  await copyFile(path, copy)
  const lines = (await readFile(copy, 'utf8')).trim().split('\n')
  await writeFile(copy, `${edit(lines).join('\n')}\n`)
  return copy
}

describe('the audit trail', () => {
  it('chains records durably across restarts, and a clean trail verifies', async () => {
    const dir = await tempDir('audit')
    const path = await trailOf(dir, 3)
    const again = new AuditLog(path)
    await again.start()
    const fourth = await again.record({ event: 'send', outcome: 'queued', user: { system: 'this node' } })
    await again.stop()
    const records = (await readFile(path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as AuditRecord)
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4])
    expect(fourth.prev).toBe(records[2]!.hash)
    expect(await verifyTrail(path)).toEqual({ ok: true, records: 4 })
  })

  it('says where a record was edited, re-hashed, removed or swapped', async () => {
    const dir = await tempDir('audit')
    const path = await trailOf(dir, 6)
    const edited = await tampered(path, dir, (lines) => lines.map((l, i) => i === 2 ? l.replace('"2 studies"', '"0 studies"') : l))
    expect(await verifyTrail(edited)).toMatchObject({ ok: false, problem: { kind: 'changed', line: 3 } })

    // Edited and given a fresh hash: the next record's link gives it away.
    const rehashed = await tampered(path, dir, (lines) => lines.map((l, i) => {
      if (i !== 2) return l
      const { hash: _hash, ...record } = JSON.parse(l) as AuditRecord
      const changed = { ...record, outcome: '0 studies' }
      return JSON.stringify({ ...changed, hash: recordHash(changed) })
    }))
    expect(await verifyTrail(rehashed)).toMatchObject({ ok: false, problem: { kind: 'changed', line: 4, message: expect.stringContaining('record 3') } })

    const removed = await tampered(path, dir, (lines) => lines.filter((_, i) => i !== 3))
    expect(await verifyTrail(removed)).toMatchObject({ ok: false, problem: { kind: 'removed', line: 4, message: expect.stringContaining('record 4') } })

    const swapped = await tampered(path, dir, (lines) => [lines[0]!, lines[2]!, lines[1]!, ...lines.slice(3)])
    expect(await verifyTrail(swapped)).toMatchObject({ ok: false, problem: { kind: 'reordered', line: 3 } })

    const garbage = await tampered(path, dir, (lines) => [...lines.slice(0, 2), 'not json', ...lines.slice(2)])
    expect(await verifyTrail(garbage)).toMatchObject({ ok: false, problem: { kind: 'malformed', line: 3 } })
  })

  it('catches records cut from the end, and a last record rewritten, by the head kept beside the trail', async () => {
    const dir = await tempDir('audit')
    const path = await trailOf(dir, 6)
    const lines = (await readFile(path, 'utf8')).trim().split('\n')
    expect(JSON.parse(await readFile(`${path}.head`, 'utf8'))).toEqual({ seq: 6, hash: (JSON.parse(lines[5]!) as AuditRecord).hash })

    await writeFile(path, `${lines.slice(0, 4).join('\n')}\n`)
    expect(await verifyTrail(path)).toMatchObject({ ok: false, problem: { kind: 'removed', message: expect.stringContaining('records 5-6 are missing from the end') } })

    // The last record edited and re-hashed: no later record links to it, but the head remembers it.
    const { hash: _hash, ...last } = JSON.parse(lines[5]!) as AuditRecord
    const changed = { ...last, outcome: 'nothing happened' }
    await writeFile(path, `${[...lines.slice(0, 5), JSON.stringify({ ...changed, hash: recordHash(changed) })].join('\n')}\n`)
    expect(await verifyTrail(path)).toMatchObject({ ok: false, problem: { kind: 'changed', line: 6 } })
  })

  it('reports every access to one patient, by BSN, with who and which institution', async () => {
    const dir = await tempDir('audit')
    const path = await trailOf(dir, 7)
    const report = await patientReport(path, '111222333')
    expect(report.accesses.map((a) => a.seq)).toEqual([1, 4, 7])
    expect(report.users).toEqual([clinician])
    expect(report.institutions).toEqual([{ ura: '01000471', name: 'Amsterdam UMC' }])
    const html = patientReportHtml(report, 'Isala <Zwolle>')
    expect(html).toContain('Isala &lt;Zwolle&gt;')
    expect(html.match(/<tr><td>/g)).toHaveLength(3)
  })
})
