import { canonicalBytes, sha256Hex } from '../../protocol/canonical.ts'
import type { AuditSink } from '../audit/audit-log.ts'
import type { PolicyStore } from './policy-store.ts'

/*
 * Pull rules and the bulk-send limit come from the config file, which people edit by hand. So a
 * change to who may pull what is in the audit trail, the node records the settings in force at
 * start whenever they differ from those of the start before (NEN 7513: changes to access rules).
 */

export async function recordPolicyInForce (store: PolicyStore, audit: AuditSink, settings: Record<string, unknown>, source: string): Promise<boolean> {
  const hash = sha256Hex(canonicalBytes(settings))
  const before = await store.policyHashInForce()
  if (before === hash) return false
  // The trail first: a crash between the two records it again at the next start, never not at all.
  await audit.record({
    event: 'policy-change',
    outcome: before === undefined ? 'first policy in force' : 'policy changed',
    user: { system: source },
    details: { settings: JSON.stringify(settings), hash, ...(before === undefined ? {} : { previousHash: before }) }
  })
  await store.setPolicyHashInForce(hash)
  return true
}
