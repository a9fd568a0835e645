import type { PullAnswer, PullRequest } from '../../protocol/exchange/pull.ts'
import type { Purpose } from '../../protocol/exchange/requester.ts'
import type { ConsentRegistry } from './consent.ts'

/*
 * Who may pull what from this node. Rules are matched in order (requesting institution, purpose,
 * requesting department); the first that fits decides: allow, queue for a person here, or refuse.
 * A rule can require the patient's consent, which a consent registry answers (this node's own
 * records, or an external consent service). Nothing matching means refused: pulling needs the
 * source to agree, unlike a push. Every decision comes with its reason in words.
 */

export interface PullRule {
  /** the requesting institution's URA number */
  ura: string
  /** purposes the rule covers (default: any) */
  purposes?: Purpose[]
  /** requesting departments the rule covers (default: any) */
  departments?: string[]
  /** the patient must have consented (for this institution and purpose) */
  requireConsent?: boolean
  /** 'allow' serves the study at once; 'queue' waits for a person at this hospital; 'refuse' refuses */
  decision: 'allow' | 'queue' | 'refuse'
}

export interface PullPolicyInit {
  /** default [] (every pull refused) */
  rules?: PullRule[]
  /** answers requireConsent rules (default: nobody has consented) */
  consent?: ConsentRegistry
}

export interface PullDecisionInWords {
  decision: PullAnswer['decision']
  code?: string
  reason: string
}

export interface PullPolicy {
  decide (from: { ura: string, name: string }, request: PullRequest, patient: { bsn?: string }): Promise<PullDecisionInWords>
}

class RulePullPolicy implements PullPolicy {
  private readonly rules: PullRule[]
  private readonly consent: ConsentRegistry | undefined

  constructor (init: PullPolicyInit) {
    this.rules = init.rules ?? []
    this.consent = init.consent
  }

  async decide (from: { ura: string, name: string }, request: PullRequest, patient: { bsn?: string }): Promise<PullDecisionInWords> {
    const { purpose, department } = request.requester
    const rule = this.rules.find((r) => r.ura === from.ura &&
      (r.purposes === undefined || r.purposes.includes(purpose)) &&
      (r.departments === undefined || (department !== undefined && r.departments.includes(department))))
    const who = `${from.name} (URA ${from.ura})${department === undefined ? '' : `, department ${department}`}`
    if (rule === undefined) {
      return { decision: 'refused', code: 'BEELDNET_ERR_PULL_NOT_ALLOWED', reason: `no rule at this hospital lets ${who} pull studies for ${purpose}` }
    }
    if (rule.decision === 'refuse') return { decision: 'refused', code: 'BEELDNET_ERR_PULL_NOT_ALLOWED', reason: `this hospital does not let ${who} pull studies for ${purpose}` }
    let consented = ''
    if (rule.requireConsent === true) {
      const given = patient.bsn === undefined || this.consent === undefined ? undefined : await this.consent.find(patient.bsn, { ura: from.ura, purpose })
      if (given === undefined) {
        return { decision: 'refused', code: 'BEELDNET_ERR_NO_CONSENT', reason: `pulls by ${who} for ${purpose} need the patient's consent, and ${patient.bsn === undefined ? 'the study carries no BSN to look it up by' : 'there is none on record'}` }
      }
      consented = ` with the patient's consent (${given})`
    }
    if (rule.decision === 'queue') return { decision: 'queued', reason: `pulls by ${who} for ${purpose} wait for approval by staff of this hospital${consented}` }
    return { decision: 'allowed', reason: `${who} may pull studies for ${purpose}${consented}` }
  }
}

export function createPullPolicy (init: PullPolicyInit = {}): PullPolicy {
  return new RulePullPolicy(init)
}
