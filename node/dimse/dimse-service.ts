import { once } from 'node:events'
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import type { Logger } from 'pino'
import type { association, requests, responses } from 'dcmjs-dimse'
import { isBeeldnetError } from '../../protocol/errors.ts'
import type { DimseDestination, NodeConfig } from '../config/config.ts'
import { TransferSyntax } from '../dicom/tags.ts'
import type { StudyStore } from '../store/study-store.ts'
import { dimse, DimseStatus, QueryRetrieve, VERIFICATION } from './dimse-library.ts'
import { find } from './find.ts'
import type { StoredBatch } from '../routing/router.ts'
import type { AuditSink } from '../audit/audit-log.ts'
import { auditPatient } from '../audit/events.ts'

type Association = association.Association
type PresentationContext = association.PresentationContext
type CEchoRequest = requests.CEchoRequest
type CFindRequest = requests.CFindRequest
type CGetRequest = requests.CGetRequest
type CMoveRequest = requests.CMoveRequest
type CStoreRequest = requests.CStoreRequest
type CEchoResponse = responses.CEchoResponse
type CFindResponse = responses.CFindResponse
type CGetResponse = responses.CGetResponse
type CMoveResponse = responses.CMoveResponse
import { InstanceReceiver, type StoreOutcome } from './receive-instance.ts'
import { retrieve, type RetrieveHow, type RetrieveProgress, type SubOperationSender } from './retrieve.ts'
import { watchIdle, type IdleWatch } from './idle-watch.ts'
import { PduProtocolError, PduRouter, type StoreSink } from './pdu-router.ts'
import { cStoreRsp, parseStoreRq, pDataHeader, type StoreRequest } from './ul/pdu.ts'

/*
 * The node's DIMSE service (SCP) for the hospital's PACS and modalities: C-ECHO, C-STORE into the
 * store, C-FIND on the index, C-MOVE (to a configured destination) and C-GET (on the same
 * association). Only configured calling AE titles associate; every refusal is logged with why.
 * A caller's A-ABORT or close ends its association at once (an instance it was sending is
 * dropped); a caller that sends nothing for dimse.idleSeconds while owed nothing is aborted.
 * However an association ends (release, A-ABORT, a dropped connection), what was durably stored
 * on it is audited and handed to routing once.
 */

export type DimseConfig = NodeConfig['dimse']

export interface DimseService {
  start (): Promise<void>
  stop (): Promise<void>
  /** the port it listens on (after start) */
  readonly port: number
}

const QUERY_SYNTAXES = [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian]
const STORAGE_PREFIX = '1.2.840.10008.5.1.4.1.1.'
const MOVE_CLASSES = new Set<string>([QueryRetrieve.patientMove, QueryRetrieve.studyMove])
const GET_CLASSES = new Set<string>([QueryRetrieve.patientGet, QueryRetrieve.studyGet])
const FIND_CLASSES = new Set<string>([QueryRetrieve.patientFind, QueryRetrieve.studyFind])
const MAX_FIND_RESULTS = 10_000
export const DEFAULT_IDLE_SECONDS = 60
/**
 * dcmjs-dimse's own timers (PDU and socket timeout) are set beyond reach: they would abort a C-MOVE
 * whose caller rightly waits in silence. The idle watch decides instead. (Node timers take at most 2^31-1 ms.)
 */
const LIBRARY_TIMERS_OFF_MS = 2 ** 31 - 1
/** After our A-ABORT, the caller gets this long to take it before the connection is cut. */
const ABORT_LINGER_MS = 2_000

/** Storage: whatever syntax the caller proposes first (deflated included): instances are stored as received. */
function storageSyntax (proposed: string[]): string | undefined {
  return proposed[0]
}

interface RetrieveResponse {
  setAffectedSopClassUid (uid: string): void
  setStatus (status: number): void
  setRemaining (n: number): void
  setCompleted (n: number): void
  setFailures (n: number): void
  setWarnings (n: number): void
  setErrorComment (comment: string): void
}

