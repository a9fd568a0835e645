import type { MediumPlan } from './pdi-layout.ts'

/*
 * The two files IHE PDI puts beside the DICOMDIR for people: README.TXT (who made the medium, with
 * what, how it is organised, what is needed to read it) and INDEX.HTM (what is on it). Plain
 * XHTML, no script, nothing fetched from elsewhere; Dutch first, then English. README.TXT names no
 * patient: it is the file anyone opens first.
 */

export interface MediumTextsInit {
  /** when the medium was made */
  createdAt: Date
  /** the institution that made it (default: none named) */
  institution?: string
  /** the software that made it (default 'Beeldnet') */
  application?: string
}

function counts (plan: MediumPlan): { studies: number, series: number, instances: number } {
  const studies = plan.patients.flatMap((p) => p.studies)
  return { studies: studies.length, series: studies.reduce((n, s) => n + s.series.length, 0), instances: plan.instances.length }
}

export function readmeText (plan: MediumPlan, init: MediumTextsInit): string {
  const { studies, series, instances } = counts(plan)
  const made = init.createdAt.toISOString().slice(0, 10)
  const application = init.application ?? 'Beeldnet'
  const by = init.institution === undefined ? '' : ` door ${init.institution}`
  const byEn = init.institution === undefined ? '' : ` by ${init.institution}`
  const lines = [
    'BEELDEN OP DEZE DRAGER / IMAGES ON THIS MEDIUM',
    '',
    '--- Nederlands ---',
    `Deze drager is op ${made}${by} gemaakt met ${application}.`,
    `Hij bevat ${studies} onderzoek(en), ${series} serie(s) en ${instances} DICOM-bestand(en)`,
    'volgens het IHE-profiel Portable Data for Imaging (PDI) en DICOM PS3.10/PS3.11',
    '(General Purpose CD-R en USB).',
    '',
    'Indeling:',
    '  DICOMDIR     de inhoudsopgave voor DICOM-viewers',
    '  DICOM\\       de beelden en verslagen (patient, onderzoek, serie, bestand)',
    '  INDEX.HTM    overzicht van de inhoud, te openen in een webbrowser',
    '  README.TXT   dit bestand',
    '',
    'Om de beelden te bekijken is een DICOM-viewer nodig die een DICOMDIR leest.',
    'Er staat geen viewer op deze drager en niets start vanzelf.',
    'Deze drager bevat medische gegevens: bewaar hem zorgvuldig.',
    '',
    '--- English ---',
    `This medium was made on ${made}${byEn} with ${application}.`,
    `It holds ${studies} study(ies), ${series} series and ${instances} DICOM file(s)`,
    'following the IHE Portable Data for Imaging (PDI) profile and DICOM PS3.10/PS3.11',
    '(General Purpose CD-R and USB).',
    '',
    'Layout:',
    '  DICOMDIR     the directory DICOM viewers read',
    '  DICOM\\       the images and reports (patient, study, series, file)',
    '  INDEX.HTM    an overview of the contents, for a web browser',
    '  README.TXT   this file',
    '',
    'Viewing the images needs a DICOM viewer that reads a DICOMDIR.',
    'There is no viewer on this medium and nothing starts by itself.',
    'This medium holds medical data: keep it safe.',
    ''
  ]
  return lines.join('\r\n')
}

function escape (text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** DICOM PN: ^ between parts, = between alphabetic, ideographic and phonetic forms. */
function personName (pn: string): string {
  return pn.split('=').map((g) => g.split('^').filter((p) => p !== '').join(' ')).filter((g) => g !== '').join(' = ')
}

function date (d: string): string {
  return /^[0-9]{8}$/.test(d) ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : d
}

export function indexHtml (plan: MediumPlan, init: MediumTextsInit): string {
  const { studies, instances } = counts(plan)
  const made = init.createdAt.toISOString().slice(0, 10)
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">',
    '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="nl" lang="nl">',
    '<head>',
    '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />',
    '<title>Beelden op deze drager / Images on this medium</title>',
    '</head>',
    '<body>',
    '<h1>Beelden op deze drager / Images on this medium</h1>',
    `<p>${studies} onderzoek(en), ${instances} bestand(en); gemaakt op ${made}` +
      `${init.institution === undefined ? '' : ` door ${escape(init.institution)}`}.<br />` +
      `${studies} study(ies), ${instances} file(s); made on ${made}` +
      `${init.institution === undefined ? '' : ` by ${escape(init.institution)}`}.</p>`,
    '<p>Open de map met een DICOM-viewer (die leest het bestand DICOMDIR). Zie ook <a href="README.TXT">README.TXT</a>.<br />',
    'Open the folder with a DICOM viewer (it reads the file DICOMDIR). See also <a href="README.TXT">README.TXT</a>.</p>'
  ]
  for (const { patient, studies: patientStudies } of plan.patients) {
    out.push(`<h2>Patiënt / Patient: ${escape(personName(patient.name))}</h2>`,
      '<table border="1" cellpadding="4" summary="patient">',
      `<tr><th>Patiëntnummer / Patient ID</th><td>${escape(patient.id)}${patient.issuer === '' ? '' : ` (${escape(patient.issuer)})`}</td></tr>`,
      `<tr><th>Geboortedatum / Date of birth</th><td>${escape(date(patient.birthDate))}</td></tr>`,
      `<tr><th>Geslacht / Sex</th><td>${escape(patient.sex)}</td></tr>`,
      '</table>')
    for (const { study, series } of patientStudies) {
      const files = series.reduce((n, s) => n + s.instances.length, 0)
      out.push(`<h3>Onderzoek / Study: ${escape(date(study.date))} ${escape(study.description)}</h3>`,
        `<p>Accessienummer / Accession number: ${escape(study.accessionNumber)}<br />`,
        `${series.length} serie(s) / series, ${files} bestand(en) / file(s)<br />`,
        `Study Instance UID: ${escape(study.studyInstanceUID)}</p>`,
        '<table border="1" cellpadding="4" summary="series">',
        '<tr><th>Serie / Series</th><th>Modaliteit / Modality</th><th>Omschrijving / Description</th><th>Bestanden / Files</th><th>Map / Folder</th></tr>')
      for (const { series: s, instances: members } of series) {
        const folder = members[0]!.fileId.slice(0, -1).join('\\')
        out.push(`<tr><td>${s.number ?? ''}</td><td>${escape(s.modality)}</td><td>${escape(s.description)}</td><td>${members.length}</td><td>${escape(folder)}</td></tr>`)
      }
      out.push('</table>')
    }
  }
  out.push('</body>', '</html>', '')
  return out.join('\r\n')
}
