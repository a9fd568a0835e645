import { Command, InvalidArgumentError } from 'commander'
import { nodePaths } from '../paths.ts'
import { createOutput, reportError } from '../../protocol/cli/output.ts'
import type { PatientReport } from '../audit/patient-report.ts'
import { verifyTrail } from '../audit/verify.ts'
import { checkKeptReceipts } from '../audit/receipts.ts'
import { createTrustStore, trustDir } from '../directory/trust-store.ts'
import { nodeOption, run } from './exchange-commands.ts'

/*
 * `beeldnet node audit ...`: verify a trail (the node's, or a copy handed to an auditor) and ask the
 * running node for one patient's access report (the node records that reading).
 */

interface GlobalOptions { dataDir: string, json: boolean }

const bsn = (value: string): string => {
  if (!/^[0-9]{9}$/.test(value)) throw new InvalidArgumentError('a BSN has 9 digits')
  return value
}

export function addAuditCommands (node: Command): void {
  const audit = node.command('audit').description('the NEN 7513 audit trail: verify it, report one patient\'s accesses')

  audit.command('verify')
    .description('check every record\'s hash, link and order; exit status 3 names the first changed, removed or reordered record')
    .option('--file <path>', 'a trail file (default: this node\'s <data-dir>/audit/trail.jsonl)')
    .action(async (opts: { file?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      const out = createOutput(g.json)
      try {
        const result = await verifyTrail(opts.file ?? nodePaths(g.dataDir).auditTrail)
        out.result(result, () => result.ok ? `the trail verifies: ${result.records} record(s)` : `NOT intact (${result.problem!.kind}, line ${result.problem!.line}): ${result.problem!.message}`)
        process.exitCode = result.ok ? 0 : 3
      } catch (err) {
        process.exitCode = reportError(err, g.json)
      }
    })

  audit.command('receipts')
    .description('check every signed receipt kept in the trail against the directory this node held when it was signed; exit status 3 on a problem')
    .option('--file <path>', 'a trail file (default: this node\'s)')
    .action(async (opts: { file?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      const out = createOutput(g.json)
      try {
        const trust = createTrustStore({ dir: trustDir(g.dataDir) })
        const report = await checkKeptReceipts(opts.file ?? nodePaths(g.dataDir).auditTrail, async (time) => trust.directoryAt(time))
        out.result(report, () => [`${report.checked} receipt(s) checked, ${report.problems.length} problem(s)`, ...report.problems.map((p) => `  record ${p.seq}: ${p.message}`)].join('\n'))
        process.exitCode = report.problems.length === 0 ? 0 : 3
      } catch (err) {
        process.exitCode = reportError(err, g.json)
      }
    })

  audit.command('report')
    .description('every access to one patient\'s data on this node (asks the running node; the request is recorded)')
    .requiredOption('--bsn <bsn>', 'the patient\'s BSN', bsn)
    .addOption(nodeOption())
    .action(async (opts: { bsn: string }, cmd: Command) => run(cmd, async (api, out) => {
      const report = await api.get<PatientReport>(`/api/audit/patients/${opts.bsn}`)
      out.result(report, () => [
        `${report.accesses.length} access(es) to BSN ${report.bsn}:`,
        ...report.accesses.map((a) => `  ${a.time}  ${a.event.padEnd(14)} ${a.outcome.padEnd(22)} ${a.user.system ?? `${a.user.name ?? ''} UZI ${a.user.uzi ?? '-'}`}${a.institution === undefined ? '' : `  ${a.institution.name ?? ''} (URA ${a.institution.ura})`}`)
      ].join('\n'))
      return 0
    }))
}
