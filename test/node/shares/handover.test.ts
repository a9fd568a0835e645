import { join } from 'node:path'
import fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { registerShareRoutes } from '../../../node/api/share-routes.ts'
import type { ShareHandover, ShareToHandOver } from '../../../node/shares/handover.ts'
import { createShareStore } from '../../../node/shares/share-store.ts'
import { createShares } from '../../../node/shares/shares.ts'
import type { StudyRecord } from '../../../node/store/records.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * The hand-over of a new share link: by default the clinician gets the link and the code to hand
 * over; a gateway that sends the code to the patient itself takes it out of the clinician's answer.
 */

const STUDY = '1.2.826.0.1.3680043.9.7101.1'
const tempDir = useTempDirs()
const opened: Array<{ stop: () => Promise<void> }> = []
afterEach(async () => { for (const s of opened.splice(0)) await s.stop() })

async function appWith (handover?: ShareHandover): Promise<{ app: ReturnType<typeof fastify>, shares: ReturnType<typeof createShares> }> {
  const store = createShareStore(join(await tempDir('handover'), 'shares'))
  await store.start()
  opened.push(store)
  const study = { studyInstanceUID: STUDY, patient: { name: 'van den Berg^Vera', id: '4100271', issuer: 'BEELDNET', birthDate: '19630415', sex: 'F' } } as unknown as StudyRecord
  const shares = createShares({ store, studyRecord: async () => study })
  const app = fastify()
  registerShareRoutes(app, { shares, ...(handover === undefined ? {} : { handover }) })
  await app.ready()
  return { app, shares }
}

describe('handing a share link over', () => {
  it('shows the clinician the code to hand over in person, by default', async () => {
    const { app } = await appWith()
    const made = await app.inject({ method: 'POST', url: `/api/studies/${STUDY}/shares`, payload: {} })
    expect(made.statusCode).toBe(201)
    expect(made.json()).toMatchObject({ handedOver: 'in-person', code: expect.stringMatching(/^[A-Z2-9]{4}-[A-Z2-9]{4}$/) })
  })

  it('leaves the code out of the answer when a gateway sent it to the patient, and that code opens the link', async () => {
    const sent: ShareToHandOver[] = []
    const { app, shares } = await appWith({ handOver: async (share) => { sent.push(share); return { via: 'sms gateway', codeForClinician: false } } })
    const made = await app.inject({ method: 'POST', url: `/api/studies/${STUDY}/shares`, payload: { days: 3 } })
    expect(made.statusCode, made.body).toBe(201)
    const answer = JSON.parse(made.body) as { code?: string, url: string, handedOver: string }
    expect(answer.code).toBeUndefined()
    expect(answer.handedOver).toBe('sms gateway')
    expect(sent).toHaveLength(1)
    expect(sent[0]!.url).toBe(answer.url)
    const token = answer.url.split('/share/')[1]!
    const opened = await shares.open(token, sent[0]!.code, '127.0.0.1')
    expect(opened.record.studyInstanceUID).toBe(STUDY)
  })
})
