import type { Dataset } from '../dicom/dataset-reader.ts'
import { tag, Tags } from '../dicom/tags.ts'

/*
 * Whether an instance's pixels may show text the header profile cannot remove. The Basic Profile
 * de-identifies attributes only; Clean Pixel Data is not implemented, so such an instance is refused
 * unless a person has looked at it and confirms (BurnedInAnnotationError otherwise). Decided here:
 * - Burned In Annotation (0028,0301) YES: always.
 * - Ultrasound and Secondary Capture (any SC SOP class): always, whatever the flag says; their devices
 *   and screen grabs write text into the image as a matter of course and often leave the flag at NO.
 * - XA, RF, CR, OT and the photographic modalities (ES, XC, GM, SM, OP): unless the flag is NO, as
 *   their operators annotate in the image, older CR readers stamp the patient's name, and a photograph
 *   may show a face or a wristband.
 * - Everything else (CT, MR, PT, NM, MG, DX, ...): only when the flag is YES.
 */

export const BURNED_IN_ANNOTATION = tag(0x0028, 0x0301)

const ALWAYS_MODALITIES = new Set(['US'])
const ALWAYS_CLASSES = [
  '1.2.840.10008.5.1.4.1.1.6.1', // US Image
  '1.2.840.10008.5.1.4.1.1.3.1', // US Multi-frame Image
  '1.2.840.10008.5.1.4.1.1.6.2', // Enhanced US Volume
  '1.2.840.10008.5.1.4.1.1.7' // Secondary Capture and its multi-frame kinds (.7.1 to .7.4)
]
const UNLESS_NO_MODALITIES = new Set(['XA', 'RF', 'CR', 'OT', 'ES', 'XC', 'GM', 'SM', 'OP'])

function text (ds: Dataset, t: number): string {
  return ds.get(t)?.value?.toString('latin1').replace(/^[\0 ]+|[\0 ]+$/g, '').toUpperCase() ?? ''
}

/** Why the instance may carry burned-in text, or undefined when nothing says so. */
export function burnedInRisk (ds: Dataset): string | undefined {
  const flag = text(ds, BURNED_IN_ANNOTATION)
  const modality = text(ds, Tags.Modality)
  const sopClass = text(ds, Tags.SOPClassUID)
  if (flag === 'YES') return 'Burned In Annotation is YES'
  if (ALWAYS_MODALITIES.has(modality)) return `modality ${modality} usually carries burned-in text`
  const always = ALWAYS_CLASSES.find((c) => sopClass === c || sopClass.startsWith(`${c}.`))
  if (always !== undefined) return `SOP class ${sopClass} usually carries burned-in text`
  if (UNLESS_NO_MODALITIES.has(modality) && flag !== 'NO') return `modality ${modality} without Burned In Annotation NO`
  return undefined
}
