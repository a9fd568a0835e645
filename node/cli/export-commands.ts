import type { Command } from 'commander'
import type { ExportView } from '../api/pacs-routes.ts'
import { nodeOption, run } from './exchange-commands.ts'

/*
 * `beeldnet node exports [list | retry <id> | cancel <id>]`: the queue of exports to the PACS on
 * the running node (its HTTP API), as IT keeps it going: what waits, why it failed, when it is
 * tried next; a failed one queued again, an unwanted one stopped.
 */

function describe (e: ExportView): string {
  const next = e.state === 'queued' && e.nextAttemptAt !== undefined ? `  next attempt ${e.nextAttemptAt}` : ''
  const error = e.lastError === undefined ? '' : `  ${e.lastError.code}: ${e.lastError.message}`
  return `${e.exportId}  ${e.state.padEnd(9)} to ${e.destination}  ${e.done.instances}/${e.totals.instances} instances  attempt ${e.attempts}  ${e.studyInstanceUID}${next}${error}`
}

export function addExportCommands (node: Command): void {
  const exports = node.command('exports').description('exports to the PACS: queued, retrying and ended; retry or cancel one')

  exports.command('list', { isDefault: true })
    .description('every export, newest first')
    .addOption(nodeOption())
    .action(async (_opts: unknown, cmd: Command) => run(cmd, async (api, out) => {
      const { exports: all } = await api.get<{ exports: ExportView[] }>('/api/pacs/exports')
      out.result({ exports: all }, () => all.length === 0 ? 'no exports' : all.map(describe).join('\n'))
      return 0
    }))

  for (const [verb, what] of [['retry', 'queue a failed or cancelled export again, with a fresh count of attempts'], ['cancel', 'stop a queued or retrying export for good']] as const) {
    exports.command(verb)
      .description(what)
      .argument('<exportId>')
      .addOption(nodeOption())
      .action(async (exportId: string, _opts: unknown, cmd: Command) => run(cmd, async (api, out) => {
        const record = await api.post<ExportView>(`/api/pacs/exports/${encodeURIComponent(exportId)}/${verb}`)
        out.result(record, () => describe(record))
        return 0
      }))
  }
}