/** C-MOVE and C-GET answers alike: status, sub-operation counts, the reason in words and the failed instances (PS3.4 C.4.2.1.4). */
function retrieveResponder<Q extends CMoveRequest | CGetRequest, R extends RetrieveResponse> (kind: { fromRequest (request: Q): R }, request: Q) {
  return (progress: RetrieveProgress, status: number, why?: string, failed?: string[]): R => {
    const response = kind.fromRequest(request)
    response.setAffectedSopClassUid(request.getAffectedSopClassUid())
    response.setStatus(status)
    response.setRemaining(progress.remaining)
    response.setCompleted(progress.completed)
    response.setFailures(progress.failed)
    response.setWarnings(0)
    if (why !== undefined) response.setErrorComment(comment(why))
    if (failed !== undefined && failed.length > 0) {
      const { Dataset } = dimse()
      ;(response as unknown as { setDataset (d: unknown): void }).setDataset(new Dataset({ FailedSOPInstanceUIDList: failed }, TransferSyntax.ExplicitVRLittleEndian))
    }
    return response
  }
}

/** DIMSE Error Comment is a LO: at most 64 characters. */
function comment (text: string): string {
  return text.length <= 64 ? text : `${text.slice(0, 61)}...`
}

/** The largest PDU taken from a caller: four times what the node announces (the library's default, 256 KiB). */
const MAX_PDU_BYTES = 4 * 262_144

/**
 * Puts our PDU reader between the socket and the library's (the one 'data' listener it has just
 * attached): the library gets whole PDUs, and a C-STORE's dataset goes straight to its receiver.
 */
function routePdus (socket: Socket, logger: Logger, scp: { storeSink: () => StoreSink | undefined, takeCommand: (contextId: number, bytes: Buffer) => boolean }): void {
  const [library, ...others] = socket.listeners('data') as Array<(chunk: Buffer) => void>
  if (library === undefined || others.length > 0) throw new Error(`dcmjs-dimse attached ${socket.listenerCount('data')} data listeners, not one`)
  socket.off('data', library)
  const router = new PduRouter({
    library: (pdu) => { library(pdu) },
    storeSink: () => scp.storeSink(),
    command: (contextId, bytes) => scp.takeCommand(contextId, bytes)
  }, MAX_PDU_BYTES)
  socket.on('data', (chunk: Buffer) => {
    try {
      router.push(chunk)
    } catch (err) {
      if (!(err instanceof PduProtocolError)) throw err
      logger.warn({ peer: socket.remoteAddress, reason: err.message }, 'DIMSE connection closed: the caller sent bytes that are not PDUs')
      socket.destroy()
    }
  })
}

export interface DimseServiceDeps {
  store: StudyStore
  logger: Logger
  /** called when an association that stored instances ends, however it ends (routing) */
  onStudiesStored?: (batch: StoredBatch) => void
  /** the NEN 7513 trail: what callers stored, found and retrieved, per patient (optional) */
  audit?: AuditSink
}

