import { z } from 'zod'
import { RequestSignatureFields } from './request-signature.ts'
import { ManifestStudy } from './manifest.ts'
import { Requester } from './requester.ts'

/*
 * Query: find studies at a peer. A query must name a patient (BSN, or patient id with its issuer)
 * or an accession number: a source never answers "all CT studies of last week" to another
 * hospital. Birth date, dates and modality only narrow it; a BSN with the wrong birth date finds
 * nothing, which is how a mistyped BSN shows.
 */

/** Most studies one answer lists. */
export const MAX_QUERY_RESULTS = 200

const Da = z.string().regex(/^[0-9]{8}$/, 'a date as YYYYMMDD')

export const QueryCriteria = z.strictObject({
  bsn: z.string().regex(/^[0-9]{9}$/, 'a BSN has 9 digits').optional(),
  patientId: z.string().min(1).max(64).optional(),
  issuer: z.string().min(1).max(64).optional(),
  birthDate: Da.optional(),
  dateFrom: Da.optional(),
  dateTo: Da.optional(),
  modality: z.string().regex(/^[A-Z]{1,16}$/).optional(),
  accessionNumber: z.string().min(1).max(16).optional(),
  limit: z.number().int().min(1).max(MAX_QUERY_RESULTS).default(50)
}).refine((c) => c.bsn !== undefined || (c.patientId !== undefined && c.issuer !== undefined) || c.accessionNumber !== undefined, {
  message: 'a query names a patient (bsn, or patientId with issuer) or an accession number'
})
export type QueryCriteria = z.infer<typeof QueryCriteria>

export const QueryRequest = z.strictObject({
  type: z.literal('beeldnet/query'),
  requester: Requester,
  criteria: QueryCriteria,
  ...RequestSignatureFields
})
export type QueryRequest = z.infer<typeof QueryRequest>

/** A study as a query lists it: the manifest's study block and its counts. */
export const StudySummary = ManifestStudy.extend({
  numberOfSeries: z.number().int().min(0),
  numberOfInstances: z.number().int().min(0),
  numberOfReports: z.number().int().min(0),
  size: z.number().int().min(0)
})
export type StudySummary = z.infer<typeof StudySummary>

/** Largest query answer: MAX_QUERY_RESULTS studies of a few KiB each. */
export const MAX_QUERY_RESPONSE_BYTES = 4 * 1024 * 1024

export const QueryResponse = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('beeldnet/query-result'),
    studies: z.array(StudySummary).max(MAX_QUERY_RESULTS),
    /** more matched than the limit */
    truncated: z.boolean()
  }),
  z.strictObject({
    type: z.literal('beeldnet/query-refused'),
    code: z.string().regex(/^BEELDNET_ERR_[A-Z0-9_]{1,64}$/),
    reason: z.string().max(1024)
  })
])
export type QueryResponse = z.infer<typeof QueryResponse>
