import { nodePaths } from '../../node/paths.ts'
import { UserStore, type Role } from '../../node/users/user-store.ts'

/*
 * Every node route but /health needs a login or an API token. Tests call the API the way an
 * integration does: with a token of the role the call needs, made in the node's users.json (the
 * node reads it per request, so a token made while it runs works at once).
 */

const tokens = new Map<string, Promise<string>>()

/** A token of `role` on the node with this data directory (made once per directory and role). */
export async function tokenFor (node: { dataDir: string }, role: Role = 'clinician'): Promise<string> {
  const path = nodePaths(node.dataDir).users
  const key = `${path}\n${role}`
  let token = tokens.get(key)
  if (token === undefined) {
    token = new UserStore(path).addToken(`test ${role}`, role).then((t) => t.token)
    tokens.set(key, token)
  }
  return token
}

/** fetch as `role` on that node: the same arguments, with Authorization: Bearer added. */
export function fetchAs (node: { dataDir: string }, role: Role = 'clinician'): (url: string, init?: RequestInit) => Promise<Response> {
  return async (url, init) => {
    const headers = new Headers(init?.headers)
    headers.set('authorization', `Bearer ${await tokenFor(node, role)}`)
    return fetch(url, { ...init, headers })
  }
}
