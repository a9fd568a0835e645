import { spawn } from 'node:child_process'
import { mkdir, readdir, readlink, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { pino } from 'pino'
import { check as isLocked } from 'proper-lockfile'
import { describe, expect, it, onTestFinished } from 'vitest'
import { BeeldnetNode, type NodePartName } from '../../node/beeldnet-node.ts'
import { createTrustStore, trustDir } from '../../node/directory/trust-store.ts'
import { initNode } from '../../node/init.ts'
import { nodePaths } from '../../node/paths.ts'
import { PolicyStore } from '../../node/policy/policy-store.ts'
import { StudyStore } from '../../node/store/study-store.ts'
import { createExportStore } from '../../node/reconcile/export-store.ts'
import { createShareStore } from '../../node/shares/share-store.ts'
import { createTransferStore } from '../../node/transfers/transfer-store.ts'
import { makeGovernance } from '../helpers/registry-fixtures.ts'
import { until } from '../helpers/patience.ts'
import { useTempDirs } from '../helpers/temp-dir.ts'

/*
 * A node whose start fails half-way must leave nothing behind: every port it listened on can be
 * bound again, no file of its data directory is open (level's LOCK files, the audit trail), the
 * audit trail is not locked, the syslog connection is closed, and no timer keeps a process alive.
 * Each part is made to fail in turn: for real where that comes naturally (a port taken, a level
 * database held, a corrupt file), else through BeeldnetNodeInit.beforePartStart.
 */

const tempDir = useTempDirs()
const silent = pino({ level: 'silent' })

const ALL_PARTS: NodePartName[] = ['store', 'audit trail', 'syslog export', 'directory', 'gossip', 'p2p host', 'data channel', 'policy store', 'policy in force', 'exchange', 'deidentified pushes', 'pacs exports', 'shares', 'http', 'dimse', 'retention']

interface Ports { http: number, p2p: number, dimse: number }

interface NodeSetup {
  dataDir: string
  ports: Ports
  env: NodeJS.ProcessEnv
  /** the syslog collector's connections that are still open */
  syslogConnections: Set<Socket>
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function listenOn (port: number): Promise<Server> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  return server
}

async function close (server: Server): Promise<void> {
  await new Promise((resolve) => server.close(resolve))
}

/** An initialised node with every part switched on: a pinned root and a registry to poll, syslog export and DIMSE. */
async function fullNode (): Promise<NodeSetup> {
  const dataDir = await tempDir('failed-start')
  await initNode(dataDir, { name: 'Half Ziekenhuis' })
  await createTrustStore({ dir: trustDir(dataDir) }).pinRoot(makeGovernance(2, 3).signedRoot)
  const syslogConnections = new Set<Socket>()
  const collector = createServer((socket) => {
    syslogConnections.add(socket)
    socket.resume()
    socket.on('close', () => syslogConnections.delete(socket))
  })
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve))
  onTestFinished(async () => { for (const s of syslogConnections) s.destroy(); await close(collector) })
  const ports = { http: await freePort(), p2p: await freePort(), dimse: await freePort() }
  const env = {
    BEELDNET_HTTP_PORT: String(ports.http),
    BEELDNET_P2P_LISTEN: `/ip4/127.0.0.1/tcp/${ports.p2p}`,
    BEELDNET_DIMSE_ENABLED: 'true',
    BEELDNET_DIMSE_PORT: String(ports.dimse),
    BEELDNET_AUDIT_SYSLOG: `127.0.0.1:${(collector.address() as { port: number }).port}`,
    // Nothing listens there: the directory polls and fails, as with a registry that is down.
    BEELDNET_REGISTRY_URL: `http://127.0.0.1:${await freePort()}`,
    BEELDNET_REGISTRY_POLL_INTERVAL_SECONDS: '1',
    BEELDNET_LOG_LEVEL: 'silent'
  }
  return { dataDir, ports, env, syslogConnections }
}

function nodeOf (setup: NodeSetup, failing?: NodePartName): BeeldnetNode {
  const node = new BeeldnetNode({
    dataDir: setup.dataDir,
    env: setup.env,
    logger: silent,
    beforePartStart: (part) => { if (part === failing) throw new Error(`${part} made to fail`) }
  })
  onTestFinished(async () => { await node.stop() })
  return node
}

