import type { FastifyInstance } from 'fastify'
import type { NodeConfig } from '../config/config.ts'
import type { AuditLog } from '../audit/audit-log.ts'

/* What IT sees of the node's settings, the C-ECHO button and the trail (to be built). */

export interface AdminDeps {
  /** the config in force (read-only here: the file is the source) */
  config: NodeConfig
  audit?: AuditLog
}

export function registerAdminRoutes (_app: FastifyInstance, _deps: AdminDeps): void {}
