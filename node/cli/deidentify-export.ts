import { writeFile } from 'node:fs/promises'
import { relative, resolve } from 'node:path'
import { BadRequestError } from '../../protocol/errors.ts'
import type { Output } from '../../protocol/cli/output.ts'
import { AuditLog } from '../audit/audit-log.ts'
import { exportDeidentified, type StudySource } from '../deidentify/export.ts'
import { parseProfile } from '../deidentify/options.ts'
import { nodePaths } from '../paths.ts'
import { cliUser } from './cli-user.ts'
import type { NodeApi } from './node-api-client.ts'
import { studyThroughNode } from './through-node.ts'

/*
 * `beeldnet node export <uid> <dir> --deidentify basic[,retain-dates][,clean-descriptors]`: the study
 * de-identified into the folder, from the store or through the running node's API, recorded in the
 * node's audit trail as an export of the original. The UID map and the record go only where
 * `--record <file>` says (outside the folder): without it the copy cannot be traced back.
 */

export interface DeidentifyCliOptions {
  deidentify: string
  confirmBurnedIn?: string
  record?: string
  /** a PDI medium is not de-identified (yet): the two are refused together */
  pdi?: boolean
}

/** A running node's study as a StudySource: its record and each instance's file from the API. */
export function apiStudySource (api: NodeApi): StudySource {
  return {
    getStudy: async (uid) => studyThroughNode(api, uid),
    openInstance: async (instance) => api.getStream(`/api/studies/${encodeURIComponent(instance.studyInstanceUID)}/instances/${encodeURIComponent(instance.sopInstanceUID)}/file`)
  }
}

export async function deidentifiedExportCommand (source: StudySource, uid: string, dir: string, opts: DeidentifyCliOptions, dataDir: string, out: Output): Promise<number> {
  if (opts.pdi === true) throw new BadRequestError('--deidentify and --pdi do not go together: a PDI medium is the patient\'s own copy; export de-identified to a folder instead')
  const profile = parseProfile(opts.deidentify)
  const target = resolve(dir)
  const recordFile = opts.record === undefined ? undefined : resolve(opts.record)
  if (recordFile !== undefined && !relative(target, recordFile).startsWith('..')) throw new BadRequestError('--record must be outside the export folder: the map turns the copy back into the patient')
  const trail = new AuditLog(nodePaths(dataDir).auditTrail)
  await trail.start()
  try {
    const result = await exportDeidentified(source, uid, target, {
      profile,
      ...(opts.confirmBurnedIn === undefined ? {} : { confirmBurnedIn: { by: opts.confirmBurnedIn } }),
      audit: { sink: trail, user: cliUser(), details: { command: 'beeldnet node export --deidentify' } }
    })
    if (recordFile !== undefined) await writeFile(recordFile, `${JSON.stringify({ record: result.record, instances: result.instances, map: result.map.entries() }, null, 2)}\n`, { mode: 0o600 })
    out.result({ ...result.record, files: result.files }, () => [
      `exported ${result.files.length} file(s) de-identified (${result.record.profile}) to ${target}`,
      `  new Study Instance UID ${result.record.studyInstanceUID}`,
      `  attributes: ${Object.entries(result.record.counts).map(([a, n]) => `${a} ${n}`).join(', ')}; private removed ${result.record.privateRemoved}`,
      ...result.record.burnedInAnnotation.map((b) => `  burned-in text confirmed by ${b.confirmedBy}: ${b.sopInstanceUID} (${b.reason})`),
      recordFile === undefined ? '  no --record: the UID map was not kept' : `  record and UID map written to ${recordFile}`
    ].join('\n'))
    return 0
  } finally {
    await trail.stop()
  }
}
