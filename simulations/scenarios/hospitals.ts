import type { Enrolment } from '../../protocol/registry/documents.ts'

/*
 * The institutions a local network is made of. Real Dutch hospital names so the demo reads like
 * the real thing; the URA numbers are made up (8 digits, as the register issues them).
 */

export interface HospitalProfile {
  /** directory name under <dataDir>/nodes/ */
  slug: string
  name: string
  /** 8-digit URA number */
  ura: string
  /** IssuerOfPatientID of this hospital's own patient numbers */
  issuer: string
  departments: Enrolment['departments']
}

export const DUTCH_HOSPITALS: readonly HospitalProfile[] = [
  { slug: 'amsterdam-umc', name: 'Amsterdam UMC', ura: '01000471', issuer: 'AUMC', departments: [{ code: 'RAD', name: 'Radiologie' }, { code: 'NUC', name: 'Nucleaire geneeskunde' }, { code: 'CAR', name: 'Cardiologie' }] },
  { slug: 'isala', name: 'Isala Zwolle', ura: '01002154', issuer: 'ISALA', departments: [{ code: 'RAD', name: 'Radiologie' }, { code: 'ORT', name: 'Orthopedie' }] },
  { slug: 'maasstad', name: 'Maasstad Ziekenhuis', ura: '01003390', issuer: 'MAASSTAD', departments: [{ code: 'RAD', name: 'Radiologie' }, { code: 'SEH', name: 'Spoedeisende hulp' }] },
  { slug: 'umc-utrecht', name: 'UMC Utrecht', ura: '01000682', issuer: 'UMCU', departments: [{ code: 'RAD', name: 'Radiologie' }, { code: 'NEU', name: 'Neurologie' }] },
  { slug: 'rijnstate', name: 'Rijnstate', ura: '01004217', issuer: 'RIJNSTATE', departments: [{ code: 'RAD', name: 'Radiologie' }, { code: 'CHI', name: 'Chirurgie' }] },
  { slug: 'gelderse-vallei', name: 'Ziekenhuis Gelderse Vallei', ura: '01005803', issuer: 'ZGV', departments: [{ code: 'RAD', name: 'Radiologie' }] },
  { slug: 'catharina', name: 'Catharina Ziekenhuis', ura: '01006129', issuer: 'CZE', departments: [{ code: 'RAD', name: 'Radiologie' }, { code: 'CAR', name: 'Cardiologie' }] },
  { slug: 'martini', name: 'Martini Ziekenhuis', ura: '01007366', issuer: 'MZH', departments: [{ code: 'RAD', name: 'Radiologie' }, { code: 'LON', name: 'Longziekten' }] }
]

/** The first governance members' names: who would plausibly hold a key to a national network. */
export const GOVERNANCE_MEMBERS: readonly string[] = ['NFU', 'NVZ', 'Nictiz', 'NVvR', 'Patiëntenfederatie Nederland']
