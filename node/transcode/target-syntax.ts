import { TransferSyntax } from '../dicom/tags.ts'
import { canDecode } from './codecs.ts'

/*
 * Which transfer syntax an instance goes out in, given what the requester takes: as stored when it
 * takes that, else decoded to Explicit VR Little Endian, else to Implicit VR Little Endian. The
 * node only decodes; it never compresses, so a requester that takes only other compressed syntaxes
 * gets nothing for that instance (a refusal with a reason, never a wrong dataset).
 */

const EXPLICIT = TransferSyntax.ExplicitVRLittleEndian
const IMPLICIT = TransferSyntax.ImplicitVRLittleEndian

/** Whether an instance stored in `from` can be produced in `to` here. */
export function canProduce (from: string, to: string): boolean {
  if (from === to) return true
  if (to !== EXPLICIT && to !== IMPLICIT) return false
  // Big endian would need every value byte-swapped by its VR.
  if (from === TransferSyntax.ExplicitVRBigEndian) return false
  return canDecode(from) || from === EXPLICIT || from === IMPLICIT || from === TransferSyntax.DeflatedExplicitVRLittleEndian
}

/** The syntax to send an instance stored in `stored` in, among `accepted` ones; undefined when none will do. */
export function chooseSyntax (stored: string, accepted: Iterable<string>): string | undefined {
  const taken = new Set(accepted)
  if (taken.has(stored)) return stored
  for (const target of [EXPLICIT, IMPLICIT]) {
    if (taken.has(target) && canProduce(stored, target)) return target
  }
  return undefined
}
