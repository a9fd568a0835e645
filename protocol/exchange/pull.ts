import { z } from 'zod'
import { RequestSignatureFields } from './request-signature.ts'
import { DepartmentCode, TransferId, Uid } from './common.ts'
import { Requester } from './requester.ts'

/*
 * Pull: a request for one study at a peer, for a named clinician and purpose. The source decides
 * (allowed now, queued for a person to approve, refused) and says why in words. An allowed pull
 * comes back as an ordinary push whose manifest names this request.
 */

export const PullRequest = z.strictObject({
  type: z.literal('beeldnet/pull'),
  /** chosen by the requester; the push that answers carries it as requestId */
  requestId: TransferId,
  studyInstanceUID: Uid,
  requester: Requester,
  /** where the study is to be delivered at the requesting institution */
  deliverTo: DepartmentCode,
  ...RequestSignatureFields
})
export type PullRequest = z.infer<typeof PullRequest>

export const PullDecision = z.enum(['allowed', 'queued', 'refused'])
export type PullDecision = z.infer<typeof PullDecision>

export const PullAnswer = z.strictObject({
  type: z.literal('beeldnet/pull-answer'),
  requestId: TransferId,
  decision: PullDecision,
  /** a stable code for refusals (BEELDNET_ERR_...), absent otherwise */
  code: z.string().regex(/^BEELDNET_ERR_[A-Z0-9_]{1,64}$/).optional(),
  /** the decision in words, for the clinician and the audit trail */
  reason: z.string().max(1024)
})
export type PullAnswer = z.infer<typeof PullAnswer>
