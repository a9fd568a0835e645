import type { FastifyInstance } from 'fastify'
import { Readable } from 'node:stream'
import type { AuditSink } from '../audit/audit-log.ts'
import { recordShown } from '../audit/events.ts'
import type { StudyStore } from '../store/study-store.ts'
import { NotFoundError } from './errors.ts'

/*
 * One stored instance's file as it was stored, byte for byte (`beeldnet node export` beside the
 * running node writes a study's files from these). Read through the hash check: a file that rotted
 * on disk ends the answer with an error rather than handing out other bytes.
 */
export function registerInstanceFileRoutes (app: FastifyInstance, components: { store: StudyStore, audit?: AuditSink }): void {
  const { store, audit } = components
  app.get<{ Params: { uid: string, sop: string } }>('/api/studies/:uid/instances/:sop/file', async (req, reply) => {
    const entries = await store.getStudy(req.params.uid)
    const instance = entries.instances.find((i) => i.sopInstanceUID === req.params.sop)
    if (instance === undefined) throw new NotFoundError(`the study ${req.params.uid} holds no instance ${req.params.sop.slice(0, 64)}`)
    await recordShown(audit, req, 'API', 'export', `file of ${instance.sopInstanceUID}`, [entries.study])
    return reply.type('application/dicom').header('content-length', instance.size).send(Readable.from(store.blobs.readVerified(instance.sha256)))
  })
}
