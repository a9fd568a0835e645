// The node side of the DICOM benchmark in its own process (its peak RSS and CPU are its own): the
// study store with the node's HTTP server (DICOMweb) and DIMSE service, as a node runs them.
// `dicom-node-worker.ts <dataDir> <dimsePort> <destinationPort>`; tells the parent
// {type:'ready', url, dimsePort, token} (an API token for DICOMweb) over IPC; {cmd:'delete', uid} drops a study between runs
// (answered {type:'deleted'}), {cmd:'stats'} answers the store's group commits so far, {cmd:'stop'} ends it.
import { enableCompileCache } from 'node:module'
import { pino } from 'pino'

enableCompileCache()
const { StudyStore } = await import('../../node/store/study-store.ts')
const { createHttpServer } = await import('../../node/api/http-server.ts')
const { createDimseService } = await import('../../node/dimse/dimse-service.ts')
const { UserStore } = await import('../../node/users/user-store.ts')
const { ensureCliToken } = await import('../../node/users/cli-token.ts')
const { nodePaths } = await import('../../node/paths.ts')

type Command = { cmd: 'delete', uid: string } | { cmd: 'stats' } | { cmd: 'stop' }

const [dataDir, dimsePort, destinationPort] = process.argv.slice(2)
const logger = pino({ level: 'warn' }, pino.destination(2))
const store = new StudyStore({ dir: dataDir! })
await store.start()
const users = new UserStore(nodePaths(dataDir!).users)
const token = await ensureCliToken(users, nodePaths(dataDir!).cliToken)
const http = createHttpServer({ store, logger, users }, { nodeName: 'bench', peerId: 'bench' })
await http.listen({ host: '127.0.0.1', port: 0 })
const dimse = createDimseService({ store, logger }, {
  enabled: true,
  host: '127.0.0.1',
  port: Number(dimsePort),
  aeTitle: 'BEELDNET',
  acceptCalling: ['BENCH'],
  destinations: [{ aeTitle: 'BENCH_PACS', host: '127.0.0.1', port: Number(destinationPort) }]
})
await dimse.start()
const { port } = http.server.address() as { port: number }
process.send!({ type: 'ready', url: `http://127.0.0.1:${port}`, dimsePort: dimse.port, token })

process.on('message', (command: Command) => {
  void (async () => {
    try {
      if (command.cmd === 'delete') {
        await store.deleteStudy(command.uid, { force: true })
        process.send!({ type: 'deleted', uid: command.uid })
      } else if (command.cmd === 'stats') {
        process.send!({ type: 'stats', groups: store.groupCommits, indexBatches: store.index.stats.batches, directorySyncs: store.blobs.stats.directorySyncs })
      } else if (command.cmd === 'stop') {
        await dimse.stop()
        await http.close()
        await store.stop()
        process.send!({ type: 'stopped' }, () => process.exit(0))
      }
    } catch (err) {
      process.send!({ type: 'error', message: (err as Error).message })
    }
  })()
})
