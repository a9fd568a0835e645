import { Command, Option } from 'commander'
import { resolve } from 'node:path'
import { createOutput, reportError } from '../../protocol/cli/output.ts'
import { loadConfig } from '../config.ts'
import { initRegistry } from '../init.ts'
import { registryPaths } from '../paths.ts'
import { createRegistry } from '../registry.ts'
import { parseKeyArgument } from './governance-commands.ts'

/*
 * `beeldnet registry ...`: what the registry operator runs. The operator holds the online
 * timestamp key only; publishing needs the governance members' signatures.
 */

interface GlobalOptions { dataDir: string, json: boolean }

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]
const integer = (value: string): number => {
  if (!/^[0-9]+$/.test(value)) throw new Error(`not a whole number: ${value}`)
  return Number(value)
}

export function registryCommand (): Command {
  const registry = new Command('registry').description('run and set up the Beeldnet registry (root, directory and timestamp server)')
  registry.addOption(new Option('-d, --data-dir <dir>', 'the registry\'s data directory').env('BEELDNET_REGISTRY_DATA_DIR').makeOptionMandatory().argParser((v) => resolve(v)))
  registry.option('--json', 'machine-readable output on stdout', false)

  registry.command('init')
    .description('create the data directory, config, online timestamp key and the root v1 candidate (published once governance signs it)')
    .requiredOption('--network <name>', 'network name, e.g. beeldnet-nl')
    .requiredOption('--threshold <k>', 'governance signatures needed to publish', integer)
    .requiredOption('--governance-key <base64[:name]>', 'a governance public key (repeat for each member)', collect)
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port', integer, 8480)
    .option('--directory-validity-days <days>', 'how long a directory version is valid', integer, 30)
    .option('--root-validity-days <days>', 'how long a root version is valid', integer, 365)
    .action(async (opts: { network: string, threshold: number, governanceKey: string[], host: string, port: number, directoryValidityDays: number, rootValidityDays: number }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      const out = createOutput(g.json)
      try {
        const result = await initRegistry(g.dataDir, {
          network: opts.network,
          threshold: opts.threshold,
          governanceKeys: opts.governanceKey.map(parseKeyArgument),
          host: opts.host,
          port: opts.port,
          directoryValidityDays: opts.directoryValidityDays,
          rootValidityDays: opts.rootValidityDays
        })
        out.result({ dataDir: result.dir, config: result.config, rootHash: result.rootHash, threshold: result.root.threshold, keyids: result.keyids, timestampKeyid: result.timestampKeyid }, () => [
          `initialised ${result.dir} for network ${result.root.network}`,
          `  config          ${result.config}`,
          `  timestamp key   ${result.timestampKeyid}`,
          `  root v1 candidate ${result.rootHash}  (needs ${result.root.threshold} of ${result.keyids.length} signatures)`,
          ...result.root.governanceKeys.map((k) => `    ${k.keyid}  ${k.name ?? ''}`),
          'start the registry, then each member runs: beeldnet governance sign --key <their key file>'
        ].join('\n'))
      } catch (err) {
        process.exitCode = reportError(err, g.json)
      }
    })

  registry.command('start')
    .description('run the registry; logs are pino JSON on stdout; stops cleanly on SIGINT/SIGTERM')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      const server = createRegistry({}, { dir: g.dataDir })
      try {
        await server.start()
      } catch (err) {
        process.exitCode = reportError(err, g.json)
        await server.stop().catch(() => {})
        return
      }
      await new Promise<void>((resolveStop) => {
        const stop = (signal: string): void => {
          server.logger.info({ signal }, 'stopping')
          server.stop().then(resolveStop, (err: unknown) => {
            server.logger.error({ err }, 'stop failed')
            process.exitCode = 1
            resolveStop()
          })
        }
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
      })
    })

  registry.command('status')
    .description('ask the running registry (at the configured host and port) for its status')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      const out = createOutput(g.json)
      try {
        const config = await loadConfig(registryPaths(g.dataDir).config)
        const host = config.host.includes(':') ? `[${config.host}]` : config.host
        const response = await fetch(`http://${host}:${config.port}/v1/status`).catch((err: Error) => {
          throw new Error(`the registry at ${host}:${config.port} does not answer (is it running?): ${err.message}`)
        })
        const status = await response.json() as Record<string, unknown>
        out.result(status, () => JSON.stringify(status, null, 2))
        if (!response.ok) process.exitCode = 1
      } catch (err) {
        process.exitCode = reportError(err, g.json)
      }
    })

  return registry
}
