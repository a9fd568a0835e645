import { hostname, userInfo } from 'node:os'
import type { AuditPerson } from '../audit/audit-log.ts'

/** Who the audit trail names for what the CLI does: the operating-system account that ran it (the CLI has no login). */
export function cliUser (): AuditPerson {
  return { system: `beeldnet CLI as ${userInfo().username}@${hostname()}` }
}
