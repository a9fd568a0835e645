import { nodePaths } from '../../node/paths.ts'
import { UserStore, type Role } from '../../node/users/user-store.ts'

/*
 * Accounts to try a local network with: on every node a clinician, an IT admin and an auditor,
 * all with the one demo password (printed by `npm start`). Made when missing, so a network set up
 * before keeps working; a real node gets its accounts from `beeldnet node user add`.
 */

export const DEMO_PASSWORD = 'beeldnet-demo'

export interface DemoAccount { username: string, name: string, role: Role, uzi?: string, roleCode?: string }

/** The demo accounts of the i-th node: the clinician's UZI number differs per hospital. */
export function demoAccounts (index: number): DemoAccount[] {
  return [
    { username: 'arts', name: ['dr. A. Jansen', 'dr. B. de Boer', 'dr. C. Visser', 'dr. D. Smit', 'dr. E. Bakker', 'dr. F. Mulder', 'dr. G. de Vries', 'dr. H. Meijer'][index % 8]!, role: 'clinician', uzi: String(900_000_001 + index), roleCode: '01.015' },
    { username: 'beheer', name: 'IT beheer', role: 'it-admin' },
    { username: 'auditor', name: 'Privacy officer', role: 'auditor' }
  ]
}

export async function ensureDemoAccounts (nodeDir: string, index: number): Promise<DemoAccount[]> {
  const users = new UserStore(nodePaths(nodeDir).users)
  const existing = new Set((await users.list()).map((u) => u.username))
  const accounts = demoAccounts(index)
  for (const account of accounts) {
    if (!existing.has(account.username)) await users.add(account, DEMO_PASSWORD)
  }
  return accounts
}
