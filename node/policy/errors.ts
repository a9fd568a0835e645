import { BeeldnetError, NotFoundError } from '../../protocol/errors.ts'
import type { ApprovalRecord } from './policy-store.ts'

/* Refusals of the approval queue for pulls. */

export class ApprovalNotFoundError extends NotFoundError {
  constructor (requestId: string) { super(`no pull request ${requestId} waits for approval here`) }
}

export class ApprovalDecidedError extends BeeldnetError {
  constructor (record: ApprovalRecord) { super('BEELDNET_ERR_ALREADY_DECIDED', `pull request ${record.requestId} was ${record.state} at ${record.decidedAt ?? '?'}`) }
}
