import type { P2PHost } from '../p2p/host.ts'
import { InstitutionNotActiveError, UnknownDepartmentError, UnknownInstitutionError } from './errors.ts'

/** What choosing a node of an institution needs of the host. */
export type InstitutionDirectory = Pick<P2PHost, 'gating' | 'connectedPeers'>

/**
 * An admitted node of institution `ura` other than `self`: a connected one if there is one. With
 * a department, the institution must list it.
 */
export function nodeOfInstitution (host: InstitutionDirectory, self: string, ura: string, department?: string): string {
  const nodes = host.gating.allowedPeers().filter((p) => p.ura === ura && p.peerId !== self)
  if (nodes.length === 0) {
    // Listed but suspended, revoked or with no valid key: say so, the clinician can do nothing about it.
    const listed = host.gating.entriesOf(ura).filter((p) => p.peerId !== self)
    if (listed.length === 0) throw new UnknownInstitutionError(ura)
    const reasons = [...new Set(listed.map((p) => host.gating.check(p.peerId)).flatMap((d) => d.allowed ? [] : [d.reason]))]
    throw new InstitutionNotActiveError(ura, listed[0]!.institution.name, reasons)
  }
  const institution = nodes[0]!.institution
  if (department !== undefined && !institution.departments.some((d) => d.code === department)) {
    throw new UnknownDepartmentError(ura, department, institution.departments.map((d) => d.code))
  }
  const connected = new Set(host.connectedPeers().map((p) => p.peerId))
  return (nodes.find((n) => connected.has(n.peerId)) ?? nodes[0]!).peerId
}
