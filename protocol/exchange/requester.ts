import { z } from 'zod'

/*
 * Who asks, on a query or a pull: the clinician (UZI number and role code) and why. The libp2p
 * connection already proves which node and institution sent it; this names the person, so the
 * source can decide and log who looked, not only which hospital (NEN 7513).
 */

export const Clinician = z.strictObject({
  name: z.string().min(1).max(256),
  /** UZI number: 9 digits on the UZI pass */
  uzi: z.string().regex(/^[0-9]{9}$/, 'a UZI number has 9 digits'),
  /** the UZI role code, e.g. 01.015 (medisch specialist) */
  role: z.string().regex(/^[0-9]{2}\.[0-9]{3}$/, 'a UZI role code such as 01.015')
})
export type Clinician = z.infer<typeof Clinician>

export const Purpose = z.enum(['treatment', 'second-opinion', 'referral', 'emergency'])
export type Purpose = z.infer<typeof Purpose>

export const Requester = z.strictObject({
  clinician: Clinician,
  purpose: Purpose,
  /** the requesting department, as the directory lists it */
  department: z.string().regex(/^[A-Z0-9-]{1,16}$/).optional()
})
export type Requester = z.infer<typeof Requester>
