import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { directoryOf } from '../../protocol/registry/documents.ts'
import { createHistoryWalker } from './history.ts'
import { pickLanguage } from './i18n.ts'
import { gatherGovernanceData, toViewModel, type GovernanceSource } from './model.ts'
import { renderPage } from './render.ts'
import { GOVERNANCE_CSS } from './styles.ts'

/*
 * The governance view: a read-only page for network governance members, server-rendered, no
 * scripts, nothing loaded from elsewhere. It has no forms: proposing and signing stay with the
 * CLI and the members' offline keys.
 */

/** Nothing but this server's own files; no framing, no plugins, no <base>. */
export const GOVERNANCE_CSP = "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'"

export const GOVERNANCE_PATHS = { pages: ['/', '/governance'], stylesheet: '/governance.css' } as const

export interface GovernanceViewComponents {
  /** the registry's workflow; only its read methods are used */
  service: GovernanceSource
  /** the time expiry is judged by (default: the system clock) */
  clock?: () => Date
}

export interface GovernanceViewInit {
  /** the zone times are shown in (default Europe/Amsterdam) */
  timeZone?: string
}

function securityHeaders (reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', GOVERNANCE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-resource-policy', 'same-origin')
}

export function registerGovernanceView (app: FastifyInstance, components: GovernanceViewComponents, init: GovernanceViewInit = {}): void {
  const { service } = components
  const clock = components.clock ?? (() => new Date())
  const timeZone = init.timeZone ?? 'Europe/Amsterdam'
  // Published versions never change: the history is walked once and extended per new version.
  const walker = createHistoryWalker(async (version) => directoryOf(await service.directoryVersion(version)))

  const page = async (req: FastifyRequest<{ Querystring: { lang?: unknown } }>, reply: FastifyReply): Promise<FastifyReply> => {
    const lang = pickLanguage(req.query.lang, req.headers['accept-language'])
    const model = toViewModel(await gatherGovernanceData(service, walker), clock())
    return securityHeaders(reply)
      .header('cache-control', 'no-store')
      .header('vary', 'Accept-Language')
      .type('text/html; charset=utf-8')
      .send(renderPage(model, { lang, timeZone }))
  }
  for (const path of GOVERNANCE_PATHS.pages) app.get(path, page)

  app.get(GOVERNANCE_PATHS.stylesheet, async (_req, reply) => securityHeaders(reply)
    .header('cache-control', 'public, max-age=3600')
    .type('text/css; charset=utf-8')
    .send(GOVERNANCE_CSS))
}