/** The files of `dir` this process holds open (Linux: /proc/self/fd). */
async function openFilesUnder (dir: string): Promise<string[]> {
  const fds = await readdir('/proc/self/fd')
  const targets = await Promise.all(fds.map(async (fd) => readlink(join('/proc/self/fd', fd)).catch(() => '')))
  return targets.filter((t) => t.startsWith(dir))
}

/** What a stopped node must leave: free ports, no open files, openable databases, an unlocked trail, no syslog connection. */
async function expectNothingLeft (setup: NodeSetup): Promise<void> {
  for (const port of Object.values(setup.ports)) await close(await listenOn(port))
  expect(await openFilesUnder(setup.dataDir)).toEqual([])
  const store = new StudyStore({ dir: setup.dataDir })
  await store.start()
  await store.stop()
  const policy = new PolicyStore(join(setup.dataDir, 'policy'))
  await policy.start()
  await policy.stop()
  const transfers = createTransferStore({ dir: join(setup.dataDir, 'transfers') })
  await transfers.start()
  await transfers.stop()
  expect(await isLocked(nodePaths(setup.dataDir).auditTrail, { realpath: false })).toBe(false)
  // The exporter's socket was destroyed; the collector hears of it a moment later.
  await until(() => setup.syslogConnections.size === 0, 'the syslog collector to see its connection closed')
}

