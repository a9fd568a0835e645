import { Command } from 'commander'
import { nodeCommand } from './node-commands.ts'

/** `beeldnet`: one command, verbs grouped by who uses them (node now; registry and governance later). */
export function createProgram (): Command {
  const program = new Command('beeldnet')
    .description('Beeldnet: federated exchange of radiology studies between hospitals')
    .version('0.1.0')
    .showHelpAfterError()
  program.addCommand(nodeCommand())
  return program
}

await createProgram().parseAsync(process.argv)
