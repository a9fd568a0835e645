// The `beeldnet` command: composes the verbs of the node and the registry (which never import
// each other) into one program.
import { Command } from 'commander'
import { nodeCommand } from '../node/cli/node-commands.ts'

export function createProgram (): Command {
  const program = new Command('beeldnet')
    .description('Beeldnet: federated exchange of radiology studies between hospitals')
    .version('0.1.0')
    .showHelpAfterError()
  program.addCommand(nodeCommand())
  return program
}

await createProgram().parseAsync(process.argv)
