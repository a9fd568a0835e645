import type { Logger } from 'pino'
import type { NodeIdentity } from '../../../protocol/identity.ts'
import { PROTOCOLS } from '../../../protocol/p2p/ids.ts'
import type { AuditSink } from '../../audit/audit-log.ts'
import type { DataChannel } from '../../p2p/data-channel.ts'
import type { P2PHost } from '../../p2p/host.ts'
import type { FramedStreamInit } from '../../p2p/stream-io.ts'
import type { StudyStore } from '../../store/study-store.ts'
import type { StudyComplete } from '../events.ts'
import { auditPushEnd } from '../receipt-audit.ts'
import type { TransferStore } from '../transfer-store.ts'
import { createIncomingTransfers, type IncomingTransfers } from './incoming.ts'
import { createPushHandler } from './push-handler.ts'

/*
 * Receiving studies: pushes from admitted peers are served on the push protocol through receive
 * sessions (incoming.ts), which keep what is verified for a resume. A committed study is recorded
 * in the audit trail with the receipt this node signed before anyone is told it arrived.
 */

export interface ReceivingComponents {
  host: Pick<P2PHost, 'handle' | 'unhandle' | 'institutionOf' | 'connect'>
  store: StudyStore
  identity: NodeIdentity
  logger: Logger
  transfers: TransferStore
  audit?: AuditSink
  /** this institution's URA: offers for another institution are refused */
  ura: () => string
  /** a study committed here, once it is in the audit trail */
  onCommitted: (e: StudyComplete) => void
  /** the TLS data channel senders may send instance bytes over */
  dataChannel?: Pick<DataChannel, 'expect'>
}

export interface Receiving {
  readonly incoming: IncomingTransfers
  start (): Promise<void>
  stop (): Promise<void>
}

export function createReceiving (components: ReceivingComponents, init: { stream: FramedStreamInit, compression?: boolean }): Receiving {
  const { host, logger } = components
  const incoming = createIncomingTransfers({ store: components.store, transfers: components.transfers, identity: components.identity }, { ura: components.ura })

  const onCommitted = (e: StudyComplete): void => { void auditPushEnd(components, e, { event: 'receive', outcome: 'committed' }).then(() => { components.onCommitted(e) }) }

  // Back after a stop: the senders of unfinished transfers hear it from our connection and retry
  // at once, instead of waiting out a backoff that grew while we were away (send/sending.ts).
  const greetSenders = async (): Promise<void> => {
    const senders = new Set((await incoming.list()).filter((r) => r.state === 'receiving').map((r) => r.peerId))
    await Promise.all([...senders].map(async (peerId) => {
      await host.connect(peerId, { signal: AbortSignal.timeout(30_000) }).catch((err: unknown) => {
        logger.debug({ err, peerId }, 'a sender of an unfinished transfer could not be reached: it retries by itself')
      })
    }))
  }

  return {
    incoming,
    async start () {
      await incoming.start()
      incoming.on('study-complete', onCommitted)
      try {
        await host.handle(PROTOCOLS.push, createPushHandler({ incoming, logger, dataChannel: components.dataChannel, compression: init.compression }, init.stream))
      } catch (err) {
        incoming.off('study-complete', onCommitted)
        await incoming.stop()
        throw err
      }
      void greetSenders()
    },
    async stop () {
      await host.unhandle(PROTOCOLS.push).catch(() => {})
      incoming.off('study-complete', onCommitted)
      await incoming.stop()
    }
  }
}
