import type { PullAnswer, PullRequest } from '../../protocol/exchange/pull.ts'
import type { Purpose } from '../../protocol/exchange/requester.ts'

/*
 * Who may pull what from this node: a simple allow-list for now (the policy and audit issue makes
 * it real: approval queues, consent). Rules are matched in order; the first that fits decides.
 * Nothing matching means refused: pulling needs the source to agree, unlike a push.
 */

export interface PullRule {
  /** the requesting institution's URA number */
  ura: string
  /** purposes the rule covers (default: any) */
  purposes?: Purpose[]
  /** 'allow' serves the study at once; 'queue' waits for a person at this hospital */
  decision: 'allow' | 'queue'
}

export interface PullPolicyInit {
  /** default [] (every pull refused) */
  rules?: PullRule[]
}

export interface PullDecisionInWords {
  decision: PullAnswer['decision']
  code?: string
  reason: string
}

export interface PullPolicy {
  decide (from: { ura: string, name: string }, request: PullRequest): PullDecisionInWords
}

class AllowListPullPolicy implements PullPolicy {
  private readonly rules: PullRule[]

  constructor (init: PullPolicyInit) {
    this.rules = init.rules ?? []
  }

  decide (from: { ura: string, name: string }, request: PullRequest): PullDecisionInWords {
    const purpose = request.requester.purpose
    const rule = this.rules.find((r) => r.ura === from.ura && (r.purposes === undefined || r.purposes.includes(purpose)))
    const who = `${from.name} (URA ${from.ura})`
    if (rule === undefined) {
      return { decision: 'refused', code: 'BEELDNET_ERR_PULL_NOT_ALLOWED', reason: `no rule at this hospital lets ${who} pull studies for ${purpose}` }
    }
    if (rule.decision === 'queue') return { decision: 'queued', reason: `pulls by ${who} for ${purpose} wait for approval by staff of this hospital` }
    return { decision: 'allowed', reason: `${who} may pull studies for ${purpose}` }
  }
}

export function createPullPolicy (init: PullPolicyInit = {}): PullPolicy {
  return new AllowListPullPolicy(init)
}
