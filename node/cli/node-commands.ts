import { Command, InvalidArgumentError, Option } from 'commander'
import { pino } from 'pino'
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { AuditLog } from '../audit/audit-log.ts'
import { auditPatient, recordImported } from '../audit/events.ts'
import { BeeldnetNode } from '../beeldnet-node.ts'
import { importFiles, type ImportSummary } from '../dicom/file-import.ts'
import { NotInitialisedError, RootNotPinnedError } from '../errors.ts'
import { initNode } from '../init.ts'
import { writePdiFolder, type PdiFolderResult } from '../media/pdi-folder.ts'
import { releaseStartMemory } from '../start-memory.ts'
import { defaultDataDir, nodePaths } from '../paths.ts'
import type { StudyRecord } from '../store/records.ts'
import type { StudyEntries } from '../store/study-index.ts'
import { StudyStore, type DiskUsage } from '../store/study-store.ts'
import { BadRequestError, isBeeldnetError } from '../../protocol/errors.ts'
import type { NodeApi } from './node-api-client.ts'
import { answers, apiOf, markRunning, markStopped, runningNode, unreachableRunningNode } from './running-node.ts'
import { exportThroughNode, importThroughNode, pdiThroughNode, studiesThroughNode, studyThroughNode, diskUsageThroughNode, type StudiesQuery } from './through-node.ts'
import { createOutput, reportError, type Output } from '../../protocol/cli/output.ts'
import { formatBytes, formatStudyDetail, formatStudyTable } from './format.ts'
import { hashOfSigned } from '../../protocol/canonical.ts'
import { loadIdentityFile } from '../../protocol/identity.ts'
import { InstitutionKind } from '../../protocol/registry/documents.ts'
import { loadConfig, updateConfigFile } from '../config/config.ts'
import { createDirectoryService, type AcceptResult } from '../directory/directory-service.ts'
import { buildEnrolment, sendEnrolment } from '../directory/enrol.ts'
import { createRegistryClient } from '../directory/registry-client.ts'
import { formatDirectoryStatus } from '../directory/status-text.ts'
import { createTrustStore, trustDir } from '../directory/trust-store.ts'
import { addExchangeCommands, nodeApiFor } from './exchange-commands.ts'
import { addAuditCommands } from './audit-commands.ts'
import { addUserCommands } from './user-commands.ts'
import { cliUser } from './cli-user.ts'
import { addExportCommands } from './export-commands.ts'
import { apiStudySource, deidentifiedExportCommand } from './deidentify-export.ts'

interface GlobalOptions { dataDir: string, json: boolean }

/**
 * Runs `action` with an open store and the output chosen by --json; sets the exit code on error.
 * With `throughNode`, a verb that also works on a running node: while `beeldnet node start` runs
 * on this data directory (it holds the store), the verb goes through its API instead.
 */
async function withStore (cmd: Command, action: (store: StudyStore, out: Output) => Promise<number | undefined>, throughNode?: (api: NodeApi, out: Output) => Promise<number | undefined>): Promise<void> {
  const opts = cmd.optsWithGlobals<GlobalOptions>()
  const out = createOutput(opts.json)
  let store: StudyStore | undefined
  try {
    if (!await stat(nodePaths(opts.dataDir).config).then(() => true, () => false)) throw new NotInitialisedError(opts.dataDir)
    const node = throughNode === undefined ? undefined : await runningNode(opts.dataDir)
    const unanswered = node === undefined ? undefined : await answers(node.url)
    if (node !== undefined && unanswered === undefined) {
      process.exitCode = await throughNode!(await apiOf(opts.dataDir, node), out) ?? 0
      return
    }
    // The config's duplicates policy, as the running node applies it: an import is judged the same either way.
    const opened = new StudyStore({ dir: opts.dataDir, duplicates: (await loadConfig(nodePaths(opts.dataDir).config)).store.duplicates })
    try {
      await opened.start()
    } catch (err) {
      if (throughNode === undefined || !isBeeldnetError(err) || err.code !== 'BEELDNET_ERR_STORE_LOCKED') throw err
      // The file names a live process whose API is silent: the store is locked, so that node holds it.
      if (node !== undefined && unanswered !== undefined) throw unreachableRunningNode(node, unanswered)
      // A node that wrote no running.json (started otherwise): its API may answer where the config says.
      const configured = await nodeApiFor(opts.dataDir, undefined)
      if (await answers(configured.url) !== undefined) throw err
      process.exitCode = await throughNode(configured, out) ?? 0
      return
    }
    store = opened
    process.exitCode = await action(store, out) ?? 0
  } catch (err) {
    process.exitCode = reportError(err, opts.json)
  } finally {
    await store?.stop()
  }
}