/** `alsoCalled`: called AE titles accepted besides dimse.aeTitle (the routing rules' ones). */
export function createDimseService (deps: DimseServiceDeps, config: DimseConfig, alsoCalled: string[] = []): DimseService {
  const { store } = deps
  const logger = deps.logger.child({ component: 'dimse' })
  const { Scp, Dataset } = dimse()
  const { CEchoResponse, CFindResponse, CMoveResponse, CGetResponse } = dimse().responses
  const { PresentationContextResult, RejectResult, RejectSource, RejectReason, AbortSource, AbortReason } = dimse().constants
  const idleMs = (config.idleSeconds ?? DEFAULT_IDLE_SECONDS) * 1000
  const allowedCallers = new Set([...config.acceptCalling, ...config.destinations.map((d) => d.aeTitle)])
  const calledTitles = new Set([config.aeTitle, ...alsoCalled])
  /** One record per study an operation touched: the caller is named by its AE title and address. */
  const auditStudies = async (event: string, outcome: string, calling: string, address: string | undefined, studyUIDs: Iterable<string>): Promise<void> => {
    if (deps.audit === undefined) return
    for (const uid of new Set(studyUIDs)) {
      const study = await store.index.getStudy(uid)
      if (study === undefined) continue
      await deps.audit.record({ event, outcome, patient: auditPatient(study.patient), user: { system: `DIMSE caller ${calling} at ${address ?? '?'}` }, studyInstanceUID: uid })
    }
  }
  const destinations = new Map<string, DimseDestination>(config.destinations.map((d) => [d.aeTitle, d]))
  let tcp: NetServer | undefined
  const sockets = new Set<Socket>()
  /** the audit and routing of associations that ended: stop waits for them while the store and the trail are open */
  const handOvers = new Set<Promise<void>>()
  const track = (work: Promise<void>): void => {
    handOvers.add(work)
    void work.finally(() => handOvers.delete(work))
  }
  let port = 0

  class BeeldnetScp extends Scp {
    private calling = ''
    private called = ''
    private accepted = new Set<string>()
    /** studies this association stored instances of, not yet audited and routed */
    private readonly stored = new Set<string>()
    /** instances whose commit is under way: stored or not, the end of the association waits for them */
    private readonly committing = new Set<Promise<unknown>>()
    /** the caller's address, kept: a closed socket no longer says it */
    private peerAddress: string | undefined
    /** requests the node is working on: the caller waits in silence for their answers */
    private working = 0
    private idle: IdleWatch | undefined
    /** the instance being received, dropped if the association ends before it is complete */
    private receiving: InstanceReceiver | undefined
    /** the sink of a C-STORE taken from the library (takeCommand), which it finishes and answers */
    private ownSink: StoreSink | undefined

    private get tcp (): Socket { return (this as unknown as { socket: Socket }).socket }


    /** Ends the association when the caller goes quiet, and lets go of a half-received instance when it ends. */
    guard (): void {
      this.peerAddress = this.tcp.remoteAddress
      this.tcp.once('close', () => {
        this.receiving?.destroy(new Error('the association ended before the instance was complete'))
        this.receiving = undefined
        track(this.ended())
      })
      this.idle = watchIdle(this.tcp, { idleMs, busy: () => this.working > 0, onIdle: () => { this.abortIdle() } })
    }

    /** Counts one request as worked on until the returned function is called. */
    private begin (): () => void {
      this.working++
      let ended = false
      return () => {
        if (ended) return
        ended = true
        this.working--
        this.idle?.touch()
      }
    }

    private abortIdle (): void {
      const socket = this.tcp
      logger.info({ calling: this.calling, peer: socket.remoteAddress, idleSeconds: idleMs / 1000 }, `association aborted: the caller sent nothing for ${idleMs / 1000} s`)
      // Does nothing before an association was requested: then the connection is simply closed.
      this.sendAbort(AbortSource.ServiceUser, AbortReason.NotSpecified)
      socket.end(() => { socket.destroy() })
      setTimeout(() => { socket.destroy() }, ABORT_LINGER_MS).unref()
    }

    /** The caller's A-ABORT: the association is over, so the connection goes now (as storescp does). */
    override abort (source: number, reason: number): void {
      logger.info({ calling: this.calling, peer: this.tcp.remoteAddress, source, reason }, 'association aborted by the caller')
      this.tcp.destroy()
    }

    override associationRequested (association: Association): void {
      this.calling = association.getCallingAeTitle().trim()
      const called = association.getCalledAeTitle().trim()
      this.called = called
      const peer = `${this.tcp.remoteAddress ?? '?'}:${this.tcp.remotePort ?? '?'}`
      if (!allowedCallers.has(this.calling)) {
        logger.warn({ calling: this.calling, called, peer }, `association refused: calling AE title ${this.calling} is not in dimse.acceptCalling or dimse.destinations`)
        this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAeNotRecognized)
        return
      }
      if (!calledTitles.has(called)) {
        logger.warn({ calling: this.calling, called, peer }, `association refused: called AE title ${called} is not this node's (${[...calledTitles].join(', ')})`)
        this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAeNotRecognized)
        return
      }
      this.tcp.setNoDelay(true)
      for (const { context } of association.getPresentationContexts()) this.negotiate(context)
      logger.info({ calling: this.calling, peer, accepted: [...this.accepted] }, 'association accepted')
      this.sendAssociationAccept()
    }

    /** One presentation context: the syntax is chosen first, then set once (setResult shrinks the proposed list). */
    private negotiate (context: PresentationContext): void {
      const abstract = context.getAbstractSyntaxUid()
      const proposed = context.getTransferSyntaxUids()
      let syntax: string | undefined
      if (abstract === VERIFICATION || FIND_CLASSES.has(abstract) || MOVE_CLASSES.has(abstract) || GET_CLASSES.has(abstract)) {
        syntax = QUERY_SYNTAXES.find((ts) => proposed.includes(ts))
      } else if (abstract.startsWith(STORAGE_PREFIX)) {
        syntax = storageSyntax(proposed)
      } else {
        context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported)
        return
      }
      if (syntax === undefined) {
        context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported)
        return
      }
      context.setResult(PresentationContextResult.Accept, syntax)
      this.accepted.add(abstract)
    }

    override associationReleaseRequested (): void {
      this.sendAssociationReleaseResponse()
      track(this.handOverStored())
    }

    /**
     * The connection is gone (after a release, an A-ABORT or a drop): instances already answered,
     * or committed after the caller left, are durable all the same, so they are audited and routed too.
     */
    private async ended (): Promise<void> {
      await Promise.allSettled([...this.committing])
      if (this.stored.size > 0) logger.info({ calling: this.calling, called: this.called, studies: [...this.stored] }, 'association ended without a release: auditing and routing what it stored')
      await this.handOverStored()
    }

    /** Audits and routes the studies stored since the last hand-over; each study of an association is handed over once. */
    private async handOverStored (): Promise<void> {
      if (this.stored.size === 0) return
      const batch = { calledAeTitle: this.called, callingAeTitle: this.calling, studies: [...this.stored] }
      this.stored.clear()
      await auditStudies('store-received', `stored by ${this.calling} to ${this.called}`, this.calling, this.peerAddress, batch.studies)
        .catch((err: unknown) => { logger.error({ err }, 'the audit trail did not take a C-STORE') })
      deps.onStudiesStored?.(batch)
    }

    /** Follows an instance's commit: a stored one counts for the association whether or not its answer reaches the caller. */
    private committed (outcome: Promise<StoreOutcome>): Promise<StoreOutcome> {
      const done = outcome.then((result) => {
        if (result.stored && result.studyInstanceUID !== undefined) this.stored.add(result.studyInstanceUID)
        return result
      })
      this.committing.add(done)
      void done.finally(() => this.committing.delete(done))
      return done
    }

    override cEchoRequest (request: CEchoRequest, callback: (response: CEchoResponse) => void): void {
      const response = CEchoResponse.fromRequest(request)
      response.setStatus(DimseStatus.success)
      callback(response)
    }

    override createStoreWritableStream (context: PresentationContext, request: CStoreRequest): InstanceReceiver {
      this.receiving = new InstanceReceiver(store, this.tcp, {
        sopClassUID: request.getAffectedSopClassUid(),
        sopInstanceUID: request.getAffectedSopInstanceUid(),
        transferSyntaxUID: context.getAcceptedTransferSyntaxUid() ?? TransferSyntax.ImplicitVRLittleEndian
      })
      return this.receiving
    }

    override createDatasetFromStoreWritableStream (writable: InstanceReceiver, context: PresentationContext, callback: (dataset: InstanceType<typeof Dataset>) => void): void {
      // The library calls this right after end(): the instance is whole, and the answer waits until it is committed.
      if (this.receiving === writable) this.receiving = undefined
      const answered = this.begin()
      void this.committed(writable.outcome).then((outcome) => {
        callback(Object.assign(new Dataset({}, context.getAcceptedTransferSyntaxUid()), { outcome, answered, contextId: context.getPresentationContextId() }))
      })
    }

    /**
     * The answer to a C-STORE, once its instance is durable (or refused). Written as one P-DATA of
     * our own: the library would encode it through dcmjs, which costs more than storing a small instance.
     */
    override cStoreRequest (request: CStoreRequest): void {
      const { outcome, answered, contextId } = (request.getDataset() as unknown as { outcome?: StoreOutcome, answered?: () => void, contextId?: number } | undefined) ?? {}
      this.answerStore({ messageId: request.getMessageId(), sopClassUID: request.getAffectedSopClassUid(), sopInstanceUID: request.getAffectedSopInstanceUid() }, contextId, outcome)
      answered?.()
    }

    private answerStore (request: StoreRequest, contextId: number | undefined, outcome: StoreOutcome | undefined): void {
      const status = outcome?.status ?? DimseStatus.processingFailure
      if (outcome?.stored !== true) logger.warn({ calling: this.calling, sopInstanceUID: request.sopInstanceUID, status: outcome?.status, reason: outcome?.comment }, 'C-STORE refused')
      const command = cStoreRsp(request.messageId, request.sopClassUID, request.sopInstanceUID, status, outcome?.comment === undefined ? undefined : comment(outcome.comment))
      if (contextId !== undefined && !this.tcp.destroyed) this.tcp.write(Buffer.concat([pDataHeader(contextId, true, true, command), command]))
    }

    /**
     * Takes a C-STORE-RQ from the library: its dataset then goes from the socket to the store and
     * it is answered here, without the library parsing the command through dcmjs or seeing a
     * fragment. Anything unexpected (a context not accepted, a dataset still arriving) is left to it.
     */
    takeCommand (contextId: number, bytes: Buffer): boolean {
      const request = parseStoreRq(bytes)
      if (request === undefined || this.receiving !== undefined) return false
      const context = (this as unknown as { association?: Association }).association?.getPresentationContext(contextId)
      if (context === undefined || context.getResult() !== PresentationContextResult.Accept || !this.accepted.has(context.getAbstractSyntaxUid())) return false
      const receiving = new InstanceReceiver(store, this.tcp, {
        sopClassUID: request.sopClassUID,
        sopInstanceUID: request.sopInstanceUID,
        transferSyntaxUID: context.getAcceptedTransferSyntaxUid() ?? TransferSyntax.ImplicitVRLittleEndian
      })
      this.receiving = receiving
      this.ownSink = {
        write: (bytes) => receiving.write(bytes),
        finish: () => {
          receiving.end()
          if (this.receiving === receiving) this.receiving = undefined
          this.ownSink = undefined
          const answered = this.begin()
          void this.committed(receiving.outcome).then((outcome) => {
            this.answerStore(request, contextId, outcome)
            answered()
          })
        }
      }
      return true
    }

    /** Where the dataset bytes of the C-STORE being received go, if one is. */
    storeSink (): StoreSink | undefined {
      return this.ownSink ?? this.receiving
    }

    override cFindRequest (request: CFindRequest, answer: (responses: CFindResponse[]) => void): void {
      const answered = this.begin()
      const callback = (responses: CFindResponse[]): void => { answer(responses); answered() }
      const identifier = request.getDataset()?.getElements() ?? {}
      find(store, identifier, { aeTitle: config.aeTitle, maxResults: MAX_FIND_RESULTS }).then(async ({ matches, studies }) => {
        await auditStudies('query', `C-FIND: ${matches.length} answers`, this.calling, this.tcp.remoteAddress, studies.map((s) => s.studyInstanceUID))
        for (const match of matches) {
          const pending = CFindResponse.fromRequest(request)
          pending.setAffectedSopClassUid(request.getAffectedSopClassUid())
          pending.setStatus(DimseStatus.pending)
          pending.setDataset(new Dataset(match, TransferSyntax.ExplicitVRLittleEndian))
          this.sendResponse(request, pending)
        }
        callback([this.finalFind(request, DimseStatus.success)])
      }, (err: unknown) => {
        const reason = isBeeldnetError(err) ? `${err.code}: ${err.message}` : `BEELDNET_ERR_INTERNAL: ${(err as Error).message}`
        logger.warn({ calling: this.calling, identifier, reason }, 'C-FIND refused')
        callback([this.finalFind(request, isBeeldnetError(err) ? DimseStatus.identifierDoesNotMatch : DimseStatus.processingFailure, reason)])
      })
    }

    private finalFind (request: CFindRequest, status: number, why?: string): CFindResponse {
      const response = CFindResponse.fromRequest(request)
      response.setAffectedSopClassUid(request.getAffectedSopClassUid())
      response.setStatus(status)
      if (why !== undefined) response.setErrorComment(comment(why))
      return response
    }

    override cMoveRequest (request: CMoveRequest, callback: (responses: CMoveResponse[]) => void): void {
      const destinationAe = String((request as unknown as { getCommandDataset (): { getElement (k: string): unknown } }).getCommandDataset().getElement('MoveDestination') ?? '').trim()
      const destination = destinations.get(destinationAe)
      const respond = retrieveResponder(CMoveResponse, request)
      if (destination === undefined) {
        logger.warn({ calling: this.calling, destination: destinationAe }, 'C-MOVE refused: destination not in dimse.destinations')
        callback([respond({ remaining: 0, completed: 0, failed: 0 }, DimseStatus.moveDestinationUnknown, `unknown move destination ${destinationAe}`)])
        return
      }
      this.runRetrieve(request, { kind: 'move', destination, callingAeTitle: config.aeTitle }, respond, callback)
    }

    override cGetRequest (request: CGetRequest, callback: (responses: CGetResponse[]) => void): void {
      const respond = retrieveResponder(CGetResponse, request)
      this.runRetrieve(request, { kind: 'get', scp: this as unknown as SubOperationSender }, respond, callback)
    }

    private runRetrieve<R> (request: CMoveRequest | CGetRequest, how: RetrieveHow, respond: (p: RetrieveProgress, status: number, why?: string, failed?: string[]) => R, answer: (responses: R[]) => void): void {
      const answered = this.begin()
      const callback = (responses: R[]): void => { answer(responses); answered() }
      const identifier = request.getDataset()?.getElements() ?? {}
      const before = async (instances: Array<{ studyInstanceUID: string }>): Promise<void> => {
        await auditStudies('export', how.kind === 'move' ? `C-MOVE to ${how.destination.aeTitle}` : `C-GET by ${this.calling}`, this.calling, this.tcp.remoteAddress, instances.map((i) => i.studyInstanceUID))
      }
      retrieve(store, identifier, how, (progress) => { this.sendResponse(request, respond(progress, DimseStatus.pending) as never) }, before).then((done) => {
        const status = done.failed === 0 ? DimseStatus.success : done.completed === 0 ? DimseStatus.subOperationsFailed : DimseStatus.warning
        logger.info({ calling: this.calling, kind: how.kind, completed: done.completed, failed: done.failed, reasons: done.reasons }, 'retrieve done')
        callback([respond({ ...done, remaining: 0 }, status, done.reasons[0], done.failedSopInstanceUIDs)])
      }, (err: unknown) => {
        const reason = isBeeldnetError(err) ? `${err.code}: ${err.message}` : `BEELDNET_ERR_INTERNAL: ${(err as Error).message}`
        logger.warn({ calling: this.calling, kind: how.kind, identifier, reason }, 'retrieve refused')
        callback([respond({ remaining: 0, completed: 0, failed: 0 }, isBeeldnetError(err) ? DimseStatus.identifierDoesNotMatch : DimseStatus.processingFailure, reason)])
      })
    }
  }

  return {
    get port () { return port },
    async start () {
      // Our own listener rather than dcmjs-dimse's Server, which binds every interface: the node
      // listens where dimse.host says. Each connection gets its own SCP, as Server would do.
      const server = createServer((socket) => {
        sockets.add(socket)
        socket.on('close', () => sockets.delete(socket))
        const scp = new BeeldnetScp(socket, { pduTimeout: LIBRARY_TIMERS_OFF_MS, connectTimeout: LIBRARY_TIMERS_OFF_MS })
        Object.assign(scp, { connected: true })
        // The library set a socket timeout (beyond reach, see LIBRARY_TIMERS_OFF_MS): off altogether, or
        // every read and write of the socket re-arms its timer. The idle watch decides instead.
        socket.setTimeout(0)
        routePdus(socket, logger, scp)
        scp.guard()
        scp.on('networkError', (err: Error) => {
          logger.warn({ err: err.message, peer: socket.remoteAddress }, 'DIMSE association failed')
          socket.end()
        })
      })
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(config.port, config.host, () => { server.off('error', reject); resolve() })
      })
      tcp = server
      port = (server.address() as AddressInfo).port
      logger.info({ aeTitle: config.aeTitle, host: config.host, port }, 'DIMSE service listening')
    },
    async stop () {
      const server = tcp
      tcp = undefined
      if (server === undefined) return
      const closed = new Promise<void>((resolve) => server.close(() => { resolve() }))
      const open = [...sockets]
      for (const socket of open) socket.destroy()
      await Promise.all(open.map(async (socket) => { if (!socket.closed) await once(socket, 'close') }))
      await closed
      await Promise.allSettled([...handOvers])
    }
  }
}
