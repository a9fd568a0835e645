import { once } from 'node:events'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createDimseService, type DimseService } from '../../../node/dimse/dimse-service.ts'
import { VERIFICATION } from '../../../node/dimse/dimse-library.ts'
import { AuditLog } from '../../../node/audit/audit-log.ts'
import type { StoredBatch } from '../../../node/routing/router.ts'
import { abortPdu, associateRq, cStoreRq, pDataHeader, PduReader, PduType, type ProposedContext } from '../../../node/dimse/ul/pdu.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { generateStudy, type GeneratedInstance } from '../../../simulations/generator/index.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { until } from '../../helpers/patience.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * How an association ends: a caller's A-ABORT or close ends it at once (and drops an instance it
 * was sending), a caller that goes quiet is aborted after dimse.idleSeconds. The waits are far
 * shorter than the idle time configured, so only the abort or close can explain what is seen.
 */

const tempDir = useTempDirs()
const LONG_IDLE_SECONDS = 300
const running: Array<{ stop: () => Promise<void> }> = []
afterEach(async () => { for (const r of running.splice(0).reverse()) await r.stop() })

interface TestNode { store: StudyStore, service: DimseService, dir: string, audit: AuditLog, routed: StoredBatch[] }

async function startNode (idleSeconds: number): Promise<TestNode> {
  const dir = await tempDir('beeldnet-assoc')
  const store = new StudyStore({ dir })
  await store.start()
  running.push(store)
  const audit = new AuditLog(join(dir, 'audit', 'trail.jsonl'))
  await audit.start()
  running.push(audit)
  const routed: StoredBatch[] = []
  const service = createDimseService({ store, logger: pino({ level: 'silent' }), audit, onStudiesStored: (batch) => { routed.push(batch) } }, {
    enabled: true, host: '127.0.0.1', port: 0, aeTitle: 'BEELDNET', acceptCalling: ['MODALITY'], destinations: [], idleSeconds
  })
  await service.start()
  running.push(service)
  return { store, service, dir, audit, routed }
}

async function storeReceivedRecords (audit: AuditLog): Promise<Array<{ event: string, outcome: string, studyInstanceUID?: string, user: { system?: string } }>> {
  const text = await readFile(audit.path, 'utf8').catch(() => '')
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { event: string, outcome: string, studyInstanceUID?: string, user: { system?: string } })
    .filter((r) => r.event === 'store-received')
}

/** A raw upper-layer caller: what it received, and whether the node has closed the connection. */
class RawCaller {
  readonly socket: Socket
  readonly received: Array<{ type: number, body: Buffer }> = []
  closed = false
  private readonly reader = new PduReader()

  constructor (port: number) {
    this.socket = connect(port, '127.0.0.1')
    this.socket.on('data', (chunk: Buffer) => { this.received.push(...this.reader.push(chunk)) })
    this.socket.on('error', () => {})
    this.socket.on('close', () => { this.closed = true })
    running.push({ stop: async () => { this.socket.destroy() } })
  }

  async associate (contexts: ProposedContext[]): Promise<void> {
    await once(this.socket, 'connect')
    this.socket.write(associateRq('BEELDNET', 'MODALITY', contexts))
    await until(() => this.received.some((p) => p.type === PduType.associateAc), 'the A-ASSOCIATE-AC')
  }
}

