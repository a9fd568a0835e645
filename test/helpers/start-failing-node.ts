// Starts the node in <data-dir> once per part named after it, each time with that part made to fail
// (BeeldnetNodeInit.beforePartStart), and prints "<part>: <error message>" per start. Then it does
// nothing more: the process ends by itself only if no failed start left a server, socket or timer.
// Settings come from the environment (BEELDNET_<SECTION>_<KEY>), as for `beeldnet node start`.
import { pino } from 'pino'
import { BeeldnetNode, type NodePartName } from '../../node/beeldnet-node.ts'

const [dataDir, ...parts] = process.argv.slice(2) as [string, ...NodePartName[]]
for (const failing of parts) {
  const node = new BeeldnetNode({
    dataDir,
    logger: pino({ level: 'silent' }),
    beforePartStart: (part) => { if (part === failing) throw new Error(`${part} made to fail`) }
  })
  await node.start().then(() => {
    process.stdout.write(`${failing}: started\n`)
    process.exitCode = 1
    return node.stop()
  }, (err: unknown) => { process.stdout.write(`${failing}: ${(err as Error).message}\n`) })
}
