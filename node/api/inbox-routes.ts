import type { FastifyInstance } from 'fastify'
import type { Directory } from '../../protocol/registry/documents.ts'
import type { AuditSink } from '../audit/audit-log.ts'
import { recordShown } from '../audit/events.ts'
import type { Exchange } from '../transfers/exchange.ts'
import type { InboxEntry } from '../../protocol/api/inbox.ts'

/*
 * What a clinician's inbox and outbox show: each transfer with the other hospital's name, the
 * study as the signed manifest describes it (patient, description), and the sender's note and
 * reason. The directory lists the institutions to send to (type-ahead in the web app).
 */

const INBOX_SIZE = 200

export function registerInboxRoutes (app: FastifyInstance, components: { exchange: Exchange, directory: () => Directory | undefined, audit?: AuditSink }): void {
  const { exchange, directory, audit } = components
  const nameOf = (ura: string): string | undefined => directory()?.institutions.find((i) => i.ura === ura)?.name

  app.get('/api/inbox', async (req) => {
    const { outgoing, incoming } = await exchange.list()
    const newest = [...outgoing, ...incoming].sort((a, b) => b.createdAt.localeCompare(a.createdAt)).slice(0, INBOX_SIZE)
    const entries: InboxEntry[] = []
    for (const record of newest) {
      const signed = record.direction === 'outgoing'
        ? await exchange.transfers.outgoingManifest(record.transferId)
        : await exchange.transfers.incomingManifest(record.peerId, record.transferId)
      const manifest = signed.signed
      const ura = record.direction === 'outgoing' ? record.destination.ura : record.senderUra
      const { study } = manifest
      entries.push({
        transferId: record.transferId,
        direction: record.direction,
        state: record.state,
        studyInstanceUID: record.studyInstanceUID,
        createdAt: record.createdAt,
        updatedAt: record.updatedAt,
        ...(record.completedAt === undefined ? {} : { completedAt: record.completedAt }),
        ...(record.lastError === undefined ? {} : { lastError: { code: record.lastError.code, message: record.lastError.message } }),
        progress: { instancesDone: record.done.instances, instancesTotal: record.totals.instances, bytesDone: record.done.bytes, bytesTotal: record.totals.bytes },
        institution: { ura, name: nameOf(ura) },
        department: record.direction === 'outgoing' ? record.destination.department : record.department,
        note: manifest.note,
        reason: manifest.reason,
        ...(manifest.requestId === undefined ? {} : { requestId: manifest.requestId }),
        study: { description: study.description, date: study.date, modalities: study.modalities, patient: { name: study.patient.name, id: study.patient.id, ...(study.patient.bsn === undefined ? {} : { bsn: study.patient.bsn }), birthDate: study.patient.birthDate } }
      })
    }
    // A list of patients is an access to each of them (NEN 7513): one record per transfer shown.
    await recordShown(audit, req, 'API', 'view', 'inbox and outbox', entries.map((e) => ({ studyInstanceUID: e.studyInstanceUID, patient: e.study.patient })))
    return { transfers: entries }
  })

  // The directory's institutions, and which one is this hospital (the others are whom to send to or ask).
  app.get('/api/institutions', async () => {
    let self: string | undefined
    try { self = exchange.self().ura } catch { self = undefined }
    return {
      self: self ?? null,
      institutions: (directory()?.institutions ?? [])
        .map((i) => ({ ura: i.ura, name: i.name, kind: i.kind, departments: i.departments, status: i.status.state }))
        .sort((a, b) => a.name.localeCompare(b.name))
    }
  })
}
