import type { FastifyInstance } from 'fastify'
import type { AuditSink } from '../audit/audit-log.ts'
import { recordShown } from '../audit/events.ts'
import { isValidUid } from '../dicom/instance-header.ts'
import { streamPdiZip } from '../media/pdi-zip.ts'
import type { StudyStore } from '../store/study-store.ts'
import { BadRequestError } from './errors.ts'

/*
 * A study as an IHE PDI medium in one ZIP, for a clinician to hand to a patient or another
 * hospital on a USB stick (unzipped at its root). Audited as an export before the first byte; the
 * ZIP streams with its size known, and a stored file found corrupt on the way cuts the answer off
 * rather than hand out other bytes.
 */
export function registerMediaRoutes (app: FastifyInstance, components: { store: StudyStore, audit?: AuditSink }): void {
  const { store, audit } = components
  app.get<{ Params: { uid: string } }>('/api/studies/:uid/media.zip', async (req, reply) => {
    const { uid } = req.params
    if (!isValidUid(uid)) throw new BadRequestError('the study UID is digits and dots, at most 64 characters')
    const controller = new AbortController()
    // The client gone: stop reading the store.
    reply.raw.once('close', () => { controller.abort() })
    const zip = await streamPdiZip(store, [uid], { signal: controller.signal })
    await recordShown(audit, req, 'API', 'export', `PDI medium (ZIP) of ${zip.plan.instances.length} instance(s)`, zip.studies)
    return reply
      .type('application/zip')
      .header('content-length', zip.size)
      .header('content-disposition', `attachment; filename="${mediumFileName(zip.studies[0]!)}"`)
      .send(zip.stream)
  })
}

/** A download's name from the study's date and accession number, reduced to characters safe in any header and file system. */
export function mediumFileName (study: { date: string, accessionNumber: string, studyInstanceUID: string }): string {
  const safe = (s: string): string => s.replace(/[^A-Za-z0-9_-]+/g, '').slice(0, 32)
  const parts = ['PDI', safe(study.date), safe(study.accessionNumber) || safe(study.studyInstanceUID.slice(-16).replace(/\./g, '_'))].filter((p) => p !== '')
  return `${parts.join('-')}.zip`
}
