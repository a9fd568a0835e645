import type { AcceptResult, DirectoryStatus } from './directory-service.ts'

/** How long ago, for people: 3d 4h, 2h 10m, 5m 3s. */
export function formatAge (seconds: number): string {
  const d = Math.floor(seconds / 86_400)
  const h = Math.floor((seconds % 86_400) / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  if (d > 0) return `${d}d ${h}h`
  if (h > 0) return `${h}h ${m}m`
  return m > 0 ? `${m}m ${s}s` : `${s}s`
}

/** What `beeldnet node directory` prints: what the node trusts, and whether it is getting stale. */
export function formatDirectoryStatus (status: DirectoryStatus, result?: AcceptResult): string {
  if (status.rootVersion === null) return 'no root pinned: this node trusts no directory yet (beeldnet node enrol)'
  const lines: string[] = []
  if (result !== undefined) {
    lines.push(result.changed ? `took directory v${result.version} from ${result.source}` : `no newer directory from ${result.source}`)
  }
  lines.push(`network       ${status.network ?? '-'}`, `root          v${status.rootVersion}`)
  if (status.directoryVersion === null) {
    lines.push('directory     none yet')
  } else {
    lines.push(
      `directory     v${status.directoryVersion}  ${status.hash}`,
      `issued        ${status.issued}  (${formatAge(status.ageSeconds ?? 0)} ago)`,
      `expires       ${status.expires}${status.expired ? '  EXPIRED: peers cannot be checked against it; governance must publish a new version' : ''}`,
      `institutions  ${status.institutions}`
    )
  }
  lines.push(`registry      ${status.registryUrl ?? 'none configured'}${status.mirrors.length > 0 ? ` (+ ${status.mirrors.length} mirror(s))` : ''}`)
  lines.push(`refreshed     ${status.lastRefreshed ?? 'never'}`)
  if (status.lastError !== null) {
    const e = status.lastError
    lines.push(`last error    ${e.code} at ${e.at}${e.source === undefined ? '' : ` from ${e.source}`}: ${e.message}`)
  }
  return lines.join('\n')
}
