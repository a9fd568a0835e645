import { z } from 'zod'

/*
 * /beeldnet/directory/1.0.0: on every new connection the dialling node opens one stream and the two
 * nodes compare (directory version, hash). Turn by turn, so neither end writes while the other does:
 *
 *   dialler  -> hello {version, hash}
 *   listener -> hello {version, hash}
 *   listener -> offer + data frames + end     if it holds a newer version, or the same one with another hash
 *   dialler  -> offer + data frames + end     likewise
 *   both close their write side
 *
 * An offer is a JSON array of signed directory envelopes in ascending version order: the versions
 * after the peer's, when the sender still has them all, else just the one it holds. Each proves
 * itself against the receiver's pinned root; whoever relays it needs no trust. The same version
 * with another hash is a fork: both ends keep both files as evidence and raise the alarm.
 */

const Hash = z.string().regex(/^[0-9a-f]{64}$/)

export const DirectoryHello = z.strictObject({
  type: z.literal('hello'),
  version: z.number().int().min(1).nullable(),
  hash: Hash.nullable()
}).refine((h) => (h.version === null) === (h.hash === null), 'version and hash come together')
export type DirectoryHello = z.infer<typeof DirectoryHello>

/** The most versions one offer carries; further behind, the receiver catches up from the registry. */
export const MAX_OFFERED_VERSIONS = 64

export const DirectoryOffer = z.strictObject({
  type: z.literal('offer'),
  /** versions of the envelopes that follow, ascending */
  versions: z.array(z.number().int().min(1)).min(1).max(MAX_OFFERED_VERSIONS),
  /** bytes of the JSON array carried by the data frames */
  bytes: z.number().int().min(2)
})
export type DirectoryOffer = z.infer<typeof DirectoryOffer>

/** Does the side holding `mine` send an offer to the side holding `theirs`? Both ends compute the same answer. */
export function offersTo (mine: DirectoryHello, theirs: DirectoryHello): boolean {
  if (mine.version === null) return false
  if (theirs.version === null) return true
  return mine.version > theirs.version || (mine.version === theirs.version && mine.hash !== theirs.hash)
}
