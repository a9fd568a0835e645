/*
 * How a new share link and its code reach the patient. The node assumes no e-mail or SMS service:
 * by default the clinician hands them over (prints the page, reads the code out), and the answer
 * that makes the link shows both, once. A hospital's messaging gateway fits behind this interface:
 * one that sends the code itself says so, and the clinician's answer then leaves the code out (it
 * went to the patient by another way than the link, as it must).
 */

export interface ShareToHandOver {
  id: string
  studyInstanceUID: string
  url: string
  /** formatted: ABCD-EFGH */
  code: string
  expiresAt: string
}

export interface HandedOver {
  /** how it went: 'in-person', or the gateway's name */
  via: string
  /** whether the clinician is still to give the code (shown in the answer) */
  codeForClinician: boolean
}

export interface ShareHandover {
  handOver: (share: ShareToHandOver) => Promise<HandedOver>
}

/** The clinician hands the link and the code over themselves. */
export const IN_PERSON_HANDOVER: ShareHandover = {
  handOver: async () => ({ via: 'in-person', codeForClinician: true })
}
