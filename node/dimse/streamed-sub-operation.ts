import type { Socket } from 'node:net'
import { abortPdu, pDataHeader, sendDataset } from './ul/pdu.ts'
import { writeOrWait } from '../net/socket-write.ts'

/*
 * C-GET sub-operations whose dataset streams. dcmjs-dimse sends a request's dataset from one buffer
 * it asks for synchronously (Network._sendPDataTF), so a 1 GB instance, or its decoded form, would
 * be held whole. For a request marked here, the SCP's _sendPDataTF is taken over: the command goes
 * as the library would send it, then the dataset in P-DATA-TF fragments as its chunks come, each
 * write waiting for the socket to drain. The last fragment is held back until the chunks have all
 * come (the source checks the file's hash at its end): a source that fails ends the association
 * with an A-ABORT, and the caller never gets a complete instance of it. The request queue moves on
 * when the caller answers, as for any request.
 */

type Chunks = () => AsyncIterable<Uint8Array>

interface CommandLike { getCommandDataset (): { getDenaturalizedCommandDataset (): Buffer } }
interface NetworkLike {
  socket: Socket
  _sendPDataTF (command: CommandLike, contextId: number, maxPduLength: number): void
}

const streamed = new WeakMap<object, Chunks>()
const patched = new WeakSet<object>()
/** dcmjs-dimse's own cap on a P-DATA-TF it sends */
const MAX_PDU = 4 * 1024 * 1024

/** Marks a C-STORE request so its dataset is sent from `chunks` (read only when the request's turn comes). */
export function streamDataset (request: object, chunks: Chunks): void {
  streamed.set(request, chunks)
}

/** Lets `scp` (a dcmjs-dimse Network) send marked requests' datasets as they stream; idempotent. */
export function sendStreamedDatasets (scp: object, onFailure: (err: Error) => void): void {
  if (patched.has(scp)) return
  patched.add(scp)
  const network = scp as NetworkLike
  const original = network._sendPDataTF.bind(network)
  network._sendPDataTF = (command, contextId, maxPduLength) => {
    const chunks = streamed.get(command)
    if (chunks === undefined) {
      original(command, contextId, maxPduLength)
      return
    }
    streamed.delete(command)
    const socket = network.socket
    const commandBytes = command.getCommandDataset().getDenaturalizedCommandDataset()
    socket.write(pDataHeader(contextId, true, true, commandBytes))
    socket.write(commandBytes)
    const fragment = (maxPduLength === 0 ? MAX_PDU : Math.min(maxPduLength, MAX_PDU)) - 6
    sendDataset(async (bytes) => write(socket, bytes), contextId, fragment, chunks()).catch((err: unknown) => {
      if (!socket.destroyed) {
        socket.end(abortPdu())
        socket.destroy()
      }
      onFailure(err as Error)
    })
  }
}

async function write (socket: Socket, bytes: Uint8Array): Promise<void> {
  if (socket.destroyed) throw new Error('the caller closed the association')
  await writeOrWait(socket, bytes)
}