export function nodeCommand (): Command {
  const node = new Command('node').description('run and manage this hospital\'s Beeldnet node')
  node.addOption(new Option('-d, --data-dir <dir>', 'the node\'s data directory').env('BEELDNET_DATA_DIR').default(defaultDataDir({})).argParser((v) => resolve(v)))
  node.option('--json', 'machine-readable output on stdout', false)

  node.command('init')
    .description('create the data directory, a commented config file and the node\'s Ed25519 identity key')
    .option('--name <name>', 'name of this node, shown in logs', 'Beeldnet node')
    .action(async (opts: { name: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      const out = createOutput(g.json)
      try {
        const identity = await initNode(g.dataDir, { name: opts.name })
        out.result({ dataDir: g.dataDir, config: identity.configPath, peerId: identity.peerId },
          () => `initialised ${g.dataDir}\n  config   ${identity.configPath}\n  peer id  ${identity.peerId}`)
      } catch (err) {
        process.exitCode = reportError(err, g.json)
      }
    })

  node.command('import')
    .description('import DICOM files, folders (recursively) and DVD/USB media with a DICOMDIR (through the node\'s API while it runs); exit status 3 if any file was rejected')
    .argument('<paths...>', 'files, folders or DICOMDIR files')
    .action(async (paths: string[], _opts: unknown, cmd: Command) => {
      const done = (summary: ImportSummary, out: Output): number => {
        out.result(summary, () => formatImportSummary(summary))
        return summary.rejected.length > 0 ? 3 : 0
      }
      await withStore(cmd, async (store, out) => {
        // NEN 7513: an import is an access to patient data, audited per study as the running node audits
        // one through its API. The trail is opened first: no import that could not be recorded.
        const trail = new AuditLog(nodePaths(cmd.optsWithGlobals<GlobalOptions>().dataDir).auditTrail)
        await trail.start()
        try {
          const progress = out.progress('importing')
          const summary = await importFiles(paths, {
            store,
            onEvent: (e) => {
              if (e.type === 'found') progress.start(e.total)
              if (e.type === 'file') progress.update(e.done, e.status === 'rejected' ? `${e.path}: ${e.code}` : undefined)
              if (e.type === 'warning') out.info(`warning: ${e.message}`)
            }
          })
          progress.stop()
          await recordImported(trail, summary.studies, async (uid) => store.getStudyRecord(uid), cliUser(), { command: 'beeldnet node import' })
          return done(summary, out)
        } finally {
          await trail.stop()
        }
      }, async (api, out) => done(await importThroughNode(api, paths, out), out))
    })

  node.command('studies')
    .description('list stored studies, newest first')
    .option('--patient-id <id>', 'patient id (with --issuer for an exact patient)')
    .option('--issuer <issuer>', 'issuer of the patient id')
    .option('--bsn <bsn>', 'Dutch citizen service number')
    .option('--date <range>', 'study date YYYYMMDD or range YYYYMMDD-YYYYMMDD (either end may be open)')
    .option('--modality <modality>', 'modality in study, e.g. CT')
    .option('--accession <number>', 'accession number')
    .action(async (opts: { patientId?: string, issuer?: string, bsn?: string, date?: string, modality?: string, accession?: string }, cmd: Command) => {
      const query = (): StudiesQuery => {
        const [dateFrom, dateTo] = parseDateRange(opts.date)
        return { patientId: opts.patientId, issuer: opts.issuer, bsn: opts.bsn, dateFrom, dateTo, modality: opts.modality?.toUpperCase(), accessionNumber: opts.accession }
      }
      const done = (studies: StudyRecord[], out: Output): number => {
        out.result(studies, () => formatStudyTable(studies))
        return 0
      }
      await withStore(cmd, async (store, out) => done(await store.findStudies(query()), out),
        async (api, out) => done(await studiesThroughNode(api, query(), out), out))
    })

  node.command('show')
    .description('show one study: patient, series, instances and reports')
    .argument('<StudyInstanceUID>')
    .action(async (uid: string, _opts: unknown, cmd: Command) => {
      const done = (entries: StudyEntries, out: Output): number => {
        out.result({ ...entries.study, series: entries.series, instances: entries.instances }, () => formatStudyDetail(entries))
        return 0
      }
      await withStore(cmd, async (store, out) => done(await store.getStudy(uid), out), async (api, out) => done(await studyThroughNode(api, uid), out))
    })

  node.command('export')
    .description('write a study\'s DICOM files to a folder, byte-identical to what was stored; with --pdi as an IHE PDI medium (DICOMDIR, README.TXT, INDEX.HTM)')
    .argument('<StudyInstanceUID>')
    .argument('<dir>')
    .option('--pdi', 'write an IHE PDI medium (for a CD/DVD or USB stick) into the folder, which must be empty', false)
    .option('--with-study <StudyInstanceUID>', 'with --pdi: another study on the same medium (repeatable)', collect, [])
    .option('--institution <name>', 'with --pdi: the institution README.TXT and INDEX.HTM name as the medium\'s maker')
    .option('--deidentify <profile>', 'de-identify by DICOM PS3.15 Annex E for teaching or research: basic[,retain-dates][,clean-descriptors]')
    .option('--confirm-burned-in <name>', 'with --deidentify: the person who checked the images for burned-in text and answers for it')
    .option('--record <file>', 'with --deidentify: write the de-identification record and the UID map here (outside <dir>); without it the map is not kept')
    .action(async (uid: string, dir: string, opts: { pdi: boolean, withStudy: string[], institution?: string, deidentify?: string, confirmBurnedIn?: string, record?: string }, cmd: Command) => {
      if (opts.deidentify !== undefined) {
        const deidentify = { ...opts, deidentify: opts.deidentify }
        const dataDir = cmd.optsWithGlobals<GlobalOptions>().dataDir
        await withStore(cmd, async (store, out) => deidentifiedExportCommand(store, uid, dir, deidentify, dataDir, out),
          async (api, out) => deidentifiedExportCommand(apiStudySource(api), uid, dir, deidentify, dataDir, out))
        return
      }
      if (!opts.pdi) {
        if (opts.withStudy.length > 0 || opts.institution !== undefined) {
          process.exitCode = reportError(new BadRequestError('--with-study and --institution go with --pdi'), cmd.optsWithGlobals<GlobalOptions>().json)
          return
        }
        const done = (files: string[], out: Output): number => {
          out.result({ studyInstanceUID: uid, files }, () => `exported ${files.length} file(s) to ${resolve(dir)}`)
          return 0
        }
        await withStore(cmd, async (store, out) => done(await store.exportStudy(uid, resolve(dir)), out),
          async (api, out) => done(await exportThroughNode(api, uid, resolve(dir)), out))
        return
      }
      const uids = [...new Set([uid, ...opts.withStudy])]
      const init = { createdAt: new Date(), ...(opts.institution === undefined ? {} : { institution: opts.institution }) }
      const done = ({ files, plan }: PdiFolderResult, out: Output): number => {
        const studies = plan.patients.flatMap((p) => p.studies.map((s) => s.study.studyInstanceUID))
        out.result({ studyInstanceUIDs: studies, patients: plan.patients.length, instances: plan.instances.length, files },
          () => `wrote a PDI medium to ${resolve(dir)}: ${studies.length} study(ies) of ${plan.patients.length} patient(s), ${plan.instances.length} DICOM file(s), DICOMDIR, README.TXT, INDEX.HTM`)
        return 0
      }
      await withStore(cmd, async (store, out) => {
        const studies = await Promise.all(uids.map(async (u) => store.getStudy(u)))
        // NEN 7513: a medium carries patient data out of the node; recorded before a byte is written.
        const trail = new AuditLog(nodePaths(cmd.optsWithGlobals<GlobalOptions>().dataDir).auditTrail)
        await trail.start()
        try {
          await trail.recordAll(studies.map(({ study }) => ({
            event: 'export', outcome: `PDI medium to ${resolve(dir)}`, patient: auditPatient(study.patient), user: cliUser(),
            studyInstanceUID: study.studyInstanceUID, details: { command: 'beeldnet node export --pdi' }
          })))
        } finally {
          await trail.stop()
        }
        return done(await writePdiFolder(studies, resolve(dir), (instance) => store.openInstance(instance), init), out)
      }, async (api, out) => done(await pdiThroughNode(api, uids, resolve(dir), init), out))
    })

  node.command('delete')
    .description('delete a study from this node (refused while an unfinished transfer needs it, unless --force)')
    .argument('<StudyInstanceUID>')
    .option('--force', 'delete even if held', false)
    .action(async (uid: string, opts: { force: boolean }, cmd: Command) => {
      await withStore(cmd, async (store, out) => {
        const study = await store.deleteStudy(uid, { force: opts.force })
        out.result({ deleted: study.studyInstanceUID, instances: study.numberOfInstances, size: study.size },
          () => `deleted ${study.studyInstanceUID} (${study.numberOfInstances} instances, ${formatBytes(study.size)})`)
        return 0
      })
    })

  node.command('fsck')
    .description('check every stored file against its hash; exit status 3 if anything is missing or corrupt')
    .option('--repair', 'quarantine corrupt files, drop missing ones from the index, remove orphan files', false)
    .action(async (opts: { repair: boolean }, cmd: Command) => {
      await withStore(cmd, async (store, out) => {
        const progress = out.progress('checking')
        progress.start((await store.diskUsage()).instances)
        const report = await store.fsck({ repair: opts.repair, onProgress: (done) => progress.update(done) })
        progress.stop()
        out.result(report, () => [
          `checked ${report.checked} file(s): ${report.missing.length} missing, ${report.corrupt.length} corrupt, ${report.orphans.length} orphan(s)`,
          ...report.missing.map((m) => `  missing  ${m.sha256}  study ${m.studyInstanceUID} instance ${m.sopInstanceUID}`),
          ...report.corrupt.map((c) => `  corrupt  ${c.sha256}  study ${c.studyInstanceUID} instance ${c.sopInstanceUID}`),
          ...report.orphans.map((o) => `  orphan   ${o}`),
          report.repaired ? 'repaired: corrupt files quarantined, lost instances dropped from the index, orphans removed' : ''
        ].filter((l) => l !== '').join('\n'))
        return report.missing.length + report.corrupt.length > 0 && !report.repaired ? 3 : 0
      })
    })

  node.command('purge')
    .description('run the retention sweep now: delete studies not updated for the configured number of days')
    .option('--older-than <days>', 'override the configured retention', Number)
    .action(async (opts: { olderThan?: number }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      await withStore(cmd, async (store, out) => {
        const { loadConfig } = await import('../config/config.ts')
        const days = opts.olderThan ?? (await loadConfig(nodePaths(g.dataDir).config)).store.retentionDays
        const result = await store.purgeExpired(days)
        out.result({ retentionDays: days, purged: result.purged.map((s) => s.studyInstanceUID), keptHeld: result.keptHeld },
          () => `purged ${result.purged.length} study(ies) older than ${days} day(s); kept ${result.keptHeld.length} still needed by transfers`)
        return 0
      })
    })

  node.command('status')
    .description('disk use and counts of the store')
    .action(async (_opts: unknown, cmd: Command) => {
      const done = (usage: DiskUsage, out: Output): number => {
        out.result(usage, () => `${usage.studies} studies, ${usage.instances} instances, ${formatBytes(usage.storedBytes)} stored; ` +
          `${formatBytes(usage.freeBytes)} free of ${formatBytes(usage.totalBytes)}`)
        return 0
      }
      await withStore(cmd, async (store, out) => done(await store.diskUsage(), out), async (api, out) => done(await diskUsageThroughNode(api), out))
    })

  node.command('enrol')
    .description('pin the network\'s root, point this node at the registry and ask to join with an enrolment signed by the node\'s own key')
    .requiredOption('--registry <url>', 'the registry\'s base URL (written to registry.url in the config)')
    .requiredOption('--ura <ura>', 'the institution\'s 8-digit URA number')
    .requiredOption('--name <name>', 'the institution\'s name as governance will list it')
    .addOption(new Option('--kind <kind>', 'kind of institution').choices(InstitutionKind.options).default('hospital'))
    .option('--department <CODE:Name>', 'a department that can receive studies (repeatable)', collectDepartment, [])
    .option('--address <multiaddr>', 'where peers reach this node, e.g. /dns4/host/tcp/4001 (repeatable)', collect, [])
    .option('--root <root.json>', 'pin the network\'s root v1 from this file')
    .option('--root-hash <sha256>', 'pin the registry\'s root v1 only if it has this hash (from governance, out of band); with --root, check the file too')
    .action(async (opts: EnrolOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      const out = createOutput(g.json)
      try {
        const paths = nodePaths(g.dataDir)
        if (!await stat(paths.config).then(() => true, () => false)) throw new NotInitialisedError(g.dataDir)
        const identity = await loadIdentityFile(paths.identity)
        const trustStore = createTrustStore({ dir: trustDir(g.dataDir) })
        const client = createRegistryClient({ url: opts.registry })
        let root
        if (opts.root !== undefined) root = (await trustStore.pinRootFile(resolve(opts.root), opts.rootHash)).signed
        else if (opts.rootHash !== undefined) root = (await trustStore.pinRoot(await client.get('/v1/roots/1'), opts.rootHash)).signed
        else root = (await trustStore.load())?.root.signed
        if (root === undefined) throw new RootNotPinnedError('no root pinned yet: give --root <root.json> or --root-hash <sha256> (from governance)')
        await updateConfigFile(paths.config, ['registry', 'url'], client.url)
        const enrolment = await buildEnrolment(identity, {
          network: root.network, ura: opts.ura, name: opts.name, kind: opts.kind, departments: opts.department, addresses: opts.address
        })
        const { id } = await sendEnrolment(client, enrolment)
        const result = { id, peerId: identity.peerId, network: root.network, rootVersion: root.version, rootHash: hashOfSigned(root), registry: client.url }
        out.result(result, () => [
          `enrolment ${id} sent to ${client.url}`,
          `  peer id   ${identity.peerId}`,
          `  network   ${root.network} (root v${root.version} ${result.rootHash.slice(0, 16)})`,
          'governance must admit it; the node picks up the directory that lists it by itself'
        ].join('\n'))
      } catch (err) {
        process.exitCode = reportError(err, g.json)
      }
    })

  node.command('directory')
    .description('what this node trusts: root and directory version, hash, age, expiry, last refresh and error')
    .option('--import <file>', 'take a signed directory (or an ascending array of versions) from a file: it must verify')
    .option('--refresh', 'ask the registry (then the mirrors) for a newer directory now', false)
    .action(async (opts: { import?: string, refresh: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      const out = createOutput(g.json)
      const paths = nodePaths(g.dataDir)
      try {
        if (!await stat(paths.config).then(() => true, () => false)) throw new NotInitialisedError(g.dataDir)
        const config = await loadConfig(paths.config)
        const service = createDirectoryService({ trustStore: createTrustStore({ dir: trustDir(g.dataDir) }), logger: pino({ level: 'silent' }) }, {
          registryUrl: config.registry.url, mirrors: config.registry.mirrors, pollIntervalSeconds: 0
        })
        await service.start()
        try {
          let result: AcceptResult | undefined
          if (opts.import !== undefined) result = await service.acceptDirectoryFile(resolve(opts.import))
          if (opts.refresh) result = await service.refresh()
          const status = service.status()
          out.result(result === undefined ? status : { ...status, result }, () => formatDirectoryStatus(status, result))
        } finally {
          await service.stop()
        }
      } catch (err) {
        process.exitCode = reportError(err, g.json)
      }
    })

  addExchangeCommands(node)
  addAuditCommands(node)
  addUserCommands(node)
  addExportCommands(node)

  node.command('start')
    .description('run the node: HTTP server (/health, /api/studies) and retention; stops cleanly on SIGINT/SIGTERM')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      const beeldnet = new BeeldnetNode({ dataDir: g.dataDir })
      try {
        await beeldnet.start()
      } catch (err) {
        process.exitCode = reportError(err, g.json)
        return
      }
      try {
        // The CLI's verbs on the store go through this node's API while it runs (it holds the store).
        await markRunning(g.dataDir, { url: beeldnet.url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:'), pid: process.pid })
      } catch (err) {
        await beeldnet.stop().catch(() => {})
        process.exitCode = reportError(err, g.json)
        return
      }
      // Started: what starting left in the heap goes back before the node waits.
      releaseStartMemory()
      await new Promise<void>((resolveStop) => {
        const stop = (signal: string): void => {
          beeldnet.logger.info({ signal }, 'stopping')
          markStopped(g.dataDir).then(async () => beeldnet.stop()).then(resolveStop, (err: unknown) => {
            beeldnet.logger.error({ err }, 'stop failed')
            process.exitCode = 1
            resolveStop()
          })
        }
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
      })
    })

  return node
}

interface EnrolOptions {
  registry: string
  ura: string
  name: string
  kind: Kind
  department: Array<{ code: string, name: string }>
  address: string[]
  root?: string
  rootHash?: string
}

type Kind = typeof InstitutionKind.options[number]

function collect (value: string, previous: string[]): string[] {
  return [...previous, value]
}

function collectDepartment (value: string, previous: Array<{ code: string, name: string }>): Array<{ code: string, name: string }> {
  const at = value.indexOf(':')
  if (at <= 0 || at === value.length - 1) throw new InvalidArgumentError('a department is CODE:Name, e.g. RAD:Radiologie')
  return [...previous, { code: value.slice(0, at), name: value.slice(at + 1) }]
}

function parseDateRange (value: string | undefined): [string | undefined, string | undefined] {
  if (value === undefined) return [undefined, undefined]
  const m = /^([0-9]{8})?(-)?([0-9]{8})?$/.exec(value)
  if (m === null || (m[1] === undefined && m[3] === undefined)) throw new Error(`--date takes YYYYMMDD or YYYYMMDD-YYYYMMDD, not ${value}`)
  return m[2] === undefined ? [m[1], m[1]] : [m[1], m[3]]
}

function formatImportSummary (s: ImportSummary): string {
  const lines = [`${s.files} file(s): ${s.stored} stored, ${s.duplicates} duplicate(s), ${s.rejected.length} rejected; ${s.studies.length} study(ies), ${formatBytes(s.bytes)}`]
  const byCode = Map.groupBy(s.rejected, (r) => r.code)
  for (const [code, list] of byCode) {
    lines.push(`  ${code} (${list.length}):`)
    for (const r of list.slice(0, 10)) lines.push(`    ${r.path}: ${r.message}`)
    if (list.length > 10) lines.push(`    ... and ${list.length - 10} more`)
  }
  if (s.missing.length > 0) {
    lines.push(`  named by a DICOMDIR, not on the medium (${s.missing.length}):`)
    for (const path of s.missing.slice(0, 10)) lines.push(`    ${path}`)
    if (s.missing.length > 10) lines.push(`    ... and ${s.missing.length - 10} more`)
  }
  return lines.join('\n')
}

export type { StudyRecord }