describe('the end of a DIMSE association', () => {
  let instance: GeneratedInstance
  let file: Buffer

  // Kept in memory: useTempDirs removes its folders after each test.
  beforeAll(async () => {
    const study = await generateStudy(await tempDir('src'), { seed: 91, series: [{ modality: 'CT', instances: 1, rows: 256, columns: 256 }] })
    instance = study.instances[0]!
    file = await readFile(instance.path)
  })

  it('closes the connection at once after the caller\'s A-ABORT, long before any timeout', async () => {
    const { service } = await startNode(LONG_IDLE_SECONDS)
    const caller = new RawCaller(service.port)
    await caller.associate([{ id: 1, abstractSyntax: VERIFICATION, transferSyntax: '1.2.840.10008.1.2' }])
    caller.socket.write(abortPdu())
    await until(() => caller.closed, 'the node to close the connection after the A-ABORT')
  })

  for (const how of ['A-ABORT', 'close'] as const) {
    it(`drops a half-received C-STORE when the caller ends with ${how}: no temp file, nothing indexed`, async () => {
      const { service, store, dir } = await startNode(LONG_IDLE_SECONDS)
      const caller = new RawCaller(service.port)
      await caller.associate([{ id: 1, abstractSyntax: instance.sopClassUID, transferSyntax: instance.transferSyntaxUID }])
      const command = cStoreRq(1, instance.sopClassUID, instance.sopInstanceUID)
      caller.socket.write(Buffer.concat([pDataHeader(1, true, true, command), command]))
      const dataset = file.subarray(144 + file.readUInt32LE(140))
      const half = dataset.subarray(0, Math.floor(dataset.length / 2))
      caller.socket.write(Buffer.concat([pDataHeader(1, false, false, half), half]))
      const tmp = join(dir, 'store', 'tmp')
      await until(async () => (await readdir(tmp)).length > 0, 'the node to start staging the instance')

      if (how === 'A-ABORT') caller.socket.write(abortPdu())
      else caller.socket.end()
      await until(() => caller.closed, `the node to close the connection after the caller's ${how}`)
      await until(async () => (await readdir(tmp)).length === 0, 'the half-received instance\'s temp file to go')
      expect(await store.index.getSopLocation(instance.sopInstanceUID)).toBeUndefined()
      expect(await store.findStudies()).toEqual([])
    })
  }

  /** Stops the service (it waits for the audit and routing of ended associations), then says what it audited and routed. */
  async function handedOver (node: TestNode, studyInstanceUID: string): Promise<{ records: Awaited<ReturnType<typeof storeReceivedRecords>>, routed: StoredBatch[] }> {
    await node.service.stop()
    return { records: (await storeReceivedRecords(node.audit)).filter((r) => r.studyInstanceUID === studyInstanceUID), routed: node.routed }
  }

  for (const end of ['--abort', 'a release'] as const) {
    it(`audits and routes a study storescu sent once its association ends with ${end}`, async () => {
      const node = await startNode(LONG_IDLE_SECONDS)
      const study = await generateStudy(await tempDir('sent'), { seed: 92, series: [{ modality: 'CT', instances: 3, rows: 32, columns: 32 }] })
      const sent = await dcmtk('storescu', ['-v', '-aet', 'MODALITY', '-aec', 'BEELDNET', ...(end === '--abort' ? ['--abort'] : []), '127.0.0.1', String(node.service.port), ...study.instances.map((i) => i.path)])
      expect(sent.code, sent.stderr).toBe(0)
      if (end === '--abort') expect(`${sent.stdout}${sent.stderr}`).toMatch(/Aborting Association/i)
      expect((await node.store.getStudy(study.studyInstanceUID)).instances).toHaveLength(study.instances.length)
      await until(() => node.routed.length > 0, 'the study to be handed to routing')

      const { records, routed } = await handedOver(node, study.studyInstanceUID)
      expect(records).toMatchObject([{ outcome: 'stored by MODALITY to BEELDNET', user: { system: expect.stringContaining('DIMSE caller MODALITY at 127.0.0.1') } }])
      expect(routed).toEqual([{ calledAeTitle: 'BEELDNET', callingAeTitle: 'MODALITY', studies: [study.studyInstanceUID] }])
    })
  }

  it('audits and routes an instance answered with success when the caller then drops the connection', async () => {
    const node = await startNode(LONG_IDLE_SECONDS)
    const caller = new RawCaller(node.service.port)
    await caller.associate([{ id: 1, abstractSyntax: instance.sopClassUID, transferSyntax: instance.transferSyntaxUID }])
    const command = cStoreRq(1, instance.sopClassUID, instance.sopInstanceUID)
    const dataset = file.subarray(144 + file.readUInt32LE(140))
    caller.socket.write(Buffer.concat([pDataHeader(1, true, true, command), command, pDataHeader(1, false, true, dataset), dataset]))
    await until(() => caller.received.some((p) => p.type === PduType.pData), 'the C-STORE-RSP')
    expect(node.routed).toEqual([])

    caller.socket.destroy()
    await until(() => node.routed.length > 0, 'the instance to be handed to routing after the drop')
    const { records, routed } = await handedOver(node, instance.studyInstanceUID)
    expect(records).toMatchObject([{ outcome: 'stored by MODALITY to BEELDNET' }])
    expect(routed).toEqual([{ calledAeTitle: 'BEELDNET', callingAeTitle: 'MODALITY', studies: [instance.studyInstanceUID] }])
  })

  it('aborts an association whose caller sends nothing for dimse.idleSeconds, and still serves dcmtk', async () => {
    const { service } = await startNode(2)
    const port = String(service.port)
    expect((await dcmtk('echoscu', ['-aet', 'MODALITY', '-aec', 'BEELDNET', '127.0.0.1', port])).code).toBe(0)
    const path = join(await tempDir('send'), 'instance.dcm')
    await writeFile(path, file)
    expect((await dcmtk('storescu', ['-aet', 'MODALITY', '-aec', 'BEELDNET', '127.0.0.1', port, path])).code).toBe(0)

    const caller = new RawCaller(service.port)
    await caller.associate([{ id: 1, abstractSyntax: VERIFICATION, transferSyntax: '1.2.840.10008.1.2' }])
    await until(() => caller.closed, 'the node to close the idle association')
    expect(caller.received.map((p) => p.type)).toEqual([PduType.associateAc, PduType.abort])

    // A caller that connects and never asks for an association is let go too.
    const silent = new RawCaller(service.port)
    await until(() => silent.closed, 'the node to close a connection that never asked for an association')
  })
})
