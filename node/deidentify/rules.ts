import { OPTIONS, type DeidentifyProfile } from './options.ts'
import { PROFILE_TABLE, type Action, type ProfileRow } from './profile-table.ts'

/*
 * Table E.1-1 as a lookup: the one action each attribute gets under a profile and its options.
 *
 * A combined action lets the IOD decide (X unless Z or D is required...). The node does not know each
 * attribute's Type in every IOD, so it takes the choice that keeps any IOD conformant, which carries no
 * more of the original either way: X/Z -> Z, X/D -> D, Z/D -> D, X/Z/D -> D, X/Z/U* -> U (the
 * sequence stays, the UIDs in it are replaced and the rest of its items cleaned).
 *
 * Overlays: the table removes Overlay Data and Overlay Comments (60xx,3000/4000); the plane's other
 * attributes go too, since an overlay plane without its Type 1 data is not one.
 */

export type Resolved = 'D' | 'Z' | 'X' | 'K' | 'C' | 'U'

export interface Rule { action: Resolved, row: ProfileRow }

const COMBINED: Readonly<Record<Action, Resolved>> = {
  D: 'D', Z: 'Z', X: 'X', K: 'K', C: 'C', U: 'U', 'X/Z': 'Z', 'X/D': 'D', 'Z/D': 'D', 'X/Z/D': 'D', 'X/Z/U*': 'U'
}

const byTag = new Map<number, ProfileRow>()
const patterns: ProfileRow[] = []
for (const row of PROFILE_TABLE) {
  if (row.tag === 'PRIVATE') continue
  if (row.tag.includes('x')) patterns.push(row)
  else byTag.set(Number.parseInt(row.tag, 16) >>> 0, row)
}

const OVERLAY_PLANE: ProfileRow = { tag: '60xxxxxx', name: 'Overlay Plane (with its Overlay Data)', basic: 'X', options: {} }

function rowOf (t: number): ProfileRow | undefined {
  const exact = byTag.get(t)
  if (exact !== undefined) return exact
  const group = t >>> 16
  if ((group & 0xFF01) !== 0x5000 && (group & 0xFF01) !== 0x6000) return undefined
  const hex = t.toString(16).toUpperCase().padStart(8, '0')
  const match = patterns.find((p) => [...p.tag].every((c, i) => c === 'x' || c === hex[i]))
  if (match !== undefined) return match
  return (group & 0xFF01) === 0x6000 ? OVERLAY_PLANE : undefined
}

/** The rule for a standard attribute under `profile`, or undefined for one the table does not name (kept). */
export function createRules (profile: DeidentifyProfile): (t: number) => Rule | undefined {
  const columns = profile.options.map((o) => OPTIONS[o].column)
  const cache = new Map<number, Rule | undefined>()
  return (t) => {
    if (cache.has(t)) return cache.get(t)
    const row = rowOf(t)
    let rule: Rule | undefined
    if (row !== undefined) {
      const chosen = columns.map((c) => row.options[c]).find((a) => a !== undefined)
      rule = { action: COMBINED[chosen ?? row.basic], row }
    }
    cache.set(t, rule)
    return rule
  }
}
