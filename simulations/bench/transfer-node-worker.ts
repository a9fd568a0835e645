// One Beeldnet node of the transfer benchmark in its own process, so its peak RSS and CPU are its
// own: `transfer-node-worker.ts <nodeDir>`, configured by the environment (nodeEnv: ports, registry).
// Tells the parent {type:'ready', url, peerId} over IPC once it serves its API; the parent drives it
// through that API and sends {cmd:'delete', uid} (drop a received study between runs, answered
// {type:'deleted'}) and {cmd:'stop'}. Logs (warnings and worse) go to stderr.
import { enableCompileCache } from 'node:module'
import { pino } from 'pino'

// As bin/beeldnet.ts does: the node's code from the compile cache, not compiled in this process.
enableCompileCache()
const { BeeldnetNode } = await import('../../node/beeldnet-node.ts')

type Command = { cmd: 'delete', uid: string } | { cmd: 'stop' }

const [dataDir] = process.argv.slice(2)
const logger = pino({ level: process.env.BENCH_NODE_LOG_LEVEL ?? 'warn' }, pino.destination(2))
const node = new BeeldnetNode({ dataDir: dataDir!, env: process.env, logger })
await node.start()
process.send!({ type: 'ready', url: node.url, peerId: node.identity.peerId })

process.on('message', (command: Command) => {
  void (async () => {
    try {
      if (command.cmd === 'delete') {
        await node.store.deleteStudy(command.uid, { force: true })
        process.send!({ type: 'deleted', uid: command.uid })
      } else if (command.cmd === 'stop') {
        await node.stop()
        process.send!({ type: 'stopped' }, () => process.exit(0))
      }
    } catch (err) {
      process.send!({ type: 'error', message: (err as Error).message })
    }
  })()
})