describe('a node that fails to start', () => {
  it('starts its parts in dependency order, and a stopped node leaves nothing behind', async () => {
    const setup = await fullNode()
    const started: NodePartName[] = []
    const node = new BeeldnetNode({ dataDir: setup.dataDir, env: setup.env, logger: silent, beforePartStart: (part) => { started.push(part) } })
    onTestFinished(async () => { await node.stop() })
    await node.start()
    expect(started).toEqual(ALL_PARTS)
    expect(node.url).toBe(`http://127.0.0.1:${setup.ports.http}`)
    expect(node.dimse?.port).toBe(setup.ports.dimse)
    await until(() => setup.syslogConnections.size === 1, 'the syslog export to connect')
    await node.stop()
    await node.stop()
    await expectNothingLeft(setup)
  })

  it.each(ALL_PARTS)('stops what started before %s when that part fails', async (part) => {
    const setup = await fullNode()
    const node = nodeOf(setup, part)
    await expect(node.start()).rejects.toThrow(`${part} made to fail`)
    await expectNothingLeft(setup)
    // Stop after a failed start is safe, and the node can start once the cause is gone.
    await node.stop()
    const again = nodeOf(setup)
    await again.start()
    await again.stop()
  })

  it('the store held by another process (its level lock): BEELDNET_ERR_STORE_LOCKED, nothing else started', async () => {
    const setup = await fullNode()
    const other = new StudyStore({ dir: setup.dataDir })
    await other.start()
    await expect(nodeOf(setup).start()).rejects.toMatchObject({ code: 'BEELDNET_ERR_STORE_LOCKED' })
    await other.stop()
    await expectNothingLeft(setup)
  })

  it('the store\'s file area cannot be made (a file where its folder goes): the index it had opened is closed again', async () => {
    const setup = await fullNode()
    await rm(join(setup.dataDir, 'store'), { recursive: true, force: true })
    await writeFile(join(setup.dataDir, 'store'), 'not a folder')
    await expect(nodeOf(setup).start()).rejects.toMatchObject({ code: 'ENOTDIR' })
    expect(await openFilesUnder(setup.dataDir)).toEqual([])
    await rm(join(setup.dataDir, 'store'))
    await expectNothingLeft(setup)
  })

  it('an audit trail whose last record is not JSON: the trail file is closed again and the store is stopped', async () => {
    const setup = await fullNode()
    await mkdir(join(setup.dataDir, 'audit'), { recursive: true })
    await writeFile(nodePaths(setup.dataDir).auditTrail, '{"seq":1, cut off\n')
    await expect(nodeOf(setup).start()).rejects.toThrow(SyntaxError)
    await expectNothingLeft(setup)
  })

  it('a trust store that does not verify: BEELDNET_ERR_TRUST_STORE, the syslog export and the audit trail stopped', async () => {
    const setup = await fullNode()
    await writeFile(join(trustDir(setup.dataDir), 'trusted.json'), '{')
    await expect(nodeOf(setup).start()).rejects.toMatchObject({ code: 'BEELDNET_ERR_TRUST_STORE' })
    await expectNothingLeft(setup)
  })

  it.each([
    ['p2p host', 'p2p', 'p2p.listen'],
    ['http', 'http', 'http.port'],
    ['dimse', 'dimse', 'dimse.port']
  ] as const)('its %s port taken: BEELDNET_ERR_CANNOT_LISTEN naming %s\'s setting, and every port it had bound free again', async (_part, port, setting) => {
    const setup = await fullNode()
    const squatter = await listenOn(setup.ports[port])
    const failed = await nodeOf(setup).start().then(() => undefined, (err: unknown) => err)
    expect(failed).toMatchObject({ code: 'BEELDNET_ERR_CANNOT_LISTEN', message: expect.stringContaining(`${setting}: cannot listen on`) })
    expect((failed as Error).message).toContain(String(setup.ports[port]))
    await close(squatter)
    await expectNothingLeft(setup)
  })

  it.each([
    ['policy store', 'policy'],
    ['exchange', 'transfers'],
    ['pacs exports', 'exports'],
    ['shares', 'shares']
  ] as const)('the %s database held by another process: BEELDNET_ERR_STORE_LOCKED, the host and the stores before it stopped', async (_part, folder) => {
    const setup = await fullNode()
    const other = folder === 'policy'
      ? new PolicyStore(join(setup.dataDir, folder))
      : folder === 'exports' ? createExportStore(join(setup.dataDir, folder)) : folder === 'shares' ? createShareStore(join(setup.dataDir, folder)) : createTransferStore({ dir: join(setup.dataDir, folder) })
    await other.start()
    await expect(nodeOf(setup).start()).rejects.toMatchObject({ code: 'BEELDNET_ERR_STORE_LOCKED' })
    await other.stop()
    await expectNothingLeft(setup)
  })

  it('the exchange\'s area for incoming studies cannot be made (a file there): the transfer database it had opened is closed again', async () => {
    const setup = await fullNode()
    await writeFile(join(setup.dataDir, 'store', 'incoming'), 'not a folder')
    await expect(nodeOf(setup).start()).rejects.toMatchObject({ code: 'EEXIST' })
    expect(await openFilesUnder(setup.dataDir)).toEqual([])
    await rm(join(setup.dataDir, 'store', 'incoming'))
    await expectNothingLeft(setup)
  })

  it('leaves nothing that keeps a process alive: a process failing each part in turn ends by itself', async () => {
    const setup = await fullNode()
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'helpers', 'start-failing-node.ts'), setup.dataDir, ...ALL_PARTS], {
      env: { ...process.env, ...setup.env },
      stdio: ['ignore', 'pipe', 'inherit']
    })
    onTestFinished(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    const lines: string[] = []
    createInterface({ input: child.stdout }).on('line', (line) => lines.push(line))
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
    expect(lines).toEqual(ALL_PARTS.map((part) => `${part}: ${part} made to fail`))
    expect(code).toBe(0)
    await expectNothingLeft(setup)
  })
})

describe('beeldnet node start', () => {
  it('with its HTTP port taken: exits non-zero with the error code, and the store opens again', async () => {
    const setup = await fullNode()
    const squatter = await listenOn(setup.ports.http)
    onTestFinished(async () => { if (squatter.listening) await close(squatter) })
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'beeldnet.ts'), 'node', '--data-dir', setup.dataDir, 'start'], {
      env: { ...process.env, ...setup.env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    onTestFinished(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    child.stdout.resume()
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
    expect(code).toBe(1)
    expect(stderr).toContain(`error BEELDNET_ERR_CANNOT_LISTEN: http.port: cannot listen on 127.0.0.1:${setup.ports.http}`)
    await close(squatter)
    await expectNothingLeft(setup)
  })
})
