import type { ErrorCode } from '../../protocol/api/error-codes.ts'
import { ApiError } from './api.ts'
import type { Lang } from './i18n.ts'

/*
 * What a clinician reads when something goes wrong: a sentence per stable error code, in their
 * language. Codes not listed get a general sentence with the code, so IT can look it up in
 * docs/errors.md; never a stack trace.
 */

type Sentence = [nl: string, en: string]

/** When the node does not answer at all (ApiError code APP_OFFLINE, the app's own). */
const OFFLINE: Sentence = ['De node antwoordt niet. Controleer de verbinding en probeer het opnieuw.', 'The node does not answer. Check the connection and try again.']

/** Keyed by the declared codes, so a misspelt one does not type-check. */
const SENTENCES: Partial<Record<ErrorCode, Sentence>> = {
  BEELDNET_ERR_UNAUTHENTICATED: ['U bent niet (meer) ingelogd. Log opnieuw in.', 'You are not logged in (any more). Please log in again.'],
  BEELDNET_ERR_FORBIDDEN: ['Dit mag uw rol niet.', 'Your role may not do this.'],
  BEELDNET_ERR_CSRF: ['Uw sessie is verlopen. Laad de pagina opnieuw.', 'Your session expired. Please reload the page.'],
  BEELDNET_ERR_LOGIN_FAILED: ['Gebruikersnaam of wachtwoord klopt niet, of het account is geblokkeerd.', 'Wrong username or password, or the account is disabled.'],
  BEELDNET_ERR_ACCOUNT_LOCKED: ['Te vaak een verkeerd wachtwoord: het account is een kwartier geblokkeerd.', 'Too many wrong passwords: the account is locked for fifteen minutes.'],
  BEELDNET_ERR_RATE_LIMITED: ['Te veel pogingen. Wacht een minuut.', 'Too many attempts. Please wait a minute.'],
  BEELDNET_ERR_STUDY_NOT_FOUND: ['Dit onderzoek is hier niet (meer) aanwezig.', 'This study is not (or no longer) here.'],
  BEELDNET_ERR_UNKNOWN_INSTITUTION: ['Dat ziekenhuis doet niet (meer) mee aan Beeldnet.', 'That hospital is not (or no longer) part of Beeldnet.'],
  BEELDNET_ERR_INSTITUTION_NOT_ACTIVE: ['Dat ziekenhuis is op dit moment geschorst of uitgesloten in Beeldnet en ontvangt geen studies.', 'That hospital is suspended or excluded from Beeldnet at the moment and takes no studies.'],
  BEELDNET_ERR_UNKNOWN_DEPARTMENT: ['Die afdeling kent het ziekenhuis niet. Kies een afdeling uit de lijst.', 'That hospital has no such department. Choose one from the list.'],
  BEELDNET_ERR_PEER_NOT_ALLOWED: ['Dat ziekenhuis mag op dit moment niets ontvangen (geschorst of ingetrokken).', 'That hospital may not receive anything at the moment (suspended or revoked).'],
  BEELDNET_ERR_PEER_UNREACHABLE: ['Dat ziekenhuis is nu niet bereikbaar. Probeer het later opnieuw.', 'That hospital cannot be reached now. Try again later.'],
  BEELDNET_ERR_BURNED_IN_ANNOTATION: ['Deze beelden kunnen tekst bevatten die naar de patiënt herleidbaar is (bijvoorbeeld echo of schermafdruk). Controleer de beelden en bevestig dat er geen herleidbare tekst in staat.', 'These images may show text that identifies the patient (an ultrasound or a screen capture, say). Check the images and confirm that they show no identifying text.'],
  BEELDNET_ERR_DEIDENTIFICATION_REQUIRED: ['Deze instelling krijgt onderzoeken alleen geanonimiseerd.', 'This institution gets studies de-identified only.'],
  BEELDNET_ERR_DEIDENTIFY_OPTION: ['Deze manier van anonimiseren kent de node niet.', 'The node does not know this way of de-identifying.'],
  BEELDNET_ERR_CONFIRM_BULK: ['Er gingen vandaag al meer onderzoeken van deze patiënt naar dit ziekenhuis. Bevestig dat dit nodig is.', 'More studies of this patient went to this hospital today already. Confirm that this is needed.'],
  BEELDNET_ERR_NO_CONSENT: ['De patiënt heeft voor dit doel geen toestemming gegeven.', 'The patient has not consented for this purpose.'],
  BEELDNET_ERR_PULL_NOT_ALLOWED: ['Het ziekenhuis staat dit verzoek niet toe.', 'The hospital does not allow this request.'],
  BEELDNET_ERR_ALREADY_DECIDED: ['Over dit verzoek is al besloten.', 'This request was already decided.'],
  BEELDNET_ERR_BAD_REQUEST: ['Een veld is niet goed ingevuld: {detail}', 'A field is not filled in right: {detail}'],
  BEELDNET_ERR_WEAK_PASSWORD: ['Een wachtwoord heeft minstens 12 tekens.', 'A password has at least 12 characters.'],
  BEELDNET_ERR_USER_EXISTS: ['Die gebruikersnaam bestaat al.', 'That username already exists.'],
  BEELDNET_ERR_NOT_FOUND: ['Niet gevonden.', 'Not found.'],
  BEELDNET_ERR_MEDIA_TYPE: ['Dit bestand is geen PDF.', 'This file is not a PDF.'],
  BEELDNET_ERR_BODY_TOO_LARGE: ['Het bestand is te groot.', 'The file is too large.'],
  BEELDNET_ERR_TRANSFER_STATE: ['Dat kan niet in de huidige stand van de overdracht.', 'That is not possible in the transfer\'s current state.'],
  BEELDNET_ERR_EXPORT_STATE: ['Dat kan niet in de huidige stand van de export naar het PACS.', 'That is not possible in the export\'s current state.'],
  BEELDNET_ERR_UNKNOWN_DESTINATION: ['Er is geen PACS ingesteld om naar te sturen. Vraag IT om pacs.destination in te stellen.', 'No PACS is set up to send to. Ask IT to set pacs.destination.'],
  BEELDNET_ERR_DISK_FULL: ['De opslag van de node is vol: nieuwe onderzoeken worden nu geweigerd. Probeer het later opnieuw of vraag de IT-afdeling ruimte vrij te maken.', 'The node\'s storage is full: new studies are refused for now. Try again later or ask IT to free space.'],
  BEELDNET_ERR_IMPORT_STATE: ['Deze import liep niet zoals verwacht (verlopen of al afgerond). Kies de map opnieuw en importeer nog eens.', 'This import did not go as expected (expired or already finished). Choose the folder again and import once more.']
}

function hasSentence (code: string): code is keyof typeof SENTENCES {
  return Object.hasOwn(SENTENCES, code)
}

export function sentenceFor (err: unknown, lang: Lang): string {
  const code = err instanceof ApiError ? err.code : 'APP_OFFLINE'
  const known = code === 'APP_OFFLINE' ? OFFLINE : hasSentence(code) ? SENTENCES[code] : undefined
  const index = lang === 'nl' ? 0 : 1
  if (known !== undefined) return known[index].replace('{detail}', err instanceof ApiError ? err.message : '')
  return lang === 'nl' ? `Er ging iets mis (${code}). Probeer het opnieuw of vraag de IT-afdeling.` : `Something went wrong (${code}). Try again or ask IT.`
}
