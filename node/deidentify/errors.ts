import { BeeldnetError } from '../../protocol/errors.ts'

/* Refusals of de-identification (PS3.15 Annex E) for a teaching or research copy. */

/**
 * The instance's pixels may show text the header profile cannot remove (Burned In Annotation YES, or a
 * modality or SOP class that usually burns it in): a person must look and confirm.
 */
export class BurnedInAnnotationError extends BeeldnetError {
  constructor (sopInstanceUID: string, why: string) {
    super('BEELDNET_ERR_BURNED_IN_ANNOTATION', `instance ${sopInstanceUID} may show identifying text in its pixels (${why}); a person must check the images and confirm before it is de-identified`)
  }
}

/** A profile or option that is not one Beeldnet applies. */
export class DeidentifyOptionError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_DEIDENTIFY_OPTION', message) }
}
