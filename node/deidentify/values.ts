/*
 * Replacement values: a dummy of each VR (action D), and the mechanical cleaning of descriptors
 * (action C under Clean Descriptors).
 */

const TEXT_DUMMY = 'ANONYMIZED'

/** A non-zero-length dummy consistent with the VR (PS3.15 E.1.1 D), little endian, of even length. */
export function dummyValue (vr: string): Buffer {
  switch (vr) {
    case 'DA': return Buffer.from('19000101', 'latin1')
    case 'TM': return Buffer.from('000000', 'latin1')
    case 'DT': return Buffer.from('19000101000000', 'latin1')
    case 'AS': return Buffer.from('000Y', 'latin1')
    case 'DS': case 'IS': return Buffer.from('0 ', 'latin1')
    case 'US': case 'SS': case 'OW': case 'OB': case 'UN': return Buffer.alloc(2)
    case 'UL': case 'SL': case 'FL': case 'OF': case 'OL': case 'AT': return Buffer.alloc(4)
    case 'FD': case 'OD': case 'SV': case 'UV': case 'OV': return Buffer.alloc(8)
    // AE, CS, SH (16 characters at most), LO, PN, ST, LT, UT, UC, UR: a word that says what happened
    default: return Buffer.from(TEXT_DUMMY, 'latin1')
  }
}

/** Text VRs a descriptor can be cleaned in; other VRs under C keep their (coded, numeric) value. */
export const TEXT_VRS = new Set(['AE', 'CS', 'LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UT'])

/**
 * Clean Descriptors (PS3.15 E.3.5), done mechanically: the descriptor keeps its words, except any of
 * this patient's identifying values (name parts, ids, birth date, accession, names of staff and
 * institution, `identifiers`) and any run of six or more digits (a BSN, a date, a phone or record
 * number), each replaced by '***'. Free text can say more than that; a person who needs certainty
 * leaves the option out, and the descriptors are removed instead.
 */
export function cleanText (value: Buffer, identifiers: readonly string[]): Buffer {
  // Bytes as latin1, so multi-byte character sets come back byte for byte around the replacements.
  let text = value.toString('latin1').replace(/[\0 ]+$/, '')
  for (const id of identifiers) {
    if (id.length < 2) continue
    text = text.replace(new RegExp(escapeRegExp(id), 'gi'), '***')
  }
  text = text.replace(/[0-9]{6,}/g, '***')
  return Buffer.from(text.length % 2 === 1 ? `${text} ` : text, 'latin1')
}

function escapeRegExp (s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
