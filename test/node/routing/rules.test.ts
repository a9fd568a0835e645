import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import type { RoutingRule } from '../../../node/config/config.ts'
import { createRouter } from '../../../node/routing/router.ts'
import type { StudyRecord } from '../../../node/store/records.ts'
import type { StudyStore } from '../../../node/store/study-store.ts'

/* Which routing rule decides for a study: every condition a rule gives must hold, the first such rule wins. */

const study = (modalities: string[], description: string): StudyRecord => ({
  studyInstanceUID: '1.2.3', patient: { name: 'Jansen^Piet', id: '1', issuer: 'AMC', birthDate: '19500101', sex: 'M' }, date: '20261126', time: '120000',
  accessionNumber: '', description, referringPhysician: '', studyId: '', modalities, numberOfSeries: 1, numberOfInstances: 1, numberOfReports: 0, size: 1,
  receivedAt: '2026-11-26T12:00:00Z', updatedAt: '2026-11-26T12:00:00Z'
})

describe('routing rules', () => {
  const rules: RoutingRule[] = [
    { calledAeTitle: 'TO_ISALA', to: { ura: '01002154', department: 'RAD' }, reason: 'by AE title' },
    { callingAeTitle: 'CT1', modality: 'CT', studyDescription: '*trauma*', to: { ura: '01000471', department: 'SEH' }, reason: 'trauma CT' },
    { modality: 'MR', to: { ura: '01000471', department: 'RAD' }, reason: 'all MR' }
  ]
  const router = createRouter({ store: {} as StudyStore, exchange: { send: async () => { throw new Error('not sent here') } }, logger: pino({ level: 'silent' }) }, rules)

  it('takes the first rule whose every condition holds', () => {
    expect(router.ruleFor(study(['CT'], 'CT hoofd'), 'TO_ISALA', 'PACS')?.reason).toBe('by AE title')
    expect(router.ruleFor(study(['CT'], 'CT Trauma total body'), 'BEELDNET', 'CT1')?.reason).toBe('trauma CT')
    expect(router.ruleFor(study(['CT'], 'CT Trauma total body'), 'BEELDNET', 'CT2')).toBeUndefined()
    expect(router.ruleFor(study(['CT'], 'CT thorax'), 'BEELDNET', 'CT1')).toBeUndefined()
    expect(router.ruleFor(study(['MR', 'SR'], 'MR knie'), 'BEELDNET', 'PACS')?.reason).toBe('all MR')
    expect(router.ruleFor(study(['CR'], 'thorax'), 'BEELDNET', 'PACS')).toBeUndefined()
  })
})
