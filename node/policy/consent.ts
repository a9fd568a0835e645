import type { Purpose } from '../../protocol/exchange/requester.ts'

/*
 * Consent a pull rule can require: does this patient (by BSN) agree to their studies going to this
 * institution for this purpose? The node's own records answer (policy-store.ts); a national
 * consent service (Mitz-like) implements the same interface.
 */
export interface ConsentRegistry {
  /** the consent that covers this use, described in words, or undefined when there is none */
  find (bsn: string, use: { ura: string, purpose: Purpose }): Promise<string | undefined>
}
