// The `beeldnet` program: composes the verbs of the node and the registry (which never import
// each other) into one program.
import { Command } from 'commander'
import { nodeCommand } from '../node/cli/node-commands.ts'
import { governanceCommand } from '../registry/cli/governance-commands.ts'
import { registryCommand } from '../registry/cli/registry-commands.ts'

export function createProgram (): Command {
  const program = new Command('beeldnet')
    .description('Beeldnet: federated exchange of radiology studies between hospitals')
    .version('0.1.0')
    .showHelpAfterError()
  program.addCommand(nodeCommand())
  program.addCommand(registryCommand())
  program.addCommand(governanceCommand())
  return program
}
