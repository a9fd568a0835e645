/*
 * A share link's token is its key: whoever reads it from a log can try codes. So every path under
 * /share/<token>/ is written to logs and the audit trail as /share/<redacted>/...; the router
 * decodes percent-escapes (/%73hare/ is /share/), so the decoded path is what is looked at.
 */

export const SHARE_PREFIX = '/share'

/** The web app's files for the share page (/share/assets/...), not a token. */
const ASSETS = 'assets'

export function redactShareUrl (url: string): string {
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  let decoded: string
  try { decoded = decodeURIComponent(path) } catch { decoded = path }
  const match = /^\/+share\/+([^/]+)(.*)$/i.exec(decoded)
  if (match === null || match[1] === ASSETS) return url
  return `${SHARE_PREFIX}/<redacted>${match[2]}${q < 0 ? '' : url.slice(q)}`
}

/** Fastify's request serializer for logs (lib/logger-pino.js), with the token taken out of the URL. */
export function redactedRequest (req: { method: string, url: string, host?: string, ip?: string, headers?: Record<string, unknown>, socket?: { remotePort?: number } }): Record<string, unknown> {
  return {
    method: req.method,
    url: redactShareUrl(req.url),
    version: req.headers?.['accept-version'],
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort
  }
}
